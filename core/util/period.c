/* Periods, civil dates and UTC timestamps.
 *
 * Only libc: this file sits under every module that handles points, so it
 * must not pull in anything else. Digits are tested by hand rather than
 * with isdigit()/strtol() so that parsing ignores the locale and refuses
 * the spaces and signs those functions would quietly accept. */
#include "vigie/period.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "vigie/error.h"

#define KIND_SHIFT 28
#define ORDINAL_MASK ((UINT32_C(1) << KIND_SHIFT) - 1)

#define YEAR_MIN 1000
#define YEAR_MAX 9999

/* Days are stored shifted so that every day of year 1000 onwards is a
 * positive ordinal (1000-01-01 is day -354285) and 0 stays free to mean
 * "unbounded". */
#define DAY_OFFSET 1000000

#define SECS_PER_DAY 86400

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads exactly `n` digits; false if any byte is not a digit. */
static bool read_digits(const char *s, int n, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* Writes `v` as exactly `n` zero-padded digits (v must fit). */
static void write_digits(char *s, int n, unsigned v)
{
	for (int i = n - 1; i >= 0; i--) {
		s[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned char mdays[12] = {31, 28, 31, 30, 31, 30,
						31, 31, 30, 31, 30, 31};

	if (m == 2 && is_leap(y))
		return 29;
	return mdays[m - 1];
}

/* A 4-digit year in range; a leading 0 would be a year below 1000. */
static bool read_year(const char *s, unsigned *y)
{
	return read_digits(s, 4, y) && *y >= YEAR_MIN && *y <= YEAR_MAX;
}

/* `YYYY-MM-DD` with a real calendar date, at s[0..9]. */
static bool read_date(const char *s, unsigned *y, unsigned *m, unsigned *d)
{
	if (s[4] != '-' || s[7] != '-')
		return false;
	if (!read_year(s, y) || !read_digits(s + 5, 2, m) ||
	    !read_digits(s + 8, 2, d))
		return false;
	if (*m < 1 || *m > 12)
		return false;
	return *d >= 1 && *d <= days_in_month(*y, *m);
}

/* Day ordinals of the first and last representable days, computed once
 * rather than written as magic numbers. */
static uint32_t day_ordinal_min(void)
{
	return (uint32_t)(vg_days_from_civil(YEAR_MIN, 1, 1) + DAY_OFFSET);
}

static uint32_t day_ordinal_max(void)
{
	return (uint32_t)(vg_days_from_civil(YEAR_MAX, 12, 31) + DAY_OFFSET);
}

static vg_period make(vg_periodicity k, uint32_t ordinal)
{
	return ((uint32_t)k << KIND_SHIFT) | ordinal;
}

/* The kind of `p` if it is a valid encoding (kind known, ordinal inside
 * years 1000-9999), else NONE. Every reader goes through this so that a
 * corrupt key never turns into a plausible-looking date. */
static vg_periodicity decode(vg_period p, uint32_t *ordinal)
{
	uint32_t k = p >> KIND_SHIFT;
	uint32_t o = p & ORDINAL_MASK;
	bool ok;

	switch (k) {
	case VG_YEAR:
		ok = o >= YEAR_MIN && o <= YEAR_MAX;
		break;
	case VG_QUARTER:
		ok = o >= YEAR_MIN * 4u && o <= YEAR_MAX * 4u + 3;
		break;
	case VG_MONTH:
		ok = o >= YEAR_MIN * 12u && o <= YEAR_MAX * 12u + 11;
		break;
	case VG_DAY:
		ok = o >= day_ordinal_min() && o <= day_ordinal_max();
		break;
	default:
		ok = false;
		break;
	}
	if (!ok)
		return VG_PERIODICITY_NONE;
	*ordinal = o;
	return (vg_periodicity)k;
}

int vg_period_parse(const char *s, size_t len, vg_period *out)
{
	unsigned y, m, d, q;

	if (out == NULL)
		return VG_EINVAL;
	if (s == NULL)
		return VG_EPERIOD;

	switch (len) {
	case 4:
		if (!read_year(s, &y))
			return VG_EPERIOD;
		*out = make(VG_YEAR, y);
		return 0;
	case 7:
		if (!read_year(s, &y) || s[4] != '-')
			return VG_EPERIOD;
		if (s[5] == 'Q' || s[5] == 'q') {
			if (s[6] < '1' || s[6] > '4')
				return VG_EPERIOD;
			q = (unsigned)(s[6] - '0');
			*out = make(VG_QUARTER, y * 4 + q - 1);
			return 0;
		}
		if (!read_digits(s + 5, 2, &m) || m < 1 || m > 12)
			return VG_EPERIOD;
		*out = make(VG_MONTH, y * 12 + m - 1);
		return 0;
	case 10:
		if (!read_date(s, &y, &m, &d))
			return VG_EPERIOD;
		*out = make(VG_DAY,
			    (uint32_t)(vg_days_from_civil((int)y, m, d) +
				       DAY_OFFSET));
		return 0;
	default:
		return VG_EPERIOD;
	}
}

int vg_period_format(vg_period p, char *buf, size_t n)
{
	uint32_t o;
	vg_periodicity k = decode(p, &o);
	size_t need;
	int y;
	unsigned m, d;

	if (buf == NULL)
		return VG_EINVAL;

	switch (k) {
	case VG_YEAR:
		need = 5;
		break;
	case VG_QUARTER:
	case VG_MONTH:
		need = 8;
		break;
	case VG_DAY:
		need = 11;
		break;
	default:
		return VG_EINVAL;
	}
	if (n < need)
		return VG_EINVAL;

	switch (k) {
	case VG_YEAR:
		write_digits(buf, 4, o);
		break;
	case VG_QUARTER:
		write_digits(buf, 4, o / 4);
		buf[4] = '-';
		buf[5] = 'Q';
		buf[6] = (char)('1' + o % 4);
		break;
	case VG_MONTH:
		write_digits(buf, 4, o / 12);
		buf[4] = '-';
		write_digits(buf + 5, 2, o % 12 + 1);
		break;
	default:
		vg_civil_from_days((int64_t)o - DAY_OFFSET, &y, &m, &d);
		write_digits(buf, 4, (unsigned)y);
		buf[4] = '-';
		write_digits(buf + 5, 2, m);
		buf[7] = '-';
		write_digits(buf + 8, 2, d);
		break;
	}
	buf[need - 1] = '\0';
	return 0;
}

vg_periodicity vg_period_kind(vg_period p)
{
	uint32_t o;

	return decode(p, &o);
}

/* An invalid period (0 included) gives INT64_MIN as first day and
 * INT64_MAX as last day: 0 means "unbounded", so a range bound of 0
 * compares as open on that side without a special case at the caller. */
int64_t vg_period_first_day(vg_period p)
{
	uint32_t o;

	switch (decode(p, &o)) {
	case VG_YEAR:
		return vg_days_from_civil((int)o, 1, 1);
	case VG_QUARTER:
		return vg_days_from_civil((int)(o / 4), o % 4 * 3 + 1, 1);
	case VG_MONTH:
		return vg_days_from_civil((int)(o / 12), o % 12 + 1, 1);
	case VG_DAY:
		return (int64_t)o - DAY_OFFSET;
	default:
		return INT64_MIN;
	}
}

int64_t vg_period_last_day(vg_period p)
{
	uint32_t o;
	unsigned m;

	switch (decode(p, &o)) {
	case VG_YEAR:
		return vg_days_from_civil((int)o, 12, 31);
	case VG_QUARTER:
		m = o % 4 * 3 + 3;
		return vg_days_from_civil((int)(o / 4), m,
					  days_in_month(o / 4, m));
	case VG_MONTH:
		m = o % 12 + 1;
		return vg_days_from_civil((int)(o / 12), m,
					  days_in_month(o / 12, m));
	case VG_DAY:
		return (int64_t)o - DAY_OFFSET;
	default:
		return INT64_MAX;
	}
}

/* ASCII-only case folding: strcasecmp() follows the locale, and these
 * names come from config files that must read the same everywhere. */
static bool name_equal(const char *a, const char *b)
{
	for (;; a++, b++) {
		char ca = *a, cb = *b;

		if (ca >= 'A' && ca <= 'Z')
			ca = (char)(ca - 'A' + 'a');
		if (cb >= 'A' && cb <= 'Z')
			cb = (char)(cb - 'A' + 'a');
		if (ca != cb)
			return false;
		if (ca == '\0')
			return true;
	}
}

static const struct {
	const char *name;
	vg_periodicity kind;
} periodicity_names[] = {
	{"year", VG_YEAR},
	{"yearly", VG_YEAR},
	{"annual", VG_YEAR},
	{"annee", VG_YEAR},
	{"ann\xc3\xa9" "e", VG_YEAR}, /* "année" in UTF-8 */
	{"annuelle", VG_YEAR},
	{"quarter", VG_QUARTER},
	{"quarterly", VG_QUARTER},
	{"trimestre", VG_QUARTER},
	{"trimestrielle", VG_QUARTER},
	{"month", VG_MONTH},
	{"monthly", VG_MONTH},
	{"mois", VG_MONTH},
	{"mensuelle", VG_MONTH},
	{"day", VG_DAY},
	{"daily", VG_DAY},
	{"jour", VG_DAY},
	{"quotidienne", VG_DAY},
};

int vg_periodicity_parse(const char *s, vg_periodicity *out)
{
	if (s == NULL || out == NULL)
		return VG_EINVAL;
	for (size_t i = 0;
	     i < sizeof(periodicity_names) / sizeof(periodicity_names[0]);
	     i++) {
		if (name_equal(s, periodicity_names[i].name)) {
			*out = periodicity_names[i].kind;
			return 0;
		}
	}
	return VG_EPERIOD;
}

const char *vg_periodicity_name(vg_periodicity k)
{
	switch (k) {
	case VG_PERIODICITY_NONE:
		return "none";
	case VG_YEAR:
		return "year";
	case VG_QUARTER:
		return "quarter";
	case VG_MONTH:
		return "month";
	case VG_DAY:
		return "day";
	}
	/* A value outside the enum is a caller bug; still never NULL. */
	return "unknown";
}

/* Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms": years
 * start on 1 March so the leap day falls at the end, and 400-year eras
 * make the arithmetic exact for negative years as well. Done in int64_t so
 * that no int argument can overflow. */
int64_t vg_days_from_civil(int y, unsigned m, unsigned d)
{
	int64_t yy = (int64_t)y - (m <= 2);
	int64_t mm = m, dd = d;
	int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
	int64_t yoe = yy - era * 400; /* [0, 399] */
	int64_t doy = (153 * (mm > 2 ? mm - 3 : mm + 9) + 2) / 5 + dd - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; /* [0, 146096] */

	return era * 146097 + doe - 719468;
}

/* Same algorithm, year kept in int64_t; the public wrapper narrows. */
static void civil_from_days64(int64_t z, int64_t *y, unsigned *m,
			      unsigned *d)
{
	/* Absurd inputs are clamped (to about +-12 billion years) so the
	 * sums below cannot overflow: they give an absurd date, not UB. */
	const int64_t lim = INT64_C(1) << 42;
	int64_t era, doe, yoe, doy, mp;

	if (z > lim)
		z = lim;
	if (z < -lim)
		z = -lim;
	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097; /* [0, 146096] */
	/* [0, 399] */
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* [0, 365] */
	mp = (5 * doy + 2) / 153; /* [0, 11] */
	*d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

void vg_civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
	int64_t yy;

	civil_from_days64(z, &yy, m, d);
	/* Saturate rather than let the conversion wrap to a plausible year. */
	*y = yy > INT_MAX ? INT_MAX : yy < INT_MIN ? INT_MIN : (int)yy;
}

/* Accepted: `YYYY-MM-DD` alone, or followed by `T` or a space, `HH:MM`,
 * optional `:SS`, then nothing, `Z` or `+00:00`. Only UTC is accepted:
 * other offsets would be easy to parse but a non-UTC as_of in a request
 * is more likely a mistake than an intent. */
int vg_time_parse(const char *s, int64_t *out)
{
	unsigned y, mo, d, hh, mi, ss = 0;
	size_t len, pos;
	int64_t days;

	if (out == NULL)
		return VG_EINVAL;
	if (s == NULL)
		return VG_EPARSE;
	len = strlen(s);
	if (len < 10 || !read_date(s, &y, &mo, &d))
		return VG_EPARSE;
	days = vg_days_from_civil((int)y, mo, d);

	/* A bare date is the end of that day: "as of 2024-05-01" should
	 * include what was published during the 1st. */
	if (len == 10) {
		*out = days * SECS_PER_DAY + SECS_PER_DAY - 1;
		return 0;
	}

	if (len < 16 || (s[10] != 'T' && s[10] != ' ') || s[13] != ':')
		return VG_EPARSE;
	if (!read_digits(s + 11, 2, &hh) || !read_digits(s + 14, 2, &mi) ||
	    hh > 23 || mi > 59)
		return VG_EPARSE;
	pos = 16;
	if (pos < len && s[pos] == ':') {
		if (len < pos + 3 || !read_digits(s + pos + 1, 2, &ss) ||
		    ss > 59)
			return VG_EPARSE;
		pos += 3;
	}
	if (pos < len) {
		if (strcmp(s + pos, "Z") != 0 && strcmp(s + pos, "+00:00") != 0)
			return VG_EPARSE;
	}
	*out = days * SECS_PER_DAY + (int64_t)hh * 3600 + (int64_t)mi * 60 + ss;
	return 0;
}

void vg_time_format(int64_t t, char *buf, size_t n)
{
	/* Floor division: a negative remainder belongs to the previous day. */
	int64_t days = t / SECS_PER_DAY, secs = t % SECS_PER_DAY, y;
	unsigned m, d;

	if (buf == NULL || n == 0)
		return;
	if (secs < 0) {
		secs += SECS_PER_DAY;
		days--;
	}
	civil_from_days64(days, &y, &m, &d);
	snprintf(buf, n, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y, m,
		 d, (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60),
		 (unsigned)(secs % 60));
}
