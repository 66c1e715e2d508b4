/* Periods: `2024`, `2024-Q1`, `2024-03`, `2024-03-15` (contract).
 *
 * A period is encoded in a uint32_t whose numeric order is chronological
 * within one periodicity, and whose top bits give the periodicity, so keys
 * that embed it big-endian sort series in time order. Years 1000-9999. */
#ifndef VIGIE_PERIOD_H
#define VIGIE_PERIOD_H

#include <stddef.h>
#include <stdint.h>

typedef uint32_t vg_period;

typedef enum vg_periodicity {
	VG_PERIODICITY_NONE = 0,
	VG_YEAR = 1,
	VG_QUARTER = 2,
	VG_MONTH = 3,
	VG_DAY = 4,
} vg_periodicity;

/* Longest formatted period plus NUL ("2024-03-15"). */
#define VG_PERIOD_STRLEN 11

/* Parse `s` (exactly `len` bytes, no surrounding spaces). Returns 0 or
 * VG_EPERIOD (bad syntax, month 13, 30 February...). */
int vg_period_parse(const char *s, size_t len, vg_period *out);

/* Write the canonical string of `p` into buf (at least VG_PERIOD_STRLEN).
 * Returns 0 or VG_EINVAL for a value that is not a valid encoding. */
int vg_period_format(vg_period p, char *buf, size_t n);

vg_periodicity vg_period_kind(vg_period p);

/* The first and last calendar day of a period as days since 1970-01-01;
 * used to compare periods of different periodicities and for `as_of`. */
int64_t vg_period_first_day(vg_period p);
int64_t vg_period_last_day(vg_period p);

/* "year", "quarter", "month", "day" <-> enum. Parse also accepts the
 * French "annee"/"annuelle", "trimestre", "mois", "jour". */
int vg_periodicity_parse(const char *s, vg_periodicity *out);
const char *vg_periodicity_name(vg_periodicity k);

/* Days since 1970-01-01 of a civil date (proleptic Gregorian), and back. */
int64_t vg_days_from_civil(int y, unsigned m, unsigned d);
void vg_civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d);

/* Parse an ISO 8601 date (`2024-05-01`, meaning the end of that day UTC)
 * or UTC date-time (`2024-05-01T12:00:00Z`, `2024-05-01T12:00Z`,
 * `2024-05-01 12:00:00`) into Unix seconds. Returns 0 or VG_EPARSE. */
int vg_time_parse(const char *s, int64_t *out);

/* Format Unix seconds as `2024-05-01T12:00:00Z` (21 bytes with NUL). */
void vg_time_format(int64_t t, char *buf, size_t n);

#endif
