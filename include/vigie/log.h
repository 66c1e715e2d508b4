/* Structured logs of the daemon: one line per event, as text for a
 * terminal ("2026-11-23T10:00:00Z info listening on tcp:127.0.0.1:7878")
 * or JSON lines for a log collector ({"time":..,"level":..,"msg":..}).
 * Thread-safe: lines from worker threads never interleave. */
#ifndef VIGIE_LOG_H
#define VIGIE_LOG_H

#include <stdio.h>

typedef enum vg_log_format { VG_LOG_TEXT, VG_LOG_JSON } vg_log_format;
typedef enum vg_log_level {
	VG_LOG_DEBUG,
	VG_LOG_INFO,
	VG_LOG_WARN,
	VG_LOG_ERROR
} vg_log_level;

/* Where and how to log (default: text on stderr, info and above). */
void vg_log_setup(FILE *f, vg_log_format fmt, vg_log_level min);
void vg_log(vg_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define vg_info(...) vg_log(VG_LOG_INFO, __VA_ARGS__)
#define vg_warn(...) vg_log(VG_LOG_WARN, __VA_ARGS__)
#define vg_errlog(...) vg_log(VG_LOG_ERROR, __VA_ARGS__)

#endif
