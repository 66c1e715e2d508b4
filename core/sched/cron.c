/* 5-field cron expressions and `every` durations (see vigie/cron.h).
 *
 * The next fire time is searched on the wall clock with plain calendar
 * arithmetic (no time zone involved), then the wall time found is turned
 * into an instant with mktime. Keeping the two steps apart makes the DST
 * rules explicit: only the conversion knows about skipped and repeated
 * hours. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "vigie/common.h"
#include "vigie/cron.h"

enum { F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_COUNT };

static const char *const month_names[] = { "jan", "feb", "mar", "apr",
					   "may", "jun", "jul", "aug",
					   "sep", "oct", "nov", "dec" };
static const char *const dow_names[] = { "sun", "mon", "tue", "wed",
					 "thu", "fri", "sat" };

/* One table drives parsing and messages for the five fields. */
static const struct field_def {
	const char *label;
	int min, max;
	const char *const *names; /* 3-letter names, or NULL */
	int nnames;
	int name_base; /* value of names[0] */
} FIELDS[F_COUNT] = {
	{ "minute", 0, 59, NULL, 0, 0 },
	{ "hour", 0, 23, NULL, 0, 0 },
	{ "day-of-month", 1, 31, NULL, 0, 0 },
	{ "month", 1, 12, month_names, 12, 1 },
	{ "day-of-week", 0, 7, dow_names, 7, 0 },
};

/* Context for error messages: the whole expression and the field. */
struct pctx {
	const char *text;
	const char *fstart; /* start of the current field in text */
	size_t flen;
	int field;
	vg_error *err;
};

