/* Shared helpers for the unit tests: temporary data directories and a
 * small store populated with a few territories and indicators. */
#ifndef VIGIE_TEST_HELPERS_H
#define VIGIE_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigie/store.h"

/* A fresh directory under /tmp; removed by rm_tree. */
static inline char *tmp_dir(void)
{
	char *d = strdup("/tmp/vigie-test-XXXXXX");
	cr_assert_not_null(mkdtemp(d));
	return d;
}

static inline void rm_tree(char *d)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'",
		 d, d);
	int rc = system(cmd);
	(void)rc;
	free(d);
}

/* Path of a file of ../shared/data (VIGIE_SHARED overrides ../shared). */
static inline const char *shared_path(const char *rel)
{
	static char buf[1024];
	const char *base = getenv("VIGIE_SHARED");
	snprintf(buf, sizeof(buf), "%s/data/%s", base ? base : "../shared",
		 rel);
	return buf;
}

/* The error every test passes to the API, printed when a call fails. */
static vg_error E __attribute__((unused));

#define OK(call)                                                          \
	do {                                                              \
		int rc_ = (call);                                         \
		cr_assert_eq(rc_, 0, "%s -> %d (%s)", #call, rc_, E.msg); \
	} while (0)

static inline vg_indicator make_ind(const char *code, const char *agg)
{
	vg_indicator i;
	memset(&i, 0, sizeof(i));
	snprintf(i.code, sizeof(i.code), "%s", code);
	snprintf(i.label, sizeof(i.label), "Label of %s", code);
	i.periodicity = VG_YEAR;
	i.decimals = -1;
	vg_agg_parse(agg, code, &i.agg, NULL);
	return i;
}

static inline vg_territory make_terr(const char *code, const char *name,
				     const char *p1, const char *p2)
{
	vg_territory t;
	memset(&t, 0, sizeof(t));
	snprintf(t.code, sizeof(t.code), "%s", code);
	snprintf(t.name, sizeof(t.name), "%s", name);
	if (p1)
		snprintf(t.parents[t.nparents++], VG_CODE_MAX, "%s", p1);
	if (p2)
		snprintf(t.parents[t.nparents++], VG_CODE_MAX, "%s", p2);
	return t;
}

static inline vg_period per(const char *s)
{
	vg_period p = 0;
	cr_assert_eq(vg_period_parse(s, strlen(s), &p), 0, "period %s", s);
	return p;
}

#endif
