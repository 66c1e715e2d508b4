/* Request parsing, argument checking, dispatch and the envelopes of
 * protocol v1. The operations themselves are in ops.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api/api_int.h"
#include "vigie/common.h"

#define MAX_DEPTH 32
#define MAX_SAFE_INT 9007199254740992.0 /* 2^53: exact in a double */

static const vg_api_errcode errcodes[] = {
	{ "bad_request",
	  "the request is not valid JSON, not UTF-8, nested too deep, not an "
	  "object, or has no \"op\"" },
	{ "unknown_op", "no operation of that name" },
	{ "bad_argument",
	  "an argument is missing, unknown, of the wrong type, out of range "
	  "or malformed (the message names it)" },
	{ "unknown_indicator", "no indicator with that code" },
	{ "unknown_territory", "no territory with that code" },
	{ "unknown_level", "no level of that name" },
	{ "unknown_plugin", "no plugin of that name" },
	{ "not_found", "the thing asked for does not exist" },
	{ "bad_input", "a file to import has bad rows, or a definition is "
		       "refused (the message names the member at fault): "
		       "nothing was written" },
	{ "forbidden",
	  "a write/admin operation without the token or a same-user unix "
	  "socket" },
	{ "too_large", "the request is longer than the daemon accepts" },
	{ "conflict", "the target already exists (a backup directory)" },
	{ "busy", "too many connections, or the daemon is shutting down" },
	{ "unavailable", "needs the daemon, or a part not in this build" },
	{ "storage", "the store failed (disk full, I/O error...)" },
	{ "internal", "a bug or out of memory: please report it" },
};

const vg_api_errcode *vg_api_errcodes(size_t *n)
{
	*n = VG_ARRAY_LEN(errcodes);
	return errcodes;
}

const char *vg_arg_type_name(vg_arg_type t)
{
	switch (t) {
	case VG_ARG_STR: return "string";
	case VG_ARG_INT: return "integer";
	case VG_ARG_BOOL: return "boolean";
	case VG_ARG_STRS: return "array of strings";
	case VG_ARG_OBJ: return "object";
	}
	return "?";
}

/* ---- envelopes ------------------------------------------------------------ */

static cJSON *envelope(const cJSON *id, bool ok)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	/* Echo the id if it is a scalar; anything else would let a client
	 * make us copy an arbitrary structure. */
	if (id && (cJSON_IsString(id) || cJSON_IsNumber(id)))
		cJSON_AddItemToObject(o, "id", cJSON_Duplicate(id, false));
	else
		cJSON_AddNullToObject(o, "id");
	cJSON_AddBoolToObject(o, "ok", ok);
	return o;
}

cJSON *vg_api_ok(const cJSON *id, cJSON *result)
{
	cJSON *o = envelope(id, true);
	if (!o) {
		cJSON_Delete(result);
		return NULL;
	}
	cJSON_AddItemToObject(o, "result",
			      result ? result : cJSON_CreateObject());
	return o;
}

cJSON *vg_api_err(const cJSON *id, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cJSON *o = envelope(id, false);
	if (!o)
		return NULL;
	cJSON *e = cJSON_AddObjectToObject(o, "error");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", msg);
	return o;
}

/* ---- parsing -------------------------------------------------------------- */

/* Offset of the first invalid UTF-8 sequence, or -1 (overlongs,
 * surrogates and code points above U+10FFFF are invalid). */
static long utf8_invalid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t len;
		unsigned min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			len = 2, min = 0x80, c &= 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			len = 3, min = 0x800, c &= 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			len = 4, min = 0x10000, c &= 0x07;
		} else {
			return (long)i;
		}
		if (i + len > n)
			return (long)i;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return (long)i;
			c = (c << 6) | (s[i + k] & 0x3F);
		}
		if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
			return (long)i;
		i += len;
	}
	return -1;
}

/* Deepest nesting of arrays/objects outside strings. */
static int json_depth(const char *s, size_t n)
{
	int d = 0, max = 0;
	bool str = false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				str = false;
		} else if (c == '"') {
			str = true;
		} else if (c == '[' || c == '{') {
			if (++d > max)
				max = d;
			if (max > MAX_DEPTH)
				return max;
		} else if (c == ']' || c == '}') {
			d--;
		}
	}
	return max;
}

static cJSON *parse(const char *text, size_t len, const char *path_op,
		    cJSON **req);

cJSON *vg_api_parse(const char *text, size_t len, cJSON **req)
{
	return parse(text, len, NULL, req);
}