static int perr(const struct pctx *p, const char *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int perr(const struct pctx *p, const char *at, const char *fmt, ...)
{
	char reason[160];
	long col = (long)(at - p->text) + 1;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return vg_error_at(p->err, VG_EPARSE, NULL, 0, col,
			   "cron \"%s\": %s field '%.*s', column %ld: %s",
			   p->text, FIELDS[p->field].label, (int)p->flen,
			   p->fstart, col, reason);
}

/* A number or (for month and day-of-week) a name. Advances *s. */
static int parse_value(const struct pctx *p, const char **s, const char *end,
		       int *out)
{
	const struct field_def *f = &FIELDS[p->field];
	const char *c = *s;

	if (c < end && isdigit((unsigned char)*c)) {
		long v = 0;
		while (c < end && isdigit((unsigned char)*c)) {
			if (v < 100000)
				v = v * 10 + (*c - '0');
			c++;
		}
		if (v < f->min || v > f->max)
			return perr(p, *s, "%ld is out of range %d-%d", v,
				    f->min, f->max);
		*out = (int)v;
		*s = c;
		return 0;
	}
	if (f->names && end - c >= 3 && isalpha((unsigned char)c[0])) {
		for (int i = 0; i < f->nnames; i++) {
			if (strncasecmp(c, f->names[i], 3) == 0 &&
			    (end - c == 3 || !isalpha((unsigned char)c[3]))) {
				*out = f->name_base + i;
				*s = c + 3;
				return 0;
			}
		}
		return perr(p, c, "unknown name '%.3s' (expected %s)", c,
			    p->field == F_MON ? "jan..dec" : "sun..sat");
	}
	if (c >= end)
		return perr(p, c, "a value is missing at the end");
	return perr(p, c, "unexpected character '%c' (expected a number%s)",
		    *c, f->names ? " or a name" : "");
}

/* Parse one field into `bits`; sets *star when it starts with '*'/'?'. */
static int parse_field(struct pctx *p, uint64_t *bits, bool *star)
{
	const struct field_def *f = &FIELDS[p->field];
	const char *s = p->fstart, *end = p->fstart + p->flen;
	bool day_field = p->field == F_DOM || p->field == F_DOW;

	*bits = 0;
	*star = (*s == '*' || (day_field && *s == '?'));
	for (;;) {
		int lo, hi, step = 1;
		const char *item = s;
		bool ranged = false;

		if (s < end && (*s == '*' || (day_field && *s == '?'))) {
			lo = f->min;
			hi = f->max;
			ranged = true;
			s++;
		} else {
			int rc = parse_value(p, &s, end, &lo);
			if (rc)
				return rc;
			hi = lo;
			if (s < end && *s == '-') {
				const char *h = ++s;
				rc = parse_value(p, &s, end, &hi);
				if (rc)
					return rc;
				if (hi < lo)
					return perr(p, h,
						    "range %d-%d goes backwards",
						    lo, hi);
				ranged = true;
			}
		}
		if (s < end && *s == '/') {
			const char *st = ++s;
			long v = 0;
			if (s >= end || !isdigit((unsigned char)*s))
				return perr(p, st,
					    "a step must be a positive "
					    "integer");
			while (s < end && isdigit((unsigned char)*s)) {
				if (v < 100000)
					v = v * 10 + (*s - '0');
				s++;
			}
			if (v < 1 || v > f->max)
				return perr(p, st,
					    "step %ld is out of range 1-%d",
					    v, f->max);
			step = (int)v;
			/* `N/S` means from N to the maximum, every S. */
			if (!ranged)
				hi = f->max;
		}
		for (int v = lo; v <= hi; v += step)
			*bits |= (uint64_t)1 << v;
		if (s == end)
			break;
		if (*s != ',')
			return perr(p, s,
				    "unexpected character '%c' after '%.*s' "
				    "(expected ',', '-' or '/')",
				    *s, (int)(s - item), item);
		s++;
		if (s == end)
			return perr(p, s - 1, "trailing ','");
	}
	return 0;
}

static const struct {
	const char *name;
	const char *expr;
} MACROS[] = {
	{ "@yearly", "0 0 1 1 *" },  { "@annually", "0 0 1 1 *" },
	{ "@monthly", "0 0 1 * *" }, { "@weekly", "0 0 * * 0" },
	{ "@daily", "0 0 * * *" },   { "@midnight", "0 0 * * *" },
	{ "@hourly", "0 * * * *" },
};

int vg_cron_parse(const char *text, vg_cron *out, vg_error *err)
{
	struct pctx p = { .text = text, .err = err };
	const char *s = text;
	uint64_t bits[F_COUNT];
	bool stars[F_COUNT];
	int n = 0;

	if (!text || !out)
		return vg_error_set(err, VG_EINVAL, "cron: no expression");
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '@') {
		size_t len = strcspn(s, " \t");
		const char *rest = s + len;
		while (*rest == ' ' || *rest == '\t')
			rest++;
		for (size_t i = 0; i < VG_ARRAY_LEN(MACROS); i++) {
			if (strlen(MACROS[i].name) == len &&
			    strncasecmp(s, MACROS[i].name, len) == 0 &&
			    !*rest)
				return vg_cron_parse(MACROS[i].expr, out,
						     err);
		}
		return vg_error_at(err, VG_EPARSE, NULL, 0,
				   (long)(s - text) + 1,
				   "cron \"%s\": unknown macro '%.*s' "
				   "(expected @yearly, @annually, @monthly, "
				   "@weekly, @daily, @midnight or @hourly)",
				   text, (int)len, s);
	}
	while (*s) {
		const char *start = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
		if (n == F_COUNT)
			return vg_error_at(err, VG_EPARSE, NULL, 0,
					   (long)(start - text) + 1,
					   "cron \"%s\": more than 5 fields "
					   "(minute hour day-of-month month "
					   "day-of-week; seconds are not "
					   "supported), extra field at "
					   "column %ld",
					   text, (long)(start - text) + 1);
		p.field = n;
		p.fstart = start;
		p.flen = (size_t)(s - start);
		int rc = parse_field(&p, &bits[n], &stars[n]);
		if (rc)
			return rc;
		n++;
		while (*s == ' ' || *s == '\t')
			s++;
	}
	if (n < F_COUNT)
		return vg_error_at(err, VG_EPARSE, NULL, 0,
				   (long)(s - text) + 1,
				   "cron \"%s\": %d field%s, expected 5 "
				   "(minute hour day-of-month month "
				   "day-of-week)",
				   text, n, n == 1 ? "" : "s");
	memset(out, 0, sizeof(*out));
	out->minute = bits[F_MIN];
	out->hour = (uint32_t)bits[F_HOUR];
	out->dom = (uint32_t)bits[F_DOM];
	out->month = (uint16_t)bits[F_MON];
	/* 7 is Sunday too. */
	out->dow = (uint8_t)((bits[F_DOW] | (bits[F_DOW] >> 7)) & 0x7f);
	out->dom_star = stars[F_DOM];
	out->dow_star = stars[F_DOW];
	return 0;
}

