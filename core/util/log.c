/* Log lines, text or JSON. One fprintf per line under the FILE lock, so
 * lines from several threads never mix. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "vigie/log.h"

static FILE *log_file;
static vg_log_format log_fmt = VG_LOG_TEXT;
static vg_log_level log_min = VG_LOG_INFO;

void vg_log_setup(FILE *f, vg_log_format fmt, vg_log_level min)
{
	log_file = f;
	log_fmt = fmt;
	log_min = min;
}

static const char *level_name(vg_log_level l)
{
	static const char *const names[] = { "debug", "info", "warn",
					     "error" };
	return l <= VG_LOG_ERROR ? names[l] : "?";
}

void vg_log(vg_log_level level, const char *fmt, ...)
{
	if (level < log_min)
		return;
	FILE *f = log_file ? log_file : stderr;
	char msg[2048], when[32];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_fmt == VG_LOG_JSON) {
		cJSON *o = cJSON_CreateObject();
		char t[48];
		snprintf(t, sizeof(t), "%s.%03ldZ", when, ts.tv_nsec / 1000000);
		cJSON_AddStringToObject(o, "time", t);
		cJSON_AddStringToObject(o, "level", level_name(level));
		cJSON_AddStringToObject(o, "msg", msg);
		char *s = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		if (s)
			fprintf(f, "%s\n", s);
		cJSON_free(s);
	} else {
		fprintf(f, "%sZ %-5s %s\n", when, level_name(level), msg);
	}
	fflush(f);
}
