/* HTTP/1.1 for browsers and curl, with the same operations as NDJSON:
 *
 *   GET  /v1/<op>?arg=value&...   arguments typed from the op table
 *   POST /v1/<op>                 a JSON object body (its "op" optional)
 *   GET  /v1/events?indicators=a,b  server-sent events (subscribe)
 *   OPTIONS                       CORS preflight
 *
 * Parsing is http_parser's (Debian libhttp-parser); this file only maps
 * messages to requests and answers to responses. The parser is paused at
 * the end of each message so one message is answered at a time, in
 * order, even when a client pipelines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "server/server_int.h"
#include "vigie/common.h"

#define URL_MAX 8192
#define HDR_MAX 512

struct vg__http {
	http_parser p;
	char *url;
	size_t urllen, urlcap;
	char *body;
	size_t bodylen, bodycap;
	char hname[32];
	size_t hnlen;
	int hkind; /* which header the value being read belongs to */
	char origin[HDR_MAX], auth[HDR_MAX];
	bool url_too_long, body_too_large, keep_alive;
	int method;
};

enum { H_OTHER, H_ORIGIN, H_AUTH };

static http_parser_settings settings;

/* ---- parser callbacks ------------------------------------------------------ */

static vg__http *H(http_parser *p)
{
	return ((vg__conn *)p->data)->http;
}

static int on_message_begin(http_parser *p)
{
	vg__http *h = H(p);
	h->urllen = h->bodylen = h->hnlen = 0;
	h->origin[0] = h->auth[0] = '\0';
	h->url_too_long = h->body_too_large = false;
	h->hkind = H_OTHER;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	vg__http *h = H(p);
	if (h->urllen + len > URL_MAX) {
		h->url_too_long = true;
		return 0;
	}
	if (vg__buf_reserve(&h->url, &h->urlcap, h->urllen + len + 1))
		return 1;
	memcpy(h->url + h->urllen, at, len);
	h->urllen += len;
	h->url[h->urllen] = '\0';
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	vg__http *h = H(p);
	if (h->hkind != -1) { /* a new field starts */
		h->hnlen = 0;
		h->hkind = -1;
	}
	size_t room = sizeof(h->hname) - 1 - h->hnlen;
	size_t n = len < room ? len : room;
	memcpy(h->hname + h->hnlen, at, n);
	h->hnlen += n;
	h->hname[h->hnlen] = '\0';
	return 0;
}

static void append_hdr(char *dst, const char *at, size_t len)
{
	size_t cur = strlen(dst);
	size_t room = HDR_MAX - 1 - cur;
	size_t n = len < room ? len : room;
	memcpy(dst + cur, at, n);
	dst[cur + n] = '\0';
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	vg__http *h = H(p);
	if (h->hkind == -1)
		h->hkind = !strcasecmp(h->hname, "origin")	    ? H_ORIGIN
			   : !strcasecmp(h->hname, "authorization") ? H_AUTH
								    : H_OTHER;
	if (h->hkind == H_ORIGIN)
		append_hdr(h->origin, at, len);
	else if (h->hkind == H_AUTH)
		append_hdr(h->auth, at, len);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	vg__conn *c = p->data;
	vg__http *h = c->http;
	/* Past the limit the body is read and dropped, never kept. */
	if (h->body_too_large || h->bodylen + len > c->srv->max_request) {
		h->body_too_large = true;
		return 0;
	}
	if (vg__buf_reserve(&h->body, &h->bodycap, h->bodylen + len + 1))
		return 1;
	memcpy(h->body + h->bodylen, at, len);
	h->bodylen += len;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	vg__http *h = H(p);
	h->keep_alive = http_should_keep_alive(p);
	h->method = p->method;
	http_parser_pause(p, 1);
	return 0;
}

void vg__http_conn_init(vg__conn *c)
{
	if (!settings.on_message_complete) {
		settings.on_message_begin = on_message_begin;
		settings.on_url = on_url;
		settings.on_header_field = on_header_field;
		settings.on_header_value = on_header_value;
		settings.on_body = on_body;
		settings.on_message_complete = on_message_complete;
	}
	c->http = calloc(1, sizeof(*c->http));
	if (!c->http) {
		vg__conn_close(c);
		return;
	}
	http_parser_init(&c->http->p, HTTP_REQUEST);
	c->http->p.data = c;
}

