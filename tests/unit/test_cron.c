/* Tests for cron expressions and `every` durations (core/sched/cron.c).
 *
 * The ccronexpr vectors ($VIGIE_SHARED/data/parsers/cron/) are 6-field
 * (second minute hour dom month dow). How they are turned into 5-field
 * tests:
 *  - next vectors: the 5-field expression is the last five fields. It has
 *    the same next fire time as the 6-field one when the seconds field
 *    allows second 0 (`0`, `*`, `*\/15`) AND the expected time is on second
 *    :00 (or INVALID): the 6-field answer is then the start of the first
 *    matching minute after `initial` (any earlier matching minute would
 *    have fired at its own second 0), which is exactly the 5-field answer.
 *    Other rows (seconds `55`, `10-15`..., or an answer inside a minute
 *    such as 09:00:01) have no minute-granularity meaning: skipped, and
 *    counted, and the counts are asserted.
 *  - equivalent expressions: if both seconds fields are equal, they are
 *    dropped; otherwise the rest must be equal and the two seconds fields
 *    are compared in the minute position (same range 0-59).
 *  - invalid expressions: if the seconds field is `0` or `*`, the error
 *    is in the other five, which must be refused; otherwise the seconds
 *    field is the culprit and is tried in the minute position
 *    (`77 * * * *`), where it must be refused too.
 * All vectors are in UTC: the suite runs with TZ=UTC. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vigie/cron.h"

static vg_error E;

static void utc(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
}

TestSuite(cron, .init = utc);

static const char *data_path(const char *rel)
{
	static char buf[1024];
	const char *base = getenv("VIGIE_SHARED");
	snprintf(buf, sizeof(buf), "%s/data/parsers/cron/%s",
		 base ? base : "../shared", rel);
	return buf;
}

/* A tiny RFC 4180 reader for these one-line-per-record files: splits one
 * line into at most `max` fields (quotes removed) and returns how many. */
static int split_csv(char *line, char **f, int max)
{
	int n = 0;
	char *w = line, *r = line;

	line[strcspn(line, "\r\n")] = '\0';
	while (n < max) {
		f[n++] = w;
		if (*r == '"') {
			r++;
			for (;;) {
				if (*r == '"' && r[1] == '"') {
					*w++ = '"';
					r += 2;
				} else if (*r == '"') {
					r++;
					break;
				} else if (!*r) {
					break;
				} else {
					*w++ = *r++;
				}
			}
		} else {
			while (*r && *r != ',')
				*w++ = *r++;
		}
		if (*r == ',') {
			*w++ = '\0';
			r++;
			continue;
		}
		*w = '\0';
		break;
	}
	return n;
}

/* Whitespace-separated fields of an expression, copied into `store`. */
static int words(const char *s, char store[8][64])
{
	int n = 0;
	while (*s && n < 8) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		size_t len = strcspn(s, " \t");
		cr_assert_lt(len, 64);
		memcpy(store[n], s, len);
		store[n][len] = '\0';
		n++;
		s += len;
	}
	return n;
}

static int64_t utc_time(const char *s)
{
	struct tm tm = { 0 };
	cr_assert_eq(sscanf(s, "%d-%d-%d_%d:%d:%d", &tm.tm_year, &tm.tm_mon,
			    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec),
		     6, "bad time '%s'", s);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

static void fmt_utc(int64_t t, char *buf, size_t n)
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(buf, n, "%Y-%m-%d_%H:%M:%S", &tm);
}

static vg_cron must_parse(const char *expr)
{
	vg_cron c;
	int rc = vg_cron_parse(expr, &c, &E);
	cr_assert_eq(rc, 0, "parse \"%s\" -> %d: %s", expr, rc, E.msg);
	return c;
}

static int64_t next_of(const char *expr, const char *after)
{
	vg_cron c = must_parse(expr);
	int64_t n = 0;
	int rc = vg_cron_next(&c, utc_time(after), &n);
	cr_assert_eq(rc, 0, "next \"%s\" after %s -> %d", expr, after, rc);
	return n;
}

static void expect_next(const char *expr, const char *after,
			const char *expected)
{
	char got[32];
	int64_t n = next_of(expr, after);
	fmt_utc(n, got, sizeof(got));
	cr_expect_eq(n, utc_time(expected), "\"%s\" after %s: got %s, want %s",
		     expr, after, got, expected);
}

/* Does the seconds field `sec` allow second 0? Parsed in the minute
 * position, which has the same range and syntax. */