/* ---- calendar arithmetic ------------------------------------------ */

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30,
				 31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : d[m - 1];
}

/* 0 = Sunday (Sakamoto's method). */
static int day_of_week(int y, int m, int d)
{
	static const int t[] = { 0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4 };
	if (m < 3)
		y -= 1;
	return (y + y / 4 - y / 100 + y / 400 + t[m - 1] + d) % 7;
}

static bool day_ok(const vg_cron *c, int y, int m, int d)
{
	bool dom = (c->dom >> d) & 1;
	bool dow = (c->dow >> day_of_week(y, m, d)) & 1;
	if (c->dom_star || c->dow_star)
		return dom && dow;
	return dom || dow;
}

struct wall {
	int y, mo, d, h, mi;
};

static bool wall_eq(const struct wall *w, const struct tm *tm)
{
	return tm->tm_year + 1900 == w->y && tm->tm_mon + 1 == w->mo &&
	       tm->tm_mday == w->d && tm->tm_hour == w->h &&
	       tm->tm_min == w->mi;
}

/* First wall time >= *w that matches, in place. False if none within the
 * year limit. */
static bool wall_search(const vg_cron *c, struct wall *w, int year_limit)
{
	while (w->y <= year_limit) {
		if (!((c->month >> w->mo) & 1)) {
			w->d = 1, w->h = 0, w->mi = 0;
			if (++w->mo > 12)
				w->mo = 1, w->y++;
			continue;
		}
		if (w->d > days_in_month(w->y, w->mo) ||
		    !day_ok(c, w->y, w->mo, w->d)) {
			w->h = 0, w->mi = 0;
			if (++w->d > days_in_month(w->y, w->mo)) {
				w->d = 1;
				if (++w->mo > 12)
					w->mo = 1, w->y++;
			}
			continue;
		}
		if (!((c->hour >> w->h) & 1)) {
			w->mi = 0;
			if (++w->h > 23)
				w->h = 0, w->d++;
			continue;
		}
		while (w->mi < 60 && !((c->minute >> w->mi) & 1))
			w->mi++;
		if (w->mi == 60) {
			w->mi = 0;
			if (++w->h > 23)
				w->h = 0, w->d++;
			continue;
		}
		return true;
	}
	return false;
}

static void wall_add_minute(struct wall *w)
{
	if (++w->mi < 60)
		return;
	w->mi = 0;
	if (++w->h < 24)
		return;
	w->h = 0;
	if (++w->d <= days_in_month(w->y, w->mo))
		return;
	w->d = 1;
	if (++w->mo > 12)
		w->mo = 1, w->y++;
}

/* The instants whose local wall time is *w: none (skipped by DST), one, or
 * two (repeated hour). Returns how many were found; *first is the earliest. */
static int wall_instants(const struct wall *w, int64_t *first)
{
	static const int isdst[] = { 0, 1, -1 };
	int found = 0;
	int64_t lo = 0, hi = 0;

	for (size_t i = 0; i < VG_ARRAY_LEN(isdst); i++) {
		struct tm tm = { 0 }, back;
		tm.tm_year = w->y - 1900;
		tm.tm_mon = w->mo - 1;
		tm.tm_mday = w->d;
		tm.tm_hour = w->h;
		tm.tm_min = w->mi;
		tm.tm_isdst = isdst[i];
		time_t t = mktime(&tm);
		if (t == (time_t)-1)
			continue;
		if (!localtime_r(&t, &back) || !wall_eq(w, &back))
			continue;
		if (!found || (int64_t)t < lo)
			lo = (int64_t)t;
		if (!found || (int64_t)t > hi)
			hi = (int64_t)t;
		found = 1;
	}
	if (!found)
		return 0;
	*first = lo;
	return hi != lo ? 2 : 1;
}