void vg__http_conn_free(vg__conn *c)
{
	if (!c->http)
		return;
	free(c->http->url);
	free(c->http->body);
	free(c->http);
	c->http = NULL;
}

/* ---- responses ------------------------------------------------------------- */

static int status_of(const cJSON *resp, const char **reason)
{
	const cJSON *ok = cJSON_GetObjectItemCaseSensitive(resp, "ok");
	if (cJSON_IsTrue(ok)) {
		*reason = "OK";
		return 200;
	}
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(resp, "error");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
	static const struct {
		const char *code;
		int status;
		const char *reason;
	} map[] = {
		{ "bad_request", 400, "Bad Request" },
		{ "bad_argument", 400, "Bad Request" },
		{ "bad_input", 400, "Bad Request" },
		{ "forbidden", 403, "Forbidden" },
		{ "unknown_op", 404, "Not Found" },
		{ "unknown_indicator", 404, "Not Found" },
		{ "unknown_territory", 404, "Not Found" },
		{ "unknown_level", 404, "Not Found" },
		{ "unknown_plugin", 404, "Not Found" },
		{ "not_found", 404, "Not Found" },
		{ "conflict", 409, "Conflict" },
		{ "too_large", 413, "Payload Too Large" },
		{ "unavailable", 501, "Not Implemented" },
		{ "busy", 503, "Service Unavailable" },
	};
	for (size_t i = 0; cJSON_IsString(code) && i < VG_ARRAY_LEN(map); i++)
		if (!strcmp(map[i].code, code->valuestring)) {
			*reason = map[i].reason;
			return map[i].status;
		}
	*reason = "Internal Server Error";
	return 500;
}

static void cors_headers(vg__conn *c, char *buf, size_t n)
{
	const char *allow = c->srv->cors_origin;
	const char *origin = c->http->origin;
	buf[0] = '\0';
	if (!allow || !*origin)
		return;
	if (strcmp(allow, "*") && strcmp(allow, origin))
		return;
	snprintf(buf, n,
		 "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n",
		 !strcmp(allow, "*") ? "*" : origin);
}

static void send_head(vg__conn *c, int status, const char *reason,
		      const char *ctype, long long clen, const char *extra)
{
	char cors[HDR_MAX + 64], head[2048];
	cors_headers(c, cors, sizeof(cors));
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nServer: vigied\r\n%s%s%s%s",
			 status, reason, cors, extra ? extra : "",
			 ctype ? "Content-Type: " : "", ctype ? ctype : "");
	if (ctype)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	if (clen >= 0)
		n += snprintf(head + n, sizeof(head) - (size_t)n,
			      "Content-Length: %lld\r\nConnection: %s\r\n",
			      clen, c->http->keep_alive ? "keep-alive"
							: "close");
	n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	vg__conn_out(c, head, (size_t)n);
}

void vg__http_respond(vg__conn *c, const cJSON *req, const cJSON *resp)
{
	(void)req;
	char *body = cJSON_PrintUnformatted(resp);
	if (!body) {
		vg__conn_close(c);
		return;
	}
	const char *reason;
	int status = status_of(resp, &reason);
	size_t len = strlen(body);
	send_head(c, status, reason, "application/json", (long long)len + 1,
		  NULL);
	vg__conn_out(c, body, len);
	vg__conn_out(c, "\n", 1);
	cJSON_free(body);
	if (!c->http->keep_alive)
		vg__conn_close_soft(c);
}

static void respond_error(vg__conn *c, const char *code, const char *msg)
{
	cJSON *e = vg_api_err(NULL, code, "%s", msg);
	c->srv->requests++;
	c->srv->errors++;
	vg__http_respond(c, NULL, e);
	cJSON_Delete(e);
}

