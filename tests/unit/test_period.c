/* Periods, civil dates and timestamps (core/util/period.c). */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "vigie/error.h"
#include "vigie/period.h"

static vg_period parse_ok(const char *s)
{
	vg_period p = 0;
	int rc = vg_period_parse(s, strlen(s), &p);

	cr_assert_eq(rc, 0, "'%s' should parse, got %d", s, rc);
	cr_assert_neq(p, 0, "'%s' parsed to 0", s);
	return p;
}

static void roundtrip(const char *s, vg_periodicity kind)
{
	char buf[VG_PERIOD_STRLEN];
	vg_period p = parse_ok(s);

	cr_assert_eq(vg_period_kind(p), kind, "'%s' kind %d", s,
		     (int)vg_period_kind(p));
	cr_assert_eq(p >> 28, (uint32_t)kind, "'%s' top bits", s);
	cr_assert_eq(vg_period_format(p, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, s);
}

Test(period, roundtrip_samples)
{
	roundtrip("2024", VG_YEAR);
	roundtrip("1000", VG_YEAR);
	roundtrip("9999", VG_YEAR);
	roundtrip("2024-Q1", VG_QUARTER);
	roundtrip("2024-Q4", VG_QUARTER);
	roundtrip("1000-Q1", VG_QUARTER);
	roundtrip("9999-Q4", VG_QUARTER);
	roundtrip("2024-01", VG_MONTH);
	roundtrip("2024-12", VG_MONTH);
	roundtrip("1000-01", VG_MONTH);
	roundtrip("9999-12", VG_MONTH);
	roundtrip("2024-03-15", VG_DAY);
	roundtrip("2024-02-29", VG_DAY);
	roundtrip("2000-02-29", VG_DAY);
	roundtrip("1970-01-01", VG_DAY);
	roundtrip("1000-01-01", VG_DAY);
	roundtrip("9999-12-31", VG_DAY);
}

Test(period, lowercase_quarter_formats_uppercase)
{
	char buf[VG_PERIOD_STRLEN];
	vg_period p = parse_ok("2024-q3");

	cr_assert_eq(p, parse_ok("2024-Q3"));
	cr_assert_eq(vg_period_format(p, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "2024-Q3");
}

/* Walk every value of each kind: format, parse back to the same value, and
 * check that encodings grow with time. */
static void walk_kind(vg_periodicity kind, const char *first, const char *last,
		      uint32_t expect_count)
{
	char buf[VG_PERIOD_STRLEN];
	vg_period p = parse_ok(first), end = parse_ok(last), back;
	uint32_t count = 0;
	int64_t prev_last = vg_period_first_day(p) - 1;

	for (;; p++) {
		cr_assert_eq(vg_period_kind(p), kind, "%08x", p);
		cr_assert_eq(vg_period_format(p, buf, sizeof(buf)), 0);
		cr_assert_eq(vg_period_parse(buf, strlen(buf), &back), 0,
			     "%s", buf);
		cr_assert_eq(back, p, "%s", buf);
		/* Consecutive periods tile the calendar without gaps. */
		cr_assert_eq(vg_period_first_day(p), prev_last + 1, "%s", buf);
		prev_last = vg_period_last_day(p);
		count++;
		if (p == end)
			break;
	}
	cr_assert_eq(count, expect_count);
	/* One step past either end is not a valid encoding. */
	cr_assert_eq(vg_period_kind(end + 1), VG_PERIODICITY_NONE);
	cr_assert_eq(vg_period_kind(parse_ok(first) - 1), VG_PERIODICITY_NONE);
}

Test(period, every_year_quarter_month)
{
	walk_kind(VG_YEAR, "1000", "9999", 9000);
	walk_kind(VG_QUARTER, "1000-Q1", "9999-Q4", 9000 * 4);
	walk_kind(VG_MONTH, "1000-01", "9999-12", 9000 * 12);
}

Test(period, every_day)
{
	/* 9000 years = 22.5 cycles of 400 years of 146097 days. */
	walk_kind(VG_DAY, "1000-01-01", "9999-12-31",
		  (uint32_t)(vg_days_from_civil(9999, 12, 31) -
			     vg_days_from_civil(1000, 1, 1) + 1));
	cr_assert_eq(vg_days_from_civil(10000, 1, 1) -
			     vg_days_from_civil(1000, 1, 1),
		     146097 * 45 / 2);
}

Test(period, ordering)
{
	cr_assert_lt(parse_ok("2023"), parse_ok("2024"));
	cr_assert_lt(parse_ok("2024-Q1"), parse_ok("2024-Q2"));
	cr_assert_lt(parse_ok("2024-Q4"), parse_ok("2025-Q1"));
	cr_assert_lt(parse_ok("2024-12"), parse_ok("2025-01"));
	cr_assert_lt(parse_ok("2024-01"), parse_ok("2024-02"));
	cr_assert_lt(parse_ok("2024-02-29"), parse_ok("2024-03-01"));
	cr_assert_lt(parse_ok("2024-12-31"), parse_ok("2025-01-01"));
	cr_assert_lt(parse_ok("1969-12-31"), parse_ok("1970-01-01"));
	/* Kinds are grouped by their top bits. */
	cr_assert_lt(parse_ok("9999"), parse_ok("1000-Q1"));
	cr_assert_lt(parse_ok("9999-Q4"), parse_ok("1000-01"));
	cr_assert_lt(parse_ok("9999-12"), parse_ok("1000-01-01"));
}

static void reject(const char *s, size_t len)
{
	vg_period p = 12345;

	cr_assert_eq(vg_period_parse(s, len, &p), VG_EPERIOD,
		     "'%.*s' should be rejected", (int)len, s);
}

static void reject_str(const char *s)
{
	reject(s, strlen(s));
}

Test(period, rejects)
{
	static const char *const bad[] = {
		"", "24", "202", "20240", "0999", "0000", "-2024", "+2024",
		" 2024", "2024 ", "2024\n", "2O24", "2024-", "2024-1",
		"2024-00", "2024-13", "2024-99", "2024-1a", "2024/03",
		"2024_03", "2024-+1", "2024- 1", "2024-Q0", "2024-Q5",
		"2024-Q", "2024-Q12", "2024-T1", "2024Q1", "2024-S1",
		"2024-W01", "2023-02-29", "2100-02-29", "2024-02-30",
		"2024-04-31", "2024-06-31", "2024-09-31", "2024-11-31",
		"2024-01-32", "2024-01-00", "2024-00-10", "2024-13-01",
		"2024-3-15", "2024-03-5", "2024-03-15 ", "2024-03-15T00:00",
		"2024/03/15", "2024-03/15", "20240315", "2024--3-15",
		"2024-03--5", "year", "2024-03-1x",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		reject_str(bad[i]);
	/* Exactly `len` bytes: an embedded NUL or a short length fails. */
	reject("2024\0", 5);
	reject("2024-03", 6);
	reject("2024-03-15", 9);
	reject(NULL, 0);
	cr_assert_eq(vg_period_parse("2024", 4, NULL), VG_EINVAL);
}

Test(period, len_is_honoured)
{
	vg_period p;

	/* The string may continue after `len` bytes (a slice of a line). */
	cr_assert_eq(vg_period_parse("2024-03-15,12.5", 10, &p), 0);
	cr_assert_eq(p, parse_ok("2024-03-15"));
	cr_assert_eq(vg_period_parse("2024-03-15", 7, &p), 0);
	cr_assert_eq(p, parse_ok("2024-03"));
	cr_assert_eq(vg_period_parse("2024-03-15", 4, &p), 0);
	cr_assert_eq(p, parse_ok("2024"));
}

Test(period, leap_years)
{
	parse_ok("2024-02-29");
	parse_ok("2000-02-29");
	parse_ok("1600-02-29");
	reject_str("2023-02-29");
	reject_str("1900-02-29");
	reject_str("2100-02-29");
}

Test(period, invalid_encodings)
{
	char buf[VG_PERIOD_STRLEN] = "x";

	static const vg_period bad[] = {
		0,
		(uint32_t)VG_YEAR << 28,
		((uint32_t)VG_YEAR << 28) | 999,
		((uint32_t)VG_YEAR << 28) | 10000,
		((uint32_t)VG_QUARTER << 28) | 3999,
		((uint32_t)VG_QUARTER << 28) | 40000,
		((uint32_t)VG_MONTH << 28) | 11999,
		((uint32_t)VG_MONTH << 28) | 120000,
		(uint32_t)VG_DAY << 28,
		5u << 28,
		15u << 28 | 2024,
		2024,
		UINT32_MAX,
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(vg_period_kind(bad[i]), VG_PERIODICITY_NONE,
			     "%08x", bad[i]);
		cr_assert_eq(vg_period_format(bad[i], buf, sizeof(buf)),
			     VG_EINVAL, "%08x", bad[i]);
		cr_assert_eq(vg_period_first_day(bad[i]), INT64_MIN);
		cr_assert_eq(vg_period_last_day(bad[i]), INT64_MAX);
	}
}

Test(period, format_buffer_size)
{
	char buf[VG_PERIOD_STRLEN];

	cr_assert_eq(vg_period_format(parse_ok("2024-03-15"), buf, 10),
		     VG_EINVAL);
	cr_assert_eq(vg_period_format(parse_ok("2024-03-15"), buf, 11), 0);
	cr_assert_str_eq(buf, "2024-03-15");
	cr_assert_eq(vg_period_format(parse_ok("2024"), buf, 4), VG_EINVAL);
	cr_assert_eq(vg_period_format(parse_ok("2024"), buf, 5), 0);
	cr_assert_str_eq(buf, "2024");
	cr_assert_eq(vg_period_format(parse_ok("2024-Q2"), buf, 8), 0);
	cr_assert_str_eq(buf, "2024-Q2");
	cr_assert_eq(vg_period_format(parse_ok("2024"), NULL, 5), VG_EINVAL);
}

Test(period, first_last_day)
{
	int64_t jan1 = vg_days_from_civil(2024, 1, 1);
	int64_t dec31 = vg_days_from_civil(2024, 12, 31);

	cr_assert_eq(vg_period_first_day(parse_ok("2024")), jan1);
	cr_assert_eq(vg_period_last_day(parse_ok("2024")), dec31);
	cr_assert_eq(vg_period_first_day(parse_ok("2024-Q1")), jan1);
	cr_assert_eq(vg_period_last_day(parse_ok("2024-Q1")),
		     vg_days_from_civil(2024, 3, 31));
	cr_assert_eq(vg_period_first_day(parse_ok("2024-Q2")),
		     vg_days_from_civil(2024, 4, 1));
	cr_assert_eq(vg_period_last_day(parse_ok("2024-Q2")),
		     vg_days_from_civil(2024, 6, 30));
	cr_assert_eq(vg_period_first_day(parse_ok("2024-Q3")),
		     vg_days_from_civil(2024, 7, 1));
	cr_assert_eq(vg_period_last_day(parse_ok("2024-Q3")),
		     vg_days_from_civil(2024, 9, 30));
	cr_assert_eq(vg_period_first_day(parse_ok("2024-Q4")),
		     vg_days_from_civil(2024, 10, 1));
	cr_assert_eq(vg_period_last_day(parse_ok("2024-Q4")), dec31);
	cr_assert_eq(vg_period_first_day(parse_ok("2024-01")), jan1);
	cr_assert_eq(vg_period_last_day(parse_ok("2024-02")),
		     vg_days_from_civil(2024, 2, 29));
	cr_assert_eq(vg_period_last_day(parse_ok("2023-02")),
		     vg_days_from_civil(2023, 2, 28));
	cr_assert_eq(vg_period_last_day(parse_ok("2024-04")),
		     vg_days_from_civil(2024, 4, 30));
	cr_assert_eq(vg_period_last_day(parse_ok("2024-12")), dec31);
	cr_assert_eq(vg_period_first_day(parse_ok("2024-03-15")),
		     vg_days_from_civil(2024, 3, 15));
	cr_assert_eq(vg_period_last_day(parse_ok("2024-03-15")),
		     vg_days_from_civil(2024, 3, 15));
	cr_assert_eq(vg_period_first_day(parse_ok("1970-01-01")), 0);
	cr_assert_eq(vg_period_last_day(parse_ok("1969")), -1);
	cr_assert_eq(vg_period_last_day(parse_ok("2024")) -
			     vg_period_first_day(parse_ok("2024")) + 1,
		     366);
	cr_assert_eq(vg_period_last_day(parse_ok("2023")) -
			     vg_period_first_day(parse_ok("2023")) + 1,
		     365);
}

Test(civil, known_points)
{
	int y;
	unsigned m, d;

	cr_assert_eq(vg_days_from_civil(1970, 1, 1), 0);
	cr_assert_eq(vg_days_from_civil(1970, 1, 2), 1);
	cr_assert_eq(vg_days_from_civil(1969, 12, 31), -1);
	cr_assert_eq(vg_days_from_civil(2000, 3, 1), 11017);
	cr_assert_eq(vg_days_from_civil(2000, 2, 29), 11016);
	cr_assert_eq(vg_days_from_civil(2024, 3, 15), 19797);
	cr_assert_eq(vg_days_from_civil(1000, 1, 1), -354285);
	cr_assert_eq(vg_days_from_civil(9999, 12, 31), 2932896);

	vg_civil_from_days(0, &y, &m, &d);
	cr_assert(y == 1970 && m == 1 && d == 1);
	vg_civil_from_days(11017, &y, &m, &d);
	cr_assert(y == 2000 && m == 3 && d == 1);
	vg_civil_from_days(19797, &y, &m, &d);
	cr_assert(y == 2024 && m == 3 && d == 15);
	vg_civil_from_days(-1, &y, &m, &d);
	cr_assert(y == 1969 && m == 12 && d == 31);
	vg_civil_from_days(-354285, &y, &m, &d);
	cr_assert(y == 1000 && m == 1 && d == 1);
}

/* Both directions agree with each other and with the C library's timegm()
 * (proleptic Gregorian too) over years 1000-9999, day by day. */
Test(civil, roundtrip_matches_timegm)
{
	int64_t z = vg_days_from_civil(1000, 1, 1);
	int64_t end = vg_days_from_civil(9999, 12, 31);

	for (; z <= end; z++) {
		int y;
		unsigned m, d;
		struct tm tm = {0};

		vg_civil_from_days(z, &y, &m, &d);
		cr_assert_eq(vg_days_from_civil(y, m, d), z, "%lld",
			     (long long)z);
		if (z % 97 != 0)
			continue;
		tm.tm_year = y - 1900;
		tm.tm_mon = (int)m - 1;
		tm.tm_mday = (int)d;
		cr_assert_eq((int64_t)timegm(&tm), z * 86400, "%d-%u-%u", y, m,
			     d);
	}
}

Test(civil, extreme_inputs_do_not_crash)
{
	int y;
	unsigned m, d;

	/* Meaningless dates, but no overflow (UBSan watches). */
	vg_civil_from_days(INT64_MAX, &y, &m, &d);
	cr_assert(m >= 1 && m <= 12 && d >= 1 && d <= 31);
	vg_civil_from_days(INT64_MIN, &y, &m, &d);
	cr_assert(m >= 1 && m <= 12 && d >= 1 && d <= 31);
	(void)vg_days_from_civil(INT32_MAX, 12, 31);
	(void)vg_days_from_civil(INT32_MIN, 1, 1);
}

static int64_t time_ok(const char *s)
{
	int64_t t = -1;
	int rc = vg_time_parse(s, &t);

	cr_assert_eq(rc, 0, "'%s' should parse, got %d", s, rc);
	return t;
}

Test(time, accepted_forms)
{
	/* 2024-05-01 is day 19844; 12:00 adds 43200 s. */
	const int64_t noon = 19844 * INT64_C(86400) + 43200;

	cr_assert_eq(time_ok("2024-05-01"), 19844 * INT64_C(86400) + 86399);
	cr_assert_eq(time_ok("2024-05-01T12:00:00Z"), noon);
	cr_assert_eq(time_ok("2024-05-01T12:00Z"), noon);
	cr_assert_eq(time_ok("2024-05-01T12:00:00"), noon);
	cr_assert_eq(time_ok("2024-05-01T12:00"), noon);
	cr_assert_eq(time_ok("2024-05-01 12:00:00"), noon);
	cr_assert_eq(time_ok("2024-05-01 12:00:00Z"), noon);
	cr_assert_eq(time_ok("2024-05-01 12:00"), noon);
	cr_assert_eq(time_ok("2024-05-01T12:00:00+00:00"), noon);
	cr_assert_eq(time_ok("2024-05-01T12:00+00:00"), noon);
	cr_assert_eq(time_ok("2024-05-01T12:34:56Z"), noon + 34 * 60 + 56);
	cr_assert_eq(time_ok("1970-01-01T00:00:00Z"), 0);
	cr_assert_eq(time_ok("1970-01-01"), 86399);
	cr_assert_eq(time_ok("1969-12-31T23:59:59Z"), -1);
	cr_assert_eq(time_ok("2024-02-29T23:59:59Z"),
		     vg_days_from_civil(2024, 3, 1) * 86400 - 1);
}

Test(time, rejects)
{
	static const char *const bad[] = {
		"", "2024", "2024-05", "2024-5-01", "2024-05-1",
		"2024-13-01", "2023-02-29", "2024-05-01Z", "2024-05-01T",
		"2024-05-01T12", "2024-05-01T12:", "2024-05-01T12:0",
		"2024-05-01T24:00:00Z", "2024-05-01T12:60:00Z",
		"2024-05-01T12:00:60Z", "2024-05-01T12:00:0Z",
		"2024-05-01T12:00:00ZZ", "2024-05-01T12:00:00+01:00",
		"2024-05-01T12:00:00-00:00", "2024-05-01T12:00:00+0000",
		"2024-05-01T12:00:00.5Z", "2024-05-01T12:00:00z",
		"2024-05-01t12:00:00Z", "2024-05-01X12:00:00Z",
		"2024-05-01  12:00:00", " 2024-05-01", "2024-05-01 ",
		"2024-05-01T12:00:00Z ", "2024-05-01T1:00:00Z",
		"2024-05-01T+1:00:00Z", "2024-05-01T12:+0:00Z",
		"0999-05-01", "not a date", "1714564800",
	};
	int64_t t = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(vg_time_parse(bad[i], &t), VG_EPARSE,
			     "'%s' should be rejected", bad[i]);
	cr_assert_eq(vg_time_parse(NULL, &t), VG_EPARSE);
	cr_assert_eq(vg_time_parse("2024-05-01", NULL), VG_EINVAL);
}

Test(time, format)
{
	char buf[21];

	vg_time_format(0, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1970-01-01T00:00:00Z");
	vg_time_format(-1, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1969-12-31T23:59:59Z");
	vg_time_format(19844 * INT64_C(86400) + 43200 + 34 * 60 + 56, buf,
		       sizeof(buf));
	cr_assert_str_eq(buf, "2024-05-01T12:34:56Z");
	vg_time_format(time_ok("2024-05-01"), buf, sizeof(buf));
	cr_assert_str_eq(buf, "2024-05-01T23:59:59Z");

	/* Truncates rather than overflowing a short buffer. */
	memset(buf, 'x', sizeof(buf));
	vg_time_format(0, buf, 5);
	cr_assert_str_eq(buf, "1970");
	cr_assert_eq(buf[5], 'x');
	vg_time_format(INT64_MAX, buf, sizeof(buf));
	vg_time_format(INT64_MIN, buf, sizeof(buf));
	vg_time_format(0, NULL, 0);
}

Test(time, format_parse_roundtrip)
{
	char buf[21];

	/* Every ~13 hours over 1000-9999, with odd seconds. */
	for (int64_t t = vg_days_from_civil(1000, 1, 1) * 86400;
	     t < vg_days_from_civil(10000, 1, 1) * 86400; t += 46801 * 7) {
		vg_time_format(t, buf, sizeof(buf));
		cr_assert_eq(time_ok(buf), t, "%s", buf);
	}
}

Test(periodicity, parse_and_name)
{
	static const struct {
		const char *s;
		vg_periodicity k;
	} ok[] = {
		{"year", VG_YEAR},
		{"YEAR", VG_YEAR},
		{"Yearly", VG_YEAR},
		{"annual", VG_YEAR},
		{"annee", VG_YEAR},
		{"Ann\xc3\xa9" "e", VG_YEAR},
		{"annuelle", VG_YEAR},
		{"quarter", VG_QUARTER},
		{"Quarterly", VG_QUARTER},
		{"trimestre", VG_QUARTER},
		{"TRIMESTRIELLE", VG_QUARTER},
		{"month", VG_MONTH},
		{"monthly", VG_MONTH},
		{"Mois", VG_MONTH},
		{"mensuelle", VG_MONTH},
		{"day", VG_DAY},
		{"DAILY", VG_DAY},
		{"jour", VG_DAY},
		{"quotidienne", VG_DAY},
	};
	static const char *const bad[] = {
		"", "none", "years", "yea", "week", " year", "year ",
		"annuel", "daily\n", "Q",
	};
	vg_periodicity k;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		k = VG_PERIODICITY_NONE;
		cr_assert_eq(vg_periodicity_parse(ok[i].s, &k), 0, "%s",
			     ok[i].s);
		cr_assert_eq(k, ok[i].k, "%s", ok[i].s);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(vg_periodicity_parse(bad[i], &k), VG_EPERIOD,
			     "'%s'", bad[i]);
	cr_assert_eq(vg_periodicity_parse(NULL, &k), VG_EINVAL);
	cr_assert_eq(vg_periodicity_parse("year", NULL), VG_EINVAL);

	cr_assert_str_eq(vg_periodicity_name(VG_PERIODICITY_NONE), "none");
	cr_assert_str_eq(vg_periodicity_name(VG_YEAR), "year");
	cr_assert_str_eq(vg_periodicity_name(VG_QUARTER), "quarter");
	cr_assert_str_eq(vg_periodicity_name(VG_MONTH), "month");
	cr_assert_str_eq(vg_periodicity_name(VG_DAY), "day");
	cr_assert_str_eq(vg_periodicity_name((vg_periodicity)9), "unknown");

	/* The canonical names parse back to their kind. */
	for (int i = VG_YEAR; i <= VG_DAY; i++) {
		const char *name = vg_periodicity_name((vg_periodicity)i);

		cr_assert_eq(vg_periodicity_parse(name, &k), 0, "%s", name);
		cr_assert_eq(k, (vg_periodicity)i);
	}
}