cJSON *vg_api_parse_body(const char *text, size_t len, const char *op,
			 cJSON **req)
{
	size_t i = 0;
	while (i < len && (text[i] == ' ' || text[i] == '\n' ||
			   text[i] == '\r' || text[i] == '\t'))
		i++;
	if (i == len) {
		*req = cJSON_CreateObject();
		cJSON_AddStringToObject(*req, "op", op);
		return NULL;
	}
	return parse(text, len, op, req);
}

static cJSON *parse(const char *text, size_t len, const char *path_op,
		    cJSON **req)
{
	*req = NULL;
	long bad = utf8_invalid((const unsigned char *)text, len);
	if (bad >= 0)
		return vg_api_err(NULL, "bad_request",
				  "request is not valid UTF-8 (byte %ld)",
				  bad + 1);
	if (json_depth(text, len) > MAX_DEPTH)
		return vg_api_err(NULL, "bad_request",
				  "request nests arrays/objects deeper than %d",
				  MAX_DEPTH);
	const char *end = NULL;
	cJSON *o = cJSON_ParseWithLengthOpts(text, len, &end, false);
	if (!o) {
		size_t at = end ? (size_t)(end - text) : 0;
		return vg_api_err(NULL, "bad_request",
				  "request is not valid JSON (at byte %zu of %zu)",
				  at + 1, len);
	}
	/* Only whitespace may follow the object. */
	for (const char *p = end; p && p < text + len; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' && *p) {
			cJSON_Delete(o);
			return vg_api_err(NULL, "bad_request",
					  "request has text after the JSON "
					  "value (at byte %zu): one request per "
					  "line",
					  (size_t)(p - text) + 1);
		}
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return vg_api_err(NULL, "bad_request",
				  "request must be a JSON object "
				  "{\"id\":..,\"op\":..}");
	}
	const cJSON *op = cJSON_GetObjectItemCaseSensitive(o, "op");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
	if (path_op && !op) {
		cJSON_AddStringToObject(o, "op", path_op);
		*req = o;
		return NULL;
	}
	if (path_op && (!cJSON_IsString(op) || strcmp(op->valuestring, path_op))) {
		cJSON *e = vg_api_err(id, "bad_request",
				      "\"op\" in the body differs from the "
				      "URL's (%s)",
				      path_op);
		cJSON_Delete(o);
		return e;
	}
	if (!cJSON_IsString(op)) {
		cJSON *e = vg_api_err(id, "bad_request",
				      op ? "\"op\" must be a string"
					 : "request has no \"op\"");
		cJSON_Delete(o);
		return e;
	}
	*req = o;
	return NULL;
}

/* ---- arguments ------------------------------------------------------------ */

int vg_api_check_args(const vg_api_op *op, const cJSON *req, char *msg,
		      size_t n)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, req)
	{
		const char *k = it->string;
		if (!strcmp(k, "id") || !strcmp(k, "op") || !strcmp(k, "token"))
			continue;
		const vg_api_arg *a = op->args;
		while (a->name && strcmp(a->name, k))
			a++;
		if (!a->name) {
			snprintf(msg, n, "%s: unknown argument '%s'", op->name,
				 k);
			return VG_EINVAL;
		}
	}
	for (const vg_api_arg *a = op->args; a->name; a++) {
		it = cJSON_GetObjectItemCaseSensitive(req, a->name);
		if (!it || cJSON_IsNull(it)) {
			if (a->required) {
				snprintf(msg, n, "%s: missing argument '%s' (%s)",
					 op->name, a->name, a->help);
				return VG_EINVAL;
			}
			continue;
		}
		bool ok = false;
		switch (a->type) {
		case VG_ARG_STR:
			ok = cJSON_IsString(it) && strlen(it->valuestring) < 4096;
			break;
		case VG_ARG_INT:
			if (cJSON_IsNumber(it)) {
				double d = it->valuedouble;
				if (!isfinite(d) || fabs(d) > MAX_SAFE_INT ||
				    d != floor(d)) {
					snprintf(msg, n,
						 "%s: '%s' must be an integer "
						 "of at most 2^53 in absolute "
						 "value",
						 op->name, a->name);
					return VG_EINVAL;
				}
				ok = true;
			}
			break;
		case VG_ARG_BOOL:
			ok = cJSON_IsBool(it);
			break;
		case VG_ARG_STRS:
			ok = cJSON_IsArray(it);
			const cJSON *e;
			cJSON_ArrayForEach(e, it)
			{
				ok = ok && cJSON_IsString(e);
			}
			break;
		case VG_ARG_OBJ:
			ok = cJSON_IsObject(it);
			break;
		}
		if (!ok) {
			snprintf(msg, n, "%s: argument '%s' must be %s %s",
				 op->name, a->name,
				 a->type == VG_ARG_INT ? "an" : "a",
				 vg_arg_type_name(a->type));
			return VG_EINVAL;
		}
	}
	return 0;
}