/* ---- requests -------------------------------------------------------------- */

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Percent-decode s[0..n) ('+' is a space) into a new string. */
static char *url_decode(const char *s, size_t n)
{
	char *o = malloc(n + 1), *w = o;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int a, b;
		if (s[i] == '+') {
			*w++ = ' ';
		} else if (s[i] == '%' && i + 2 < n &&
			   (a = hexval(s[i + 1])) >= 0 &&
			   (b = hexval(s[i + 2])) >= 0) {
			*w++ = (char)(a * 16 + b);
			i += 2;
		} else {
			*w++ = s[i];
		}
	}
	*w = '\0';
	return o;
}

static const vg_api_arg *find_arg(const vg_api_op *op, const char *name)
{
	for (const vg_api_arg *a = op ? op->args : NULL; a && a->name; a++)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}

/* A query-string value typed as the op's table says, so GET and POST
 * requests are checked alike. What does not convert stays a string and
 * the argument check names it. */
static cJSON *typed_value(const vg_api_arg *a, const char *v)
{
	if (!a)
		return cJSON_CreateString(v);
	char *end;
	switch (a->type) {
	case VG_ARG_INT: {
		double d = strtod(v, &end);
		if (*v && !*end)
			return cJSON_CreateNumber(d);
		break;
	}
	case VG_ARG_BOOL:
		if (!strcmp(v, "true") || !strcmp(v, "1"))
			return cJSON_CreateTrue();
		if (!strcmp(v, "false") || !strcmp(v, "0"))
			return cJSON_CreateFalse();
		break;
	case VG_ARG_STRS: {
		cJSON *arr = cJSON_CreateArray();
		const char *p = v;
		while (*p) {
			const char *comma = strchr(p, ',');
			size_t n = comma ? (size_t)(comma - p) : strlen(p);
			char *item = strndup(p, n);
			if (item && n)
				cJSON_AddItemToArray(arr,
						     cJSON_CreateString(item));
			free(item);
			p += n + (comma ? 1 : 0);
		}
		return arr;
	}
	case VG_ARG_OBJ: {
		cJSON *o = cJSON_Parse(v);
		if (o)
			return o;
		break;
	}
	case VG_ARG_STR:
		break;
	}
	return cJSON_CreateString(v);
}

static cJSON *query_to_request(const char *opname, const char *q, size_t n)
{
	const vg_api_op *op = vg_api_find(opname);
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", opname);
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && q[j] != '&')
			j++;
		const char *eq = memchr(q + i, '=', j - i);
		char *k = url_decode(q + i, (eq ? (size_t)(eq - q) : j) - i);
		char *v = eq ? url_decode(eq + 1, (size_t)(q + j - eq - 1))
			     : strdup("");
		if (k && v && *k && strcmp(k, "op")) {
			cJSON_DeleteItemFromObjectCaseSensitive(req, k);
			cJSON_AddItemToObject(req, k,
					      typed_value(find_arg(op, k), v));
		}
		free(k);
		free(v);
		i = j + 1;
	}
	return req;
}

static void start_events(vg__conn *c, cJSON *req)
{
	const cJSON *inds = cJSON_GetObjectItemCaseSensitive(req, "indicators");
	const vg_api_op *op = vg_api_find("subscribe");
	char msg[256];
	cJSON_DeleteItemFromObjectCaseSensitive(req, "op");
	cJSON_AddStringToObject(req, "op", "subscribe");
	if (vg_api_check_args(op, req, msg, sizeof(msg))) {
		respond_error(c, "bad_argument", msg);
		return;
	}
	int n = inds ? cJSON_GetArraySize(inds) : 0;
	if (n > 0 && !(c->subs = calloc((size_t)n, sizeof(*c->subs)))) {
		vg__conn_close(c);
		return;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, inds)
	{
		snprintf(c->subs[c->nsubs++], VG_CODE_MAX, "%s",
			 it->valuestring);
	}
	c->sse = c->subscribed = true;
	c->http->keep_alive = true;
	send_head(c, 200, "OK", "text/event-stream", -1,
		  "Cache-Control: no-cache\r\nConnection: keep-alive\r\n");
	char hello[128];
	int len = snprintf(hello, sizeof(hello),
			   "event: subscribed\ndata: {\"vintage\":%u}\n\n",
			   c->srv->last_vintage);
	vg__conn_out(c, hello, (size_t)len);
	c->srv->requests++;
}

