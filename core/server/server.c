/* Listeners and connections of the daemon (see include/vigie/server.h).
 *
 * A connection owns one input buffer and one output buffer. Input is
 * consumed request by request (an NDJSON line, or an HTTP message through
 * http_parser); answers are appended to the output buffer and written once
 * per read, so a pipelined burst costs one write. A heavy op moves the
 * request to the thread pool and the connection stops consuming input
 * until it is answered: answers always come back in request order. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "server/server_int.h"
#include "vigie/common.h"
#include "vigie/log.h"

#define WRITE_HIGH (4u << 20) /* stop reading a client above this backlog */
#define WRITE_LOW (1u << 20)  /* ... and resume below this */
#define POLL_MS 200	      /* how often new commits are looked for */

/* ---- small helpers --------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int vg__buf_reserve(char **b, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 4096;
	while (nc < need)
		nc *= 2;
	char *nb = realloc(*b, nc);
	if (!nb)
		return -1;
	*b = nb;
	*cap = nc;
	return 0;
}

void vg__conn_out(vg__conn *c, const char *data, size_t len)
{
	if (c->closing || vg__buf_reserve(&c->out, &c->outcap, c->outlen + len))
		return;
	memcpy(c->out + c->outlen, data, len);
	c->outlen += len;
}

/* ---- closing ------------------------------------------------------------- */

static void conn_free(vg__conn *c)
{
	vg_server *s = c->srv;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	free(c->in);
	free(c->out);
	free(c->subs);
	vg__http_conn_free(c);
	free(c);
	vg__server_maybe_done(s);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
	vg__conn *c = h->data;
	if (--c->handles == 0)
		conn_free(c);
}

void vg__conn_close(vg__conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	/* A request running on a worker still points at c: the after-work
	 * callback finishes the close. */
	if (c->busy)
		return;
	uv_close(&c->u.h, on_conn_handle_closed);
	uv_close((uv_handle_t *)&c->idle, on_conn_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	vg__conn *c = req->data;
	free(req);
	vg__conn_close(c);
}

/* Close once what was written has gone out. */
void vg__conn_close_soft(vg__conn *c)
{
	if (c->closing || c->shutting)
		return;
	vg__conn_flush(c);
	uv_shutdown_t *req = malloc(sizeof(*req));
	c->shutting = true;
	uv_read_stop(&c->u.s);
	if (!req || uv_shutdown(req, &c->u.s, on_shutdown)) {
		free(req);
		vg__conn_close(c);
		return;
	}
	req->data = c;
}

/* ---- writing ------------------------------------------------------------- */

typedef struct wreq {
	uv_write_t w;
	vg__conn *c;
	char *data;
} wreq;

static void pump(vg__conn *c);

static void on_write(uv_write_t *w, int status)
{
	wreq *r = (wreq *)w;
	vg__conn *c = r->c;
	free(r->data);
	free(r);
	if (status < 0) {
		vg__conn_close(c);
		return;
	}
	/* Back-pressure released: read again and go on with what was
	 * already buffered. */
	if (c->bp_paused && !c->closing &&
	    uv_stream_get_write_queue_size(&c->u.s) < WRITE_LOW) {
		c->bp_paused = false;
		pump(c);
	}
}

void vg__conn_flush(vg__conn *c)
{
	if (!c->outlen || c->closing)
		return;
	wreq *r = malloc(sizeof(*r));
	if (!r) {
		vg__conn_close(c);
		return;
	}
	r->c = c;
	r->data = c->out;
	uv_buf_t b = uv_buf_init(c->out, (unsigned)c->outlen);
	c->out = NULL;
	c->outlen = c->outcap = 0;
	if (uv_write(&r->w, &c->u.s, &b, 1, on_write)) {
		free(r->data);
		free(r);
		vg__conn_close(c);
		return;
	}
	if (uv_stream_get_write_queue_size(&c->u.s) > WRITE_HIGH)
		c->bp_paused = true;
}

/* ---- requests ------------------------------------------------------------- */

/* Constant-time comparison: the time taken does not tell how much of a
 * guessed token was right. */
static bool token_ok(const vg_server *s, const cJSON *req)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(req, "token");
	if (!s->token || !cJSON_IsString(t))
		return false;
	const char *a = s->token, *b = t->valuestring;
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;
	for (size_t i = 0; i < la; i++)
		d |= (unsigned char)(a[i] ^ (i < lb ? b[i] : 0));
	return d == 0;
}

