/* Cron expressions (5 fields) and `every` durations for plugin schedules.
 *
 * Syntax: `minute hour day-of-month month day-of-week`, each field a
 * comma-separated list of `*`, `N`, `N-M`, `*\/S`, `N-M/S` or `N/S` (from N
 * to the field's maximum, step S). Months accept jan..dec and days of week
 * sun..sat (any case, also inside ranges: `mon-fri`); day-of-week 0 and 7
 * are both Sunday. `?` is accepted as `*` in the two day fields (Quartz and
 * ccronexpr habit). Macros: @yearly (@annually), @monthly, @weekly, @daily
 * (@midnight), @hourly. Ranges must go upwards (`fri-mon` is refused).
 *
 * Day rule (as in Vixie cron and cronie): when both day-of-month and
 * day-of-week are restricted, a day matches if EITHER matches
 * (`0 0 1,15 * mon` = the 1st, the 15th and every Monday). A field that
 * starts with `*` or `?` (including `*\/2`) counts as unrestricted, and then
 * both must match.
 *
 * Time zone: fields are read in the process's local time (TZ, through
 * localtime_r/mktime). Daylight saving time:
 *  - a wall-clock time that does not exist (the hour skipped in spring)
 *    fires at the first minute that exists after it (02:30 -> 03:00), once;
 *  - a wall-clock time that occurs twice (the hour repeated in autumn)
 *    fires only at its first occurrence.
 * Tests run with TZ=UTC, where none of this arises. */
#ifndef VIGIE_CRON_H
#define VIGIE_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "vigie/error.h"

/* A parsed expression: one bit per allowed value. Plain data, copyable. */
typedef struct vg_cron {
	uint64_t minute; /* bits 0..59 */
	uint32_t hour;   /* bits 0..23 */
	uint32_t dom;    /* bits 1..31 */
	uint16_t month;  /* bits 1..12 */
	uint8_t dow;     /* bits 0..6, Sunday = 0 (7 is folded into 0) */
	bool dom_star;   /* field started with '*' or '?': see the day rule */
	bool dow_star;
} vg_cron;

/* Parse `text` (NUL-terminated; fields separated by spaces or tabs).
 * Returns 0 and fills *out, or VG_EPARSE with err->column set to the
 * 1-based column of the offending character and err->msg naming the field
 * and the reason ("day-of-month field '45': 45 is out of range 1-31"). */
int vg_cron_parse(const char *text, vg_cron *out, vg_error *err);

/* First fire time strictly after `after` (Unix seconds), in local time as
 * described above; always on a minute boundary. Returns 0, or VG_ENOTFOUND
 * when the expression never fires (`0 0 31 6 *`: June has no 31st) within
 * the next 28 years, which covers every real calendar cycle. */
int vg_cron_next(const vg_cron *c, int64_t after, int64_t *next);

/* True if local time `t` (Unix seconds, any second within the minute)
 * matches the expression's fields. DST rules do not apply here. */
bool vg_cron_matches(const vg_cron *c, int64_t t);

/* Parse an interval: one or more `<integer><unit>` with unit s, m, h or d
 * ("90s", "15m", "6h", "1d", "1h30m"). Returns 0 and *seconds (> 0), or
 * VG_EPARSE (column of the bad character in err) / VG_ERANGE (zero, or
 * longer than 366 days). */
int vg_every_parse(const char *text, uint64_t *seconds, vg_error *err);

#endif
