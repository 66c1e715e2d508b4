/* Small helpers used across modules: assertions and symbol visibility.
 *
 * Bare assert() is not used in core/: an assertion either aborts (a broken
 * invariant that would corrupt data if we went on) or reports and lets the
 * caller bail out with an error. */
#ifndef VIGIE_COMMON_H
#define VIGIE_COMMON_H

#include <stdbool.h>

#define VG_EXPORT __attribute__((visibility("default")))
#define VG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

void vg__assert_fail(const char *expr, const char *file, int line, bool fatal);

/* Fatal: prints and aborts. For invariants whose violation means data
 * corruption if we continue. */
#define VG_ASSERT(cond)                                                      \
	do {                                                                 \
		if (!(cond))                                                 \
			vg__assert_fail(#cond, __FILE__, __LINE__, true);    \
	} while (0)

/* Recoverable: prints (and aborts in debug builds), otherwise evaluates to
 * true so the caller can return an error:
 *     if (VG_FAILS_ASSERT(n <= cap)) return VG_EINVAL; */
#ifdef NDEBUG
#define VG_FAILS_ASSERT(cond)                                                \
	(!(cond) ? (vg__assert_fail(#cond, __FILE__, __LINE__, false), true) \
		 : false)
#else
#define VG_FAILS_ASSERT(cond)                                                \
	(!(cond) ? (vg__assert_fail(#cond, __FILE__, __LINE__, true), true)  \
		 : false)
#endif

#endif