typedef struct work {
	uv_work_t w;
	vg__conn *c;
	cJSON *req, *resp;
	bool admin;
} work;

static void work_run(uv_work_t *w)
{
	work *k = (work *)w;
	vg_server *s = k->c->srv;
	k->resp = vg_api_call(s->store, s->hooks, s->data_dir, k->req,
			      k->admin);
}

static void work_done(uv_work_t *w, int status)
{
	work *k = (work *)w;
	vg__conn *c = k->c;
	vg_server *s = c->srv;
	s->inflight--;
	c->busy = false;
	if (status == UV_ECANCELED || !k->resp)
		k->resp = vg_api_err(cJSON_GetObjectItemCaseSensitive(k->req,
								      "id"),
				     status == UV_ECANCELED ? "busy"
							    : "internal",
				     "request not run");
	if (c->closing) {
		/* The client left while its request ran. */
		c->closing = false;
		cJSON_Delete(k->req);
		cJSON_Delete(k->resp);
		free(k);
		vg__conn_close(c);
		return;
	}
	vg__respond(c, k->req, k->resp);
	cJSON_Delete(k->req);
	cJSON_Delete(k->resp);
	free(k);
	pump(c);
}

static void count_request(vg_server *s, const char *op, const cJSON *resp)
{
	s->requests++;
	size_t n;
	const vg_api_op *t = vg_api_ops(&n);
	for (size_t i = 0; i < n && i < VG__MAX_OPS; i++)
		if (!strcmp(t[i].name, op)) {
			s->by_op[i]++;
			break;
		}
	if (resp && cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(resp, "ok")))
		s->errors++;
}

static cJSON *subscribe(vg__conn *c, const cJSON *req)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "id");
	const cJSON *inds = cJSON_GetObjectItemCaseSensitive(req, "indicators");
	int n = inds ? cJSON_GetArraySize(inds) : 0;
	free(c->subs);
	c->subs = NULL;
	c->nsubs = 0;
	if (n > 0) {
		c->subs = calloc((size_t)n, sizeof(*c->subs));
		if (!c->subs)
			return vg_api_err(id, "internal", "out of memory");
		const cJSON *it;
		cJSON_ArrayForEach(it, inds)
		{
			snprintf(c->subs[c->nsubs++], VG_CODE_MAX, "%s",
				 it->valuestring);
		}
	}
	c->subscribed = true;
	cJSON *res = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(res, "indicators");
	for (size_t i = 0; i < c->nsubs; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(c->subs[i]));
	cJSON_AddNumberToObject(res, "vintage", c->srv->last_vintage);
	return vg_api_ok(id, res);
}

/* Answer one parsed request (owned: freed here or by the worker). */
void vg__dispatch(vg__conn *c, cJSON *req)
{
	vg_server *s = c->srv;
	const cJSON *opj = cJSON_GetObjectItemCaseSensitive(req, "op");
	const vg_api_op *op = vg_api_find(opj->valuestring);
	bool admin = c->peer_admin || token_ok(s, req);
	cJSON *resp = NULL;
	if (s->stopping) {
		resp = vg_api_err(cJSON_GetObjectItemCaseSensitive(req, "id"),
				  "busy", "the daemon is shutting down");
	} else if (op && !op->fn && !strcmp(op->name, "subscribe")) {
		char msg[256];
		resp = vg_api_check_args(op, req, msg, sizeof(msg))
			       ? vg_api_err(cJSON_GetObjectItemCaseSensitive(
						    req, "id"),
					    "bad_argument", "%s", msg)
			       : subscribe(c, req);
	} else if (op && (op->flags & VG_OP_HEAVY)) {
		work *k = calloc(1, sizeof(*k));
		if (k) {
			k->c = c;
			k->req = req;
			k->admin = admin;
			count_request(s, op->name, NULL);
			if (uv_queue_work(s->loop, &k->w, work_run, work_done) ==
			    0) {
				c->busy = true;
				s->inflight++;
				return;
			}
			free(k);
		}
		resp = vg_api_err(cJSON_GetObjectItemCaseSensitive(req, "id"),
				  "internal", "cannot queue the request");
	}
	if (!resp)
		resp = vg_api_call(s->store, s->hooks, s->data_dir, req, admin);
	count_request(s, opj->valuestring, resp);
	vg__respond(c, req, resp);
	cJSON_Delete(req);
	cJSON_Delete(resp);
}