/* ---- dispatch ------------------------------------------------------------- */

cJSON *vg_api_call(vg_store *s, const vg_api_hooks *hooks,
		   const char *data_dir, const cJSON *req, bool admin)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "id");
	const cJSON *opj = cJSON_GetObjectItemCaseSensitive(req, "op");
	if (!cJSON_IsString(opj))
		return vg_api_err(id, "bad_request", "request has no \"op\"");
	const vg_api_op *op = vg_api_find(opj->valuestring);
	if (!op)
		return vg_api_err(id, "unknown_op",
				  "unknown op '%.64s' (see docs/protocol.md; "
				  "try \"ping\")",
				  opj->valuestring);
	if ((op->flags & VG_OP_ADMIN) && !admin)
		return vg_api_err(id, "forbidden",
				  "%s: a write/admin operation: send the "
				  "daemon's \"token\", or use the unix socket "
				  "as the daemon's user",
				  op->name);
	char msg[512];
	if (vg_api_check_args(op, req, msg, sizeof(msg)))
		return vg_api_err(id, "bad_argument", "%s", msg);
	if (!op->fn)
		return vg_api_err(id, "unavailable",
				  "%s: only over a connection to the daemon",
				  op->name);
	vg_api_req q = { .store = s, .hooks = hooks, .args = req,
			 .data_dir = data_dir };
	if (op->fn(&q)) {
		cJSON_Delete(q.result);
		return vg_api_err(id, q.ecode ? q.ecode : "internal", "%s",
				  q.emsg[0] ? q.emsg : "failed");
	}
	return vg_api_ok(id, q.result);
}

/* ---- the reference, for docs/protocol.md ---------------------------------- */

typedef struct sbuf {
	char *s;
	size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->s ? b->s + b->len : NULL,
				  b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (b->s && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
		char *ns = realloc(b->s, cap);
		if (!ns)
			return;
		b->s = ns;
		b->cap = cap;
	}
}

char *vg_api_doc_markdown(void)
{
	sbuf b = { 0 };
	sb_printf(&b, "<!-- generated by `build/vigied --doc-ops`: edit "
		      "core/api/ops.c, not this block -->\n\n");
	size_t n;
	const vg_api_op *t = vg_api_ops(&n);
	sb_printf(&b, "| op | access | what it does |\n|---|---|---|\n");
	for (size_t i = 0; i < n; i++)
		sb_printf(&b, "| [`%s`](#op-%s) | %s | %s |\n", t[i].name,
			  t[i].name,
			  t[i].flags & VG_OP_ADMIN ? "admin" : "read",
			  t[i].summary);
	for (size_t i = 0; i < n; i++) {
		const vg_api_op *op = &t[i];
		sb_printf(&b, "\n### <a id=\"op-%s\"></a>`%s`\n\n%s.", op->name,
			  op->name, op->summary);
		if (op->flags & VG_OP_ADMIN)
			sb_printf(&b, " **Admin**: needs the token or a "
				      "same-user unix socket.");
		if (op->flags & VG_OP_DAEMON)
			sb_printf(&b, " Daemon only.");
		if (op->flags & VG_OP_HEAVY)
			sb_printf(&b, " Runs on a worker thread.");
		sb_printf(&b, "\n\n");
		if (op->args[0].name) {
			sb_printf(&b, "| argument | type | required | "
				      "meaning |\n|---|---|---|---|\n");
			for (const vg_api_arg *a = op->args; a->name; a++)
				sb_printf(&b, "| `%s` | %s | %s | %s |\n",
					  a->name, vg_arg_type_name(a->type),
					  a->required ? "yes" : "no", a->help);
			sb_printf(&b, "\n");
		} else {
			sb_printf(&b, "No arguments.\n\n");
		}
		if (op->cols) {
			sb_printf(&b, "Rows (`result.rows`):");
			for (const vg_api_col *c = op->cols; c->name; c++)
				sb_printf(&b, " `%s`%s%s", c->name,
					  c->num ? " (number)" : "",
					  c[1].name ? "," : ".");
			sb_printf(&b, "\n\n");
		}
		sb_printf(&b, "```\n%s\n```\n", op->example);
	}
	sb_printf(&b, "\n### Error codes\n\n| code | meaning |\n|---|---|\n");
	for (size_t i = 0; i < VG_ARRAY_LEN(errcodes); i++)
		sb_printf(&b, "| `%s` | %s |\n", errcodes[i].code,
			  errcodes[i].meaning);
	sb_printf(&b, "<!-- end of generated block -->\n");
	return b.s;
}