static bool seconds_allow_zero(const char *sec)
{
	char expr[128];
	vg_cron c;
	snprintf(expr, sizeof(expr), "%s * * * *", sec);
	if (vg_cron_parse(expr, &c, NULL) != 0)
		return false;
	return c.minute & 1;
}

Test(cron, ccronexpr_next_vectors)
{
	FILE *f = fopen(data_path("ccronexpr_next_vectors.csv"), "r");
	char line[512];
	int used = 0, skip_no_zero = 0, skip_subminute = 0, invalid = 0;

	cr_assert_not_null(f, "cannot open %s", data_path("ccronexpr_next_vectors.csv"));
	cr_assert_not_null(fgets(line, sizeof(line), f)); /* header */
	while (fgets(line, sizeof(line), f)) {
		char *col[3], w[8][64], expr[400];
		cr_assert_eq(split_csv(line, col, 3), 3, "bad row %s", line);
		cr_assert_eq(words(col[0], w), 6, "not 6 fields: %s", col[0]);
		bool inval = strcmp(col[2], "INVALID") == 0;
		if (!seconds_allow_zero(w[0])) {
			skip_no_zero++;
			continue;
		}
		if (!inval && utc_time(col[2]) % 60 != 0) {
			skip_subminute++;
			continue;
		}
		snprintf(expr, sizeof(expr), "%s %s %s %s %s", w[1], w[2],
			 w[3], w[4], w[5]);
		vg_cron c = must_parse(expr);
		int64_t n = 0;
		int rc = vg_cron_next(&c, utc_time(col[1]), &n);
		if (inval) {
			cr_expect_eq(rc, VG_ENOTFOUND,
				     "\"%s\" after %s should never fire", expr,
				     col[1]);
			invalid++;
		} else {
			char got[32];
			cr_assert_eq(rc, 0, "\"%s\" after %s -> %d", expr,
				     col[1], rc);
			fmt_utc(n, got, sizeof(got));
			cr_expect_eq(n, utc_time(col[2]),
				     "\"%s\" (from \"%s\") after %s: got %s, "
				     "want %s",
				     expr, col[0], col[1], got, col[2]);
		}
		used++;
	}
	fclose(f);
	fprintf(stderr,
		"cron next vectors: %d used (%d never-fire), %d skipped: %d "
		"with a seconds field that excludes second 0, %d whose answer "
		"is inside a minute\n",
		used, invalid, skip_no_zero + skip_subminute, skip_no_zero,
		skip_subminute);
	/* 60 rows: the counts are pinned so a changed file or rule shows. */
	cr_expect_eq(used, 45);
	cr_expect_eq(invalid, 1);
	cr_expect_eq(skip_no_zero, 11);
	cr_expect_eq(skip_subminute, 4);
}

static bool same_cron(const vg_cron *a, const vg_cron *b)
{
	return a->minute == b->minute && a->hour == b->hour &&
	       a->dom == b->dom && a->month == b->month && a->dow == b->dow &&
	       a->dom_star == b->dom_star && a->dow_star == b->dow_star;
}

Test(cron, ccronexpr_equivalent_expressions)
{
	FILE *f = fopen(data_path("ccronexpr_equivalent_expressions.csv"), "r");
	char line[512];
	int used = 0, via_minute = 0;

	cr_assert_not_null(f);
	cr_assert_not_null(fgets(line, sizeof(line), f));
	while (fgets(line, sizeof(line), f)) {
		char *col[2], a[8][64], b[8][64], ea[400], eb[400];
		cr_assert_eq(split_csv(line, col, 2), 2);
		cr_assert_eq(words(col[0], a), 6);
		cr_assert_eq(words(col[1], b), 6);
		if (strcmp(a[0], b[0]) == 0) {
			snprintf(ea, sizeof(ea), "%s %s %s %s %s", a[1], a[2],
				 a[3], a[4], a[5]);
			snprintf(eb, sizeof(eb), "%s %s %s %s %s", b[1], b[2],
				 b[3], b[4], b[5]);
		} else {
			for (int i = 1; i < 6; i++)
				cr_assert_str_eq(a[i], b[i],
						 "row %s differs in two places",
						 line);
			snprintf(ea, sizeof(ea), "%s * * * *", a[0]);
			snprintf(eb, sizeof(eb), "%s * * * *", b[0]);
			via_minute++;
		}
		vg_cron ca = must_parse(ea), cb = must_parse(eb);
		/* `?` and `*` differ only in spelling. */
		cr_expect(same_cron(&ca, &cb), "\"%s\" != \"%s\"", ea, eb);
		int64_t t = utc_time("2024-02-27_13:07:00");
		for (int k = 0; k < 20; k++) {
			int64_t na, nb;
			cr_assert_eq(vg_cron_next(&ca, t, &na), 0);
			cr_assert_eq(vg_cron_next(&cb, t, &nb), 0);
			cr_expect_eq(na, nb, "\"%s\" vs \"%s\"", ea, eb);
			t = na;
		}
		used++;
	}
	fclose(f);
	fprintf(stderr,
		"cron equivalent expressions: %d used (%d compared in the "
		"minute position), 0 skipped\n",
		used, via_minute);
	cr_expect_eq(used, 10);
	cr_expect_eq(via_minute, 2);
}

