/* Error codes and the error detail struct shared by every module.
 *
 * Every fallible function returns 0 or a negative VG_E* code. When the
 * caller passes a vg_error, the function also fills in where and why, so a
 * user sees "points.csv:12:4: value 'abc' is not a number" rather than
 * "invalid argument". */
#ifndef VIGIE_ERROR_H
#define VIGIE_ERROR_H

#include <stdbool.h>
#include <stddef.h>

enum {
	VG_OK = 0,
	VG_ENOMEM = -1,     /* out of memory */
	VG_EINVAL = -2,     /* bad argument or malformed input */
	VG_ENOTFOUND = -3,  /* no such indicator, territory, point... */
	VG_EIO = -4,        /* read or write failed */
	VG_ESCHEMA = -5,    /* data directory has another schema version */
	VG_EFULL = -6,      /* disk (or file size limit) full */
	VG_EREADONLY = -7,  /* data directory or store opened read-only */
	VG_EEXIST = -8,     /* already exists */
	VG_EPARSE = -9,     /* syntax error in a file or string */
	VG_EPERIOD = -10,   /* invalid period, or periodicity mismatch */
	VG_ESTORE = -11,    /* LMDB failure not covered above */
	VG_EBUSY = -12,     /* resource busy (locked data directory...) */
	VG_ERANGE = -13,    /* value out of range, limit exceeded */
	VG_ETOOBIG = -14,   /* input larger than a configured limit */
	VG_EBADROWS = -15,  /* an import had bad rows and wrote nothing */
	VG_ETIMEOUT = -16,  /* deadline or instruction budget exceeded */
	VG_ECANCELED = -17, /* stopped on request */
	VG_ESANDBOX = -18,  /* a plugin broke a sandbox rule */
	VG_EPLUGIN = -19,   /* a plugin raised an error or has a bad manifest */
};

/* Static English text for a code; never NULL. */
const char *vg_strerror(int code);

/* Where and why an operation failed. `where` is a file name, a key or a
 * territory code; line/column are 1-based and 0 when not meaningful. */
typedef struct vg_error {
	int code;
	long line;
	long column;
	char where[256];
	char msg[512];
} vg_error;

/* Reset to "no error". Safe on NULL. */
void vg_error_clear(vg_error *e);

/* Set code and message (printf format). Safe on NULL: then it only returns
 * `code`, which lets callers write `return vg_error_set(err, ...)`. */
int vg_error_set(vg_error *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Same, with a location. `where` may be NULL. */
int vg_error_at(vg_error *e, int code, const char *where, long line,
		long column, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* Format as "where:line:column: message" (parts that are unset are left
 * out) into buf; returns buf. */
const char *vg_error_format(const vg_error *e, char *buf, size_t n);

#endif