/* ---- NDJSON --------------------------------------------------------------- */

static void ndjson_line(vg__conn *c, const char *line, size_t len)
{
	cJSON *req;
	cJSON *err = vg_api_parse(line, len, &req);
	if (err) {
		c->srv->requests++;
		c->srv->errors++;
		vg__respond(c, NULL, err);
		cJSON_Delete(err);
		return;
	}
	vg__dispatch(c, req);
}

void vg__ndjson_respond(vg__conn *c, const cJSON *resp)
{
	char *s = cJSON_PrintUnformatted(resp);
	if (!s) {
		vg__conn_close(c);
		return;
	}
	size_t n = strlen(s);
	s[n] = '\n'; /* the NUL becomes the line end */
	vg__conn_out(c, s, n + 1);
	cJSON_free(s);
}

static void ndjson_pump(vg__conn *c)
{
	vg_server *s = c->srv;
	size_t pos = 0;
	while (!c->busy && !c->closing && !c->bp_paused && pos < c->inlen) {
		char *start = c->in + pos;
		char *nl = memchr(start, '\n', c->inlen - pos);
		if (!nl) {
			size_t have = c->inlen - pos;
			if (!c->discard && have > s->max_request) {
				/* Say so now, then drop the rest of this
				 * line as it arrives: never buffer it. */
				cJSON *e = vg_api_err(
					NULL, "too_large",
					"request line longer than %zu bytes: "
					"skipped",
					s->max_request);
				s->requests++;
				s->errors++;
				vg__respond(c, NULL, e);
				cJSON_Delete(e);
				c->discard = true;
			}
			if (c->discard)
				pos = c->inlen;
			break;
		}
		size_t len = (size_t)(nl - start);
		pos += len + 1;
		if (c->discard) {
			c->discard = false;
			continue;
		}
		if (len && start[len - 1] == '\r')
			len--;
		if (!len)
			continue;
		if (len > s->max_request) {
			cJSON *e = vg_api_err(NULL, "too_large",
					      "request line longer than %zu "
					      "bytes: skipped",
					      s->max_request);
			s->requests++;
			s->errors++;
			vg__respond(c, NULL, e);
			cJSON_Delete(e);
			continue;
		}
		ndjson_line(c, start, len);
	}
	if (pos) {
		memmove(c->in, c->in + pos, c->inlen - pos);
		c->inlen -= pos;
	}
}

/* ---- reading --------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	vg__conn *c = h->data;
	(void)hint;
	if (vg__buf_reserve(&c->in, &c->incap, c->inlen + 65536)) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	*buf = uv_buf_init(c->in + c->inlen, (unsigned)(c->incap - c->inlen));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

/* Consume buffered input as far as allowed, write the answers, and read
 * more only when nothing holds the connection back. */
static void pump(vg__conn *c)
{
	if (c->closing)
		return;
	if (c->proto == VG__PROTO_HTTP)
		vg__http_pump(c);
	else
		ndjson_pump(c);
	if (c->closing)
		return;
	vg__conn_flush(c);
	if (c->closing)
		return;
	bool want = !c->busy && !c->bp_paused && !c->shutting && !c->eof;
	if (want && !c->reading) {
		if (uv_read_start(&c->u.s, on_alloc, on_read) == 0)
			c->reading = true;
	} else if (!want && c->reading) {
		uv_read_stop(&c->u.s);
		c->reading = false;
	}
	if ((c->eof && !c->busy && !c->subscribed) ||
	    (c->srv->stopping && !c->busy))
		vg__conn_close_soft(c);
}

void vg__respond(vg__conn *c, const cJSON *req, const cJSON *resp)
{
	if (c->proto == VG__PROTO_HTTP)
		vg__http_respond(c, req, resp);
	else
		vg__ndjson_respond(c, resp);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	vg__conn *c = st->data;
	(void)buf;
	if (n < 0) {
		if (n == UV_EOF) {
			/* The client finished sending: answer what it
			 * sent, then close. */
			uv_read_stop(st);
			c->reading = false;
			c->eof = true;
			if (c->subscribed && !c->busy)
				vg__conn_close(c);
			else
				pump(c);
		} else {
			vg__conn_close(c);
		}
		return;
	}
	if (n == 0)
		return;
	c->inlen += (size_t)n;
	uv_timer_again(&c->idle);
	pump(c);
}