Test(cron, ccronexpr_invalid_expressions)
{
	FILE *f = fopen(data_path("ccronexpr_invalid_expressions.csv"), "r");
	char line[512];
	int used = 0, via_minute = 0;

	cr_assert_not_null(f);
	cr_assert_not_null(fgets(line, sizeof(line), f));
	while (fgets(line, sizeof(line), f)) {
		char *col[1], w[8][64], expr[400];
		vg_cron c;
		cr_assert_eq(split_csv(line, col, 1), 1);
		cr_assert_eq(words(col[0], w), 6, "not 6 fields: %s", col[0]);
		if (strcmp(w[0], "0") == 0 || strcmp(w[0], "*") == 0) {
			snprintf(expr, sizeof(expr), "%s %s %s %s %s", w[1],
				 w[2], w[3], w[4], w[5]);
		} else {
			snprintf(expr, sizeof(expr), "%s * * * *", w[0]);
			via_minute++;
		}
		vg_error_clear(&E);
		int rc = vg_cron_parse(expr, &c, &E);
		cr_expect_eq(rc, VG_EPARSE, "\"%s\" (from \"%s\") accepted",
			     expr, col[0]);
		cr_expect_gt(E.column, 0, "\"%s\": no column", expr);
		cr_expect_neq(strstr(E.msg, "field"), NULL, "%s", E.msg);
		used++;
	}
	fclose(f);
	fprintf(stderr,
		"cron invalid expressions: %d used (%d with the bad seconds "
		"field tried as minutes), 0 skipped\n",
		used, via_minute);
	cr_expect_eq(used, 18);
	cr_expect_eq(via_minute, 7);
}

/* ---- our own cases ------------------------------------------------- */

Test(cron, dom_dow_or_rule)
{
	/* Both restricted: the 13th OR a Friday. 2026-02-01 is a Sunday. */
	expect_next("0 0 13 * fri", "2026-02-01_00:00:00",
		    "2026-02-06_00:00:00");
	expect_next("0 0 13 * fri", "2026-02-06_00:00:00",
		    "2026-02-13_00:00:00"); /* the 13th is also a Friday */
	expect_next("0 0 13 * fri", "2026-02-13_00:00:00",
		    "2026-02-20_00:00:00");
	expect_next("0 0 13 * mon", "2026-02-09_00:00:00",
		    "2026-02-13_00:00:00"); /* a Friday the 13th: dom wins */
	/* dow unrestricted: the 13th only. */
	expect_next("0 0 13 * *", "2026-02-01_00:00:00",
		    "2026-02-13_00:00:00");
	/* dom `*` (or `*\/n`, or `?`): AND, i.e. dow alone decides. */
	expect_next("0 0 * * fri", "2026-02-01_00:00:00",
		    "2026-02-06_00:00:00");
	expect_next("0 0 */2 * fri", "2026-02-01_00:00:00",
		    "2026-02-13_00:00:00"); /* Fri 6th is even: skipped */
	expect_next("0 0 ? * fri", "2026-02-01_00:00:00",
		    "2026-02-06_00:00:00");
	vg_cron c = must_parse("0 0 1,15 * mon");
	cr_expect(!c.dom_star && !c.dow_star);
	cr_expect(vg_cron_matches(&c, utc_time("2026-02-02_00:00:00"))); /* Mon */
	cr_expect(vg_cron_matches(&c, utc_time("2026-02-15_00:00:30"))); /* Sun 15 */
	cr_expect(!vg_cron_matches(&c, utc_time("2026-02-03_00:00:00")));
}