static void handle_message(vg__conn *c)
{
	vg__http *h = c->http;
	if (h->method == HTTP_OPTIONS) {
		send_head(c, 204, "No Content", NULL, 0,
			  "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
			  "Access-Control-Allow-Headers: Content-Type, "
			  "Authorization\r\nAccess-Control-Max-Age: 86400\r\n");
		return;
	}
	if (h->url_too_long || h->body_too_large) {
		char msg[128];
		snprintf(msg, sizeof(msg), "%s longer than %zu bytes",
			 h->url_too_long ? "URL" : "request body",
			 h->url_too_long ? (size_t)URL_MAX
					 : c->srv->max_request);
		respond_error(c, "too_large", msg);
		return;
	}
	struct http_parser_url u;
	http_parser_url_init(&u);
	if (!h->url || http_parser_parse_url(h->url, h->urllen, 0, &u) ||
	    !(u.field_set & (1 << UF_PATH))) {
		respond_error(c, "bad_request", "malformed request URL");
		return;
	}
	const char *path = h->url + u.field_data[UF_PATH].off;
	size_t plen = u.field_data[UF_PATH].len;
	if (plen <= 4 || strncmp(path, "/v1/", 4)) {
		respond_error(c, "unknown_op",
			      "paths are /v1/<op> (e.g. /v1/ping); see "
			      "docs/protocol.md");
		return;
	}
	char opname[64];
	size_t olen = plen - 4;
	if (olen >= sizeof(opname) || memchr(path + 4, '/', olen)) {
		respond_error(c, "unknown_op", "unknown op in the URL path");
		return;
	}
	memcpy(opname, path + 4, olen);
	opname[olen] = '\0';
	cJSON *req = NULL;
	if (h->method == HTTP_GET) {
		const char *q = "";
		size_t qlen = 0;
		if (u.field_set & (1 << UF_QUERY)) {
			q = h->url + u.field_data[UF_QUERY].off;
			qlen = u.field_data[UF_QUERY].len;
		}
		bool events = !strcmp(opname, "events");
		/* The event stream takes subscribe's arguments. */
		req = query_to_request(events ? "subscribe" : opname, q, qlen);
		if (events) {
			start_events(c, req);
			cJSON_Delete(req);
			return;
		}
	} else if (h->method == HTTP_POST) {
		cJSON *err = vg_api_parse_body(h->body ? h->body : "",
					       h->bodylen, opname, &req);
		if (err) {
			c->srv->requests++;
			c->srv->errors++;
			vg__http_respond(c, NULL, err);
			cJSON_Delete(err);
			return;
		}
	} else {
		respond_error(c, "bad_request",
			      "method not allowed: use GET, POST or OPTIONS");
		return;
	}
	/* "Authorization: Bearer TOKEN" stands for the "token" argument. */
	if (!strncasecmp(h->auth, "Bearer ", 7) &&
	    !cJSON_GetObjectItemCaseSensitive(req, "token"))
		cJSON_AddStringToObject(req, "token", h->auth + 7);
	vg__dispatch(c, req);
}

void vg__http_pump(vg__conn *c)
{
	size_t pos = 0;
	while (c->http && !c->busy && !c->closing && !c->shutting &&
	       !c->bp_paused && !c->sse && pos < c->inlen) {
		http_parser *p = &c->http->p;
		size_t n = http_parser_execute(p, &settings, c->in + pos,
					       c->inlen - pos);
		pos += n;
		enum http_errno e = HTTP_PARSER_ERRNO(p);
		if (e == HPE_PAUSED) {
			http_parser_pause(p, 0);
			handle_message(c);
			continue;
		}
		if (e != HPE_OK) {
			char msg[160];
			snprintf(msg, sizeof(msg), "malformed HTTP request: %s",
				 http_errno_description(e));
			c->http->keep_alive = false;
			respond_error(c, "bad_request", msg);
			pos = c->inlen;
			break;
		}
		if (n == 0)
			break;
	}
	if (c->sse)
		pos = c->inlen; /* an event stream ignores what comes in */
	if (pos) {
		memmove(c->in, c->in + pos, c->inlen - pos);
		c->inlen -= pos;
	}
}