static void on_idle(uv_timer_t *t)
{
	vg__conn *c = t->data;
	if (c->busy || c->subscribed)
		return;
	vg_info("closing idle connection %s", c->listener->addr);
	vg__conn_close(c);
}

/* ---- accepting ------------------------------------------------------------ */

static bool same_uid_peer(uv_stream_t *st)
{
	uv_os_fd_t fd;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (uv_fileno((uv_handle_t *)st, &fd))
		return false;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))
		return false;
	return cr.uid == geteuid();
}

static void on_connection(uv_stream_t *ls, int status)
{
	vg__listener *l = ls->data;
	vg_server *s = l->srv;
	if (status < 0 || s->stopping)
		return;
	vg__conn *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->srv = s;
	c->listener = l;
	c->proto = l->proto;
	int rc = l->kind == VG__L_UNIX ? uv_pipe_init(s->loop, &c->u.pipe, 0)
				       : uv_tcp_init(s->loop, &c->u.tcp);
	if (rc) {
		free(c);
		return;
	}
	c->u.h.data = c;
	uv_timer_init(s->loop, &c->idle);
	c->idle.data = c;
	c->handles = 2;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	s->conns_total++;
	if (uv_accept(ls, &c->u.s)) {
		vg__conn_close(c);
		return;
	}
	if (l->kind == VG__L_UNIX)
		c->peer_admin = same_uid_peer(&c->u.s);
	else
		uv_tcp_nodelay(&c->u.tcp, 1);
	if (c->proto == VG__PROTO_HTTP)
		vg__http_conn_init(c);
	if (s->nconns > s->max_conns) {
		cJSON *e = vg_api_err(NULL, "busy",
				      "too many connections (%u): try again "
				      "later",
				      s->max_conns);
		vg__respond(c, NULL, e);
		cJSON_Delete(e);
		vg__conn_close_soft(c);
		return;
	}
	uint64_t idle_ms = (uint64_t)(s->idle_timeout_s * 1000);
	uv_timer_start(&c->idle, on_idle, idle_ms, idle_ms);
	pump(c);
}

/* ---- listeners ------------------------------------------------------------ */

static int bind_error(vg_error *err, const char *addr, int rc)
{
	return vg_error_set(err, rc == UV_EADDRINUSE ? VG_EBUSY : VG_EIO,
			    "cannot listen on %s: %s", addr, uv_strerror(rc));
}

static int split_host_port(const char *hp, char *host, size_t hn, int *port)
{
	const char *colon = strrchr(hp, ':');
	if (!colon || (size_t)(colon - hp) >= hn || colon == hp)
		return -1;
	memcpy(host, hp, (size_t)(colon - hp));
	host[colon - hp] = '\0';
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || p < 0 || p > 65535)
		return -1;
	*port = (int)p;
	return 0;
}

static int listen_tcp(vg_server *s, vg__listener *l, const char *hp,
		      const char *scheme, vg_error *err)
{
	char host[256];
	int port;
	struct sockaddr_storage ss;
	if (split_host_port(hp, host, sizeof(host), &port))
		return vg_error_set(err, VG_EINVAL,
				    "listen address '%s': expected HOST:PORT "
				    "(127.0.0.1:7878; port 0 picks a free one)",
				    hp);
	int rc = strchr(host, ':')
			 ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)
			 : uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
	if (rc)
		return vg_error_set(err, VG_EINVAL,
				    "listen address '%s': '%s' is not an IP "
				    "address",
				    hp, host);
	l->kind = VG__L_TCP;
	uv_tcp_init(s->loop, &l->u.tcp);
	l->u.h.data = l;
	l->open = true;
	if ((rc = uv_tcp_bind(&l->u.tcp, (struct sockaddr *)&ss, 0)) ||
	    (rc = uv_listen(&l->u.s, 511, on_connection)))
		return bind_error(err, hp, rc);
	int len = sizeof(ss);
	uv_tcp_getsockname(&l->u.tcp, (struct sockaddr *)&ss, &len);
	char ip[64];
	if (ss.ss_family == AF_INET6) {
		uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		snprintf(l->addr, sizeof(l->addr), "%s:[%s]:%d", scheme, ip,
			 port);
	} else {
		uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		snprintf(l->addr, sizeof(l->addr), "%s:%s:%d", scheme, ip,
			 port);
	}
	return 0;
}

