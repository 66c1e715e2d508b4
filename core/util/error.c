/* vg_strerror and the located error struct. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vigie/error.h"

const char *vg_strerror(int code)
{
	switch (code) {
	case VG_OK: return "success";
	case VG_ENOMEM: return "out of memory";
	case VG_EINVAL: return "invalid argument";
	case VG_ENOTFOUND: return "not found";
	case VG_EIO: return "input/output error";
	case VG_ESCHEMA: return "unsupported schema version";
	case VG_EFULL: return "disk full";
	case VG_EREADONLY: return "read-only";
	case VG_EEXIST: return "already exists";
	case VG_EPARSE: return "parse error";
	case VG_EPERIOD: return "invalid period";
	case VG_ESTORE: return "storage error";
	case VG_EBUSY: return "busy";
	case VG_ERANGE: return "out of range";
	case VG_ETOOBIG: return "too big";
	case VG_EBADROWS: return "bad rows in input";
	case VG_ETIMEOUT: return "time limit exceeded";
	case VG_ECANCELED: return "canceled";
	case VG_ESANDBOX: return "refused by the plugin sandbox";
	case VG_EPLUGIN: return "plugin error";
	}
	return "unknown error";
}

void vg_error_clear(vg_error *e)
{
	if (e)
		memset(e, 0, sizeof(*e));
}

static void set_v(vg_error *e, int code, const char *where, long line,
		  long column, const char *fmt, va_list ap)
{
	e->code = code;
	e->line = line;
	e->column = column;
	if (where)
		snprintf(e->where, sizeof(e->where), "%s", where);
	else
		e->where[0] = '\0';
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

int vg_error_set(vg_error *e, int code, const char *fmt, ...)
{
	if (!e)
		return code;
	va_list ap;
	va_start(ap, fmt);
	set_v(e, code, NULL, 0, 0, fmt, ap);
	va_end(ap);
	return code;
}

int vg_error_at(vg_error *e, int code, const char *where, long line,
		long column, const char *fmt, ...)
{
	if (!e)
		return code;
	va_list ap;
	va_start(ap, fmt);
	set_v(e, code, where, line, column, fmt, ap);
	va_end(ap);
	return code;
}

const char *vg_error_format(const vg_error *e, char *buf, size_t n)
{
	if (!n)
		return buf;
	buf[0] = '\0';
	if (!e)
		return buf;
	const char *msg = e->msg[0] ? e->msg : vg_strerror(e->code);
	if (e->where[0] && e->line > 0 && e->column > 0)
		snprintf(buf, n, "%s:%ld:%ld: %s", e->where, e->line,
			 e->column, msg);
	else if (e->where[0] && e->line > 0)
		snprintf(buf, n, "%s:%ld: %s", e->where, e->line, msg);
	else if (e->where[0])
		snprintf(buf, n, "%s: %s", e->where, msg);
	else
		snprintf(buf, n, "%s", msg);
	return buf;
}