int vg_cron_next(const vg_cron *c, int64_t after, int64_t *next)
{
	struct tm tm;
	time_t ta = (time_t)after;
	struct wall w;
	int year_limit;

	if (!c || !next || !localtime_r(&ta, &tm))
		return VG_EINVAL;
	w = (struct wall){ tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			   tm.tm_hour, tm.tm_min };
	year_limit = w.y + 28;
	wall_add_minute(&w); /* strictly after: the next whole minute */
	/* Each turn either returns or moves w forward; the bound only guards
	 * against a time zone database that misbehaves. */
	for (int guard = 0; guard < 100000; guard++) {
		int64_t t;
		if (!wall_search(c, &w, year_limit))
			return VG_ENOTFOUND;
		int n = wall_instants(&w, &t);
		if (n == 0) {
			/* Skipped by DST: fire at the first minute that
			 * exists after it. */
			struct wall x = w;
			int k = 0;
			do {
				wall_add_minute(&x);
			} while (wall_instants(&x, &t) == 0 && ++k < 48 * 60);
			if (k >= 48 * 60)
				return VG_ENOTFOUND;
		}
		if (t > after) {
			*next = t;
			return 0;
		}
		/* Only the second occurrence of a repeated wall time is
		 * left, or the DST jump landed before `after`: skip it. */
		wall_add_minute(&w);
	}
	return VG_ENOTFOUND;
}

bool vg_cron_matches(const vg_cron *c, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!c || !localtime_r(&tt, &tm))
		return false;
	return ((c->minute >> tm.tm_min) & 1) && ((c->hour >> tm.tm_hour) & 1) &&
	       ((c->month >> (tm.tm_mon + 1)) & 1) &&
	       day_ok(c, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

int vg_every_parse(const char *text, uint64_t *seconds, vg_error *err)
{
	const uint64_t limit = 366ULL * 86400;
	const char *s = text;
	uint64_t total = 0;

	if (!text || !seconds)
		return vg_error_set(err, VG_EINVAL, "every: no duration");
	if (!*s)
		return vg_error_at(err, VG_EPARSE, NULL, 0, 1,
				   "every \"\": empty duration (expected "
				   "e.g. 90s, 15m, 6h, 1d)");
	while (*s) {
		uint64_t v = 0, unit;
		const char *num = s;
		if (!isdigit((unsigned char)*s))
			return vg_error_at(err, VG_EPARSE, NULL, 0,
					   (long)(s - text) + 1,
					   "every \"%s\", column %ld: expected "
					   "a number, found '%c'",
					   text, (long)(s - text) + 1, *s);
		while (isdigit((unsigned char)*s)) {
			if (v <= limit)
				v = v * 10 + (uint64_t)(*s - '0');
			s++;
		}
		switch (*s) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		default:
			return vg_error_at(err, VG_EPARSE, NULL, 0,
					   (long)(s - text) + 1,
					   "every \"%s\", column %ld: number "
					   "'%.*s' needs a unit s, m, h or d",
					   text, (long)(s - text) + 1,
					   (int)(s - num), num);
		}
		s++;
		if (v > limit || v * unit > limit || total + v * unit > limit)
			return vg_error_at(err, VG_ERANGE, NULL, 0, 1,
					   "every \"%s\": longer than 366 days",
					   text);
		total += v * unit;
	}
	if (total == 0)
		return vg_error_at(err, VG_ERANGE, NULL, 0, 1,
				   "every \"%s\": the interval must be at "
				   "least 1 second",
				   text);
	*seconds = total;
	return 0;
}