static int listen_unix(vg_server *s, vg__listener *l, const char *path,
		       vg_error *err)
{
	struct stat st;
	l->kind = VG__L_UNIX;
	/* A socket file left by a daemon that died: we hold the data
	 * directory's lock, so nobody serves it any more. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	uv_pipe_init(s->loop, &l->u.pipe, 0);
	l->u.h.data = l;
	l->open = true;
	int rc;
	if ((rc = uv_pipe_bind(&l->u.pipe, path)) ||
	    (rc = uv_listen(&l->u.s, 511, on_connection)))
		return bind_error(err, path, rc);
	chmod(path, 0660);
	snprintf(l->addr, sizeof(l->addr), "unix:%s", path);
	snprintf(l->path, sizeof(l->path), "%s", path);
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	vg__listener *l = h->data;
	vg_server *s = l->srv;
	l->open = false;
	if (l->path[0])
		unlink(l->path);
	s->listeners_open--;
	vg__server_maybe_done(s);
}

/* ---- commits → events ----------------------------------------------------- */

typedef struct ind_list {
	vg_read *r;
	cJSON *arr;
} ind_list;

static int add_ind(void *ud, uint32_t id)
{
	ind_list *x = ud;
	const char *code = vg_read_indicator_code(x->r, id);
	if (code)
		cJSON_AddItemToArray(x->arr, cJSON_CreateString(code));
	return 0;
}

/* Look for vintages committed since the last look (by our plugins, or by
 * `vigie import` in another process) and tell the subscribers. */
static void poll_commits(vg_server *s)
{
	vg_read *r;
	if (vg_read_begin(s->store, &r, NULL))
		return;
	uint32_t last = vg_read_last_vintage(r);
	for (uint32_t v = s->last_vintage + 1; v <= last; v++) {
		vg_vintage vin;
		if (vg_read_vintage(r, v, &vin, NULL))
			continue;
		cJSON *ev = cJSON_CreateObject();
		cJSON_AddStringToObject(ev, "event", "data");
		cJSON_AddNumberToObject(ev, "vintage", v);
		cJSON_AddStringToObject(ev, "origin", vin.origin);
		char when[32];
		vg_time_format(vin.time, when, sizeof(when));
		cJSON_AddStringToObject(ev, "published", when);
		ind_list x = { r, cJSON_AddArrayToObject(ev, "indicators") };
		vg_read_vintage_indicators(r, v, add_ind, &x);
		cJSON_AddNumberToObject(ev, "points_new", (double)vin.points_new);
		cJSON_AddNumberToObject(ev, "points_changed",
					(double)vin.points_changed);
		vg_server_event(s, ev);
		cJSON_Delete(ev);
	}
	s->last_vintage = last;
	vg_read_end(r);
}

static void on_poll(uv_timer_t *t)
{
	vg_server *s = t->data;
	poll_commits(s);
	/* SSE streams behind proxies need a sign of life now and then. */
	double now = now_s();
	if (now - s->last_keepalive > 15) {
		s->last_keepalive = now;
		for (vg__conn *c = s->conns; c; c = c->next)
			if (c->sse && !c->closing) {
				vg__conn_out(c, ": keepalive\n\n", 13);
				vg__conn_flush(c);
			}
	}
}

static bool wants(const vg__conn *c, const cJSON *ev)
{
	const cJSON *inds = cJSON_GetObjectItemCaseSensitive(ev, "indicators");
	if (!c->nsubs || !inds)
		return true;
	const cJSON *it;
	cJSON_ArrayForEach(it, inds)
	{
		for (size_t i = 0; i < c->nsubs; i++)
			if (cJSON_IsString(it) &&
			    !strcmp(c->subs[i], it->valuestring))
				return true;
	}
	return false;
}

void vg_server_event(vg_server *s, const cJSON *ev)
{
	char *line = NULL;
	for (vg__conn *c = s->conns; c; c = c->next) {
		if (!c->subscribed || c->closing || !wants(c, ev))
			continue;
		if (!line && !(line = cJSON_PrintUnformatted(ev)))
			return;
		if (c->sse) {
			const cJSON *e = cJSON_GetObjectItemCaseSensitive(ev,
									  "event");
			char head[64];
			int n = snprintf(head, sizeof(head), "event: %s\ndata: ",
					 cJSON_IsString(e) ? e->valuestring
							   : "message");
			vg__conn_out(c, head, (size_t)n);
			vg__conn_out(c, line, strlen(line));
			vg__conn_out(c, "\n\n", 2);
		} else {
			vg__conn_out(c, line, strlen(line));
			vg__conn_out(c, "\n", 1);
		}
		/* A subscriber that stopped reading loses its stream
		 * rather than our memory. */
		if (uv_stream_get_write_queue_size(&c->u.s) > 4 * WRITE_HIGH) {
			vg_warn("dropping subscriber %s: not reading its "
				"events",
				c->listener->addr);
			vg__conn_close(c);
			continue;
		}
		vg__conn_flush(c);
	}
	cJSON_free(line);
}

/* ---- lifecycle ------------------------------------------------------------- */

int vg_server_start(uv_loop_t *loop, const vg_server_opts *o,
		    vg_server **out, vg_error *err)
{
	*out = NULL;
	size_t nl = o->nlisten + o->nhttp;
	if (!nl)
		return vg_error_set(err, VG_EINVAL, "nothing to listen on");
	vg_server *s = calloc(1, sizeof(*s));
	if (!s)
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	s->ls = calloc(nl, sizeof(*s->ls));
	if (!s->ls) {
		free(s);
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	}
	s->loop = loop;
	s->store = o->store;
	s->data_dir = o->data_dir;
	s->hooks = o->hooks;
	s->token = o->token && *o->token ? strdup(o->token) : NULL;
	s->cors_origin = o->cors_origin ? strdup(o->cors_origin) : NULL;
	s->max_conns = o->max_conns ? o->max_conns : 1024;
	s->max_request = o->max_request ? o->max_request : (1u << 20);
	s->idle_timeout_s = o->idle_timeout_s > 0 ? o->idle_timeout_s : 300;
	s->start = now_s();
	s->stats_at = s->start;
	s->idle_at = uv_metrics_idle_time(loop);
	s->last_keepalive = s->start;
	int rc = 0;
	for (size_t i = 0; i < nl && !rc; i++) {
		vg__listener *l = &s->ls[i];
		l->srv = s;
		s->nls++;
		if (i < o->nlisten) {
			const char *a = o->listen[i];
			l->proto = VG__PROTO_NDJSON;
			if (!strncmp(a, "unix:", 5))
				rc = listen_unix(s, l, a + 5, err);
			else if (!strncmp(a, "tcp:", 4))
				rc = listen_tcp(s, l, a + 4, "tcp", err);
			else
				rc = vg_error_set(err, VG_EINVAL,
						  "listen address '%s': expected "
						  "unix:PATH or tcp:HOST:PORT",
						  a);
		} else {
			l->proto = VG__PROTO_HTTP;
			const char *a = o->http[i - o->nlisten];
			if (!strncmp(a, "http:", 5))
				a += 5;
			rc = listen_tcp(s, l, a, "http", err);
		}
		if (l->open)
			s->listeners_open++;
	}
	uv_timer_init(loop, &s->poll);
	s->poll.data = s;
	s->poll_open = true;
	/* Subscribers hear about commits made after they connect. */
	vg_read *r;
	if (!vg_read_begin(s->store, &r, NULL)) {
		s->last_vintage = vg_read_last_vintage(r);
		vg_read_end(r);
	}
	uv_timer_start(&s->poll, on_poll, POLL_MS, POLL_MS);
	if (rc) {
		/* Undo: the caller runs the loop until the handles close. */
		vg_server_stop(s, 0, NULL, NULL);
		s->free_when_done = true;
		return rc;
	}
	*out = s;
	return 0;
}

size_t vg_server_addrs(const vg_server *s, char *buf, size_t n)
{
	size_t off = 0;
	if (n)
		buf[0] = '\0';
	for (size_t i = 0; i < s->nls; i++)
		if (s->ls[i].addr[0] && off < n)
			off += (size_t)snprintf(buf + off, n - off, "%s\n",
						s->ls[i].addr);
	return off;
}

cJSON *vg_server_stats(vg_server *s)
{
	cJSON *o = cJSON_CreateObject();
	double now = now_s();
	cJSON_AddNumberToObject(o, "uptime_s", now - s->start);
	cJSON_AddNumberToObject(o, "connections", s->nconns);
	cJSON_AddNumberToObject(o, "connections_total", (double)s->conns_total);
	cJSON_AddNumberToObject(o, "requests", (double)s->requests);
	cJSON_AddNumberToObject(o, "errors", (double)s->errors);
	cJSON_AddNumberToObject(o, "queries_in_flight", s->inflight);
	/* Busy share of the loop since the previous stats call: what is
	 * left for new requests. */
	uint64_t idle = uv_metrics_idle_time(s->loop);
	double wall = now - s->stats_at;
	double busy = wall > 0 ? 1 - (double)(idle - s->idle_at) / 1e9 / wall
			       : 0;
	if (busy < 0)
		busy = 0;
	cJSON_AddNumberToObject(o, "loop_busy_pct", 100 * busy);
	s->stats_at = now;
	s->idle_at = idle;
	cJSON *by = cJSON_AddObjectToObject(o, "requests_by_op");
	size_t n;
	const vg_api_op *t = vg_api_ops(&n);
	for (size_t i = 0; i < n && i < VG__MAX_OPS; i++)
		if (s->by_op[i])
			cJSON_AddNumberToObject(by, t[i].name,
						(double)s->by_op[i]);
	cJSON *ls = cJSON_AddArrayToObject(o, "listening");
	for (size_t i = 0; i < s->nls; i++)
		if (s->ls[i].addr[0])
			cJSON_AddItemToArray(ls,
					     cJSON_CreateString(s->ls[i].addr));
	return o;
}

static void on_grace_closed(uv_handle_t *h);

void vg__server_maybe_done(vg_server *s)
{
	if (!s->stopping || s->nconns)
		return;
	/* Every connection is gone: the grace timer has nothing to do. */
	if (s->grace_open && !s->grace_closing) {
		s->grace_closing = true;
		uv_timer_stop(&s->grace);
		uv_close((uv_handle_t *)&s->grace, on_grace_closed);
	}
	if (s->listeners_open || s->poll_open || s->grace_open ||
	    s->done_called)
		return;
	s->done_called = true;
	if (s->done)
		s->done(s->done_ud);
	if (s->free_when_done) {
		free(s->ls);
		free(s->token);
		free(s->cors_origin);
		free(s);
	}
}

static void on_poll_closed(uv_handle_t *h)
{
	vg_server *s = h->data;
	s->poll_open = false;
	vg__server_maybe_done(s);
}

static void on_grace_closed(uv_handle_t *h)
{
	vg_server *s = h->data;
	s->grace_open = false;
	vg__server_maybe_done(s);
}

/* Close connections with nothing running; busy ones close when their
 * request is answered (vg__respond sees `stopping`). */
static void close_idle_conns(vg_server *s, bool force)
{
	vg__conn *c = s->conns;
	while (c) {
		vg__conn *next = c->next;
		if (force)
			vg__conn_close(c);
		else if (!c->busy)
			vg__conn_close_soft(c);
		c = next;
	}
}

static void on_grace(uv_timer_t *t)
{
	vg_server *s = t->data;
	if (s->nconns)
		vg_warn("grace period over: closing %u connection(s)",
			s->nconns);
	close_idle_conns(s, true);
}

void vg_server_stop(vg_server *s, double grace_s, void (*done)(void *ud),
		    void *ud)
{
	if (s->stopping)
		return;
	s->stopping = true;
	s->done = done;
	s->done_ud = ud;
	for (size_t i = 0; i < s->nls; i++)
		if (s->ls[i].open)
			uv_close(&s->ls[i].u.h, on_listener_closed);
	if (s->poll_open)
		uv_close((uv_handle_t *)&s->poll, on_poll_closed);
	uv_timer_init(s->loop, &s->grace);
	s->grace.data = s;
	s->grace_open = true;
	uv_timer_start(&s->grace, on_grace, (uint64_t)(grace_s * 1000), 0);
	close_idle_conns(s, false);
	vg__server_maybe_done(s);
}

void vg_server_free(vg_server *s)
{
	if (!s)
		return;
	free(s->ls);
	free(s->token);
	free(s->cors_origin);
	free(s);
}