Test(cron, names_and_sunday)
{
	vg_cron a = must_parse("0 9 * JAN-mar Mon-Fri");
	vg_cron b = must_parse("0 9 * 1-3 1-5");
	cr_expect(same_cron(&a, &b));
	a = must_parse("0 0 * * 7");
	b = must_parse("0 0 * * sun");
	cr_expect(same_cron(&a, &b));
	cr_expect_eq(a.dow, 1);
	a = must_parse("0 0 * * 5-7"); /* Friday to Sunday */
	cr_expect_eq(a.dow, (1 << 5) | (1 << 6) | 1);
	a = must_parse("0 0 * dec,jan *");
	cr_expect_eq(a.month, (1 << 12) | (1 << 1));
	/* Saturday 2026-02-28 -> Sunday 2026-03-01, via 7. */
	expect_next("30 6 * * 7", "2026-02-28_12:00:00", "2026-03-01_06:30:00");
}

Test(cron, steps_ranges_lists)
{
	vg_cron c = must_parse("*/15 * * * *");
	cr_expect_eq(c.minute, (1ULL << 0) | (1ULL << 15) | (1ULL << 30) |
				       (1ULL << 45));
	c = must_parse("1-30/5 * * * *");
	cr_expect_eq(c.minute, (1ULL << 1) | (1ULL << 6) | (1ULL << 11) |
				       (1ULL << 16) | (1ULL << 21) |
				       (1ULL << 26));
	c = must_parse("50/5 0 1 1 *"); /* N/S: from N to the maximum */
	cr_expect_eq(c.minute, (1ULL << 50) | (1ULL << 55));
	c = must_parse("0,5,10-12,*/30 * * * *");
	cr_expect_eq(c.minute, (1ULL << 0) | (1ULL << 5) | (1ULL << 10) |
				       (1ULL << 11) | (1ULL << 12) |
				       (1ULL << 30));
	c = must_parse("0 0 * * *");
	cr_expect_eq(c.hour, 1);
	/* Month boundaries, leap years, year rollover. */
	expect_next("0 0 31 * *", "2026-04-15_00:00:00", "2026-05-31_00:00:00");
	expect_next("0 12 29 2 *", "2025-03-01_00:00:00", "2028-02-29_12:00:00");
	expect_next("59 23 31 12 *", "2026-12-31_23:59:00",
		    "2027-12-31_23:59:00");
	expect_next("* * * * *", "2026-01-01_00:00:59", "2026-01-01_00:01:00");
	expect_next("* * * * *", "2026-01-01_00:01:00", "2026-01-01_00:02:00");
	/* 1900 and 2100 are not leap years: Feb 29 skips to 2104. */
	expect_next("0 0 29 2 *", "2096-03-01_00:00:00", "2104-02-29_00:00:00");
}

Test(cron, macros)
{
	struct {
		const char *m, *e;
	} t[] = { { "@yearly", "0 0 1 1 *" },	 { "@annually", "0 0 1 1 *" },
		  { "@monthly", "0 0 1 * *" },	 { "@weekly", "0 0 * * 0" },
		  { "@daily", "0 0 * * *" },	 { "@midnight", "0 0 * * *" },
		  { "@hourly", "0 * * * *" },	 { "@HOURLY", "0 * * * *" } };
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		vg_cron a = must_parse(t[i].m), b = must_parse(t[i].e);
		cr_expect(same_cron(&a, &b), "%s", t[i].m);
	}
	vg_cron c;
	cr_expect_eq(vg_cron_parse("@reboot", &c, &E), VG_EPARSE);
	cr_expect_neq(strstr(E.msg, "unknown macro '@reboot'"), NULL, "%s",
		      E.msg);
}

static void expect_error(const char *expr, long column, const char *part)
{
	vg_cron c;
	vg_error_clear(&E);
	int rc = vg_cron_parse(expr, &c, &E);
	cr_expect_eq(rc, VG_EPARSE, "\"%s\" accepted", expr);
	cr_expect_eq(E.column, column, "\"%s\": column %ld, want %ld (%s)",
		     expr, E.column, column, E.msg);
	cr_expect_neq(strstr(E.msg, part), NULL, "\"%s\": '%s' not in '%s'",
		      expr, part, E.msg);
}

Test(cron, errors_name_field_column_reason)
{
	expect_error("0 0 45 * *", 5, "day-of-month field '45'");
	expect_error("0 0 45 * *", 5, "45 is out of range 1-31");
	expect_error("0 24 * * *", 3, "hour field");
	expect_error("60 * * * *", 1, "60 is out of range 0-59");
	expect_error("0 0 * 13 *", 7, "month field");
	expect_error("0 0 * * 8", 9, "day-of-week field");
	expect_error("*/0 * * * *", 3, "step 0 is out of range");
	expect_error("0 0 * * fri-mon", 13, "range 5-1 goes backwards");
	expect_error("0 0 * foo *", 7, "unknown name 'foo'");
	expect_error("0 0 * * mon,", 12, "trailing ','");
	expect_error("0 0 * * * *", 11, "more than 5 fields");
	expect_error("0 0 * *", 8, "4 fields, expected 5");
	expect_error("", 1, "0 fields");
	expect_error("1x * * * *", 2, "unexpected character 'x'");
	expect_error("? * * * *", 1, "minute field"); /* `?` only in days */
	expect_error("0 0 1-/2 * *", 7, "unexpected character '/' (expected a number)");
	expect_error("0 0 1- * *", 7, "a value is missing");
	expect_error("0 0 * * sunday", 9, "unknown name");
}

Test(cron, never_fires)
{
	vg_cron c = must_parse("0 0 30 2 *");
	int64_t n;
	cr_expect_eq(vg_cron_next(&c, utc_time("2026-01-01_00:00:00"), &n),
		     VG_ENOTFOUND);
	c = must_parse("0 0 31 4,6,9,11 *");
	cr_expect_eq(vg_cron_next(&c, 0, &n), VG_ENOTFOUND);
}

/* Europe/Paris, 2026: clocks go 02:00 -> 03:00 on 29 March and
 * 03:00 -> 02:00 on 25 October. */
Test(cron, dst_europe_paris)
{
	setenv("TZ", "Europe/Paris", 1);
	tzset();
	/* Skipped hour: 02:30 fires at 03:00 CEST (01:00 UTC), once. */
	expect_next("30 2 * * *", "2026-03-28_23:00:00", "2026-03-29_01:00:00");
	expect_next("30 2 * * *", "2026-03-29_01:00:00", "2026-03-30_00:30:00");
	expect_next("*/15 * * * *", "2026-03-29_00:50:00",
		    "2026-03-29_01:00:00");
	expect_next("*/15 * * * *", "2026-03-29_01:00:00",
		    "2026-03-29_01:15:00");
	/* Repeated hour: 02:30 fires at its first occurrence (CEST, 00:30
	 * UTC), not again at 02:30 CET (01:30 UTC). */
	expect_next("30 2 * * *", "2026-10-24_22:00:00", "2026-10-25_00:30:00");
	expect_next("30 2 * * *", "2026-10-25_00:30:00", "2026-10-26_01:30:00");
	/* An ordinary day in winter and in summer: local time is used. */
	expect_next("0 4 * * *", "2026-01-10_00:00:00", "2026-01-10_03:00:00");
	expect_next("0 4 * * *", "2026-07-10_00:00:00", "2026-07-10_02:00:00");
}

Test(cron, every_durations)
{
	struct {
		const char *s;
		uint64_t v;
	} ok[] = { { "90s", 90 },      { "15m", 900 },	{ "6h", 21600 },
		   { "1d", 86400 },    { "1h30m", 5400 }, { "366d", 366 * 86400ULL } };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t v = 0;
		cr_expect_eq(vg_every_parse(ok[i].s, &v, &E), 0, "%s: %s",
			     ok[i].s, E.msg);
		cr_expect_eq(v, ok[i].v, "%s", ok[i].s);
	}
	uint64_t v;
	cr_expect_eq(vg_every_parse("15", &v, &E), VG_EPARSE);
	cr_expect_neq(strstr(E.msg, "needs a unit"), NULL, "%s", E.msg);
	cr_expect_eq(vg_every_parse("5w", &v, &E), VG_EPARSE);
	cr_expect_eq(E.column, 2);
	cr_expect_eq(vg_every_parse("h", &v, &E), VG_EPARSE);
	cr_expect_eq(vg_every_parse("", &v, &E), VG_EPARSE);
	cr_expect_eq(vg_every_parse("0s", &v, &E), VG_ERANGE);
	cr_expect_eq(vg_every_parse("367d", &v, &E), VG_ERANGE);
	cr_expect_eq(vg_every_parse("99999999999999999999999d", &v, &E),
		     VG_ERANGE);
	cr_expect_eq(vg_every_parse("1h 30m", &v, &E), VG_EPARSE);
}
