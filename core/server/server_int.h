/* Internals of core/server shared by server.c (connections, NDJSON) and
 * http.c (HTTP/1.1 on the same connections). */
#ifndef VIGIE_SERVER_INT_H
#define VIGIE_SERVER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <http_parser.h>
#include <uv.h>

#include "vigie/server.h"

#define VG__MAX_OPS 64

enum { VG__L_UNIX, VG__L_TCP };
enum { VG__PROTO_NDJSON, VG__PROTO_HTTP };

typedef struct vg__listener {
	union {
		uv_tcp_t tcp;
		uv_pipe_t pipe;
		uv_stream_t s;
		uv_handle_t h;
	} u;
	vg_server *srv;
	int kind, proto;
	bool open;
	char addr[320]; /* "tcp:127.0.0.1:7878", "unix:/path" */
	char path[256]; /* unix socket file, removed at close */
} vg__listener;

typedef struct vg__http vg__http;

typedef struct vg__conn {
	union {
		uv_tcp_t tcp;
		uv_pipe_t pipe;
		uv_stream_t s;
		uv_handle_t h;
	} u;
	uv_timer_t idle;
	int handles; /* open libuv handles; freed when 0 */
	vg_server *srv;
	vg__listener *listener;
	struct vg__conn *prev, *next;
	int proto;
	bool peer_admin; /* unix socket peer with our uid */
	char *in;	 /* unconsumed input; owned */
	size_t inlen, incap;
	char *out; /* answers not yet handed to uv_write; owned */
	size_t outlen, outcap;
	bool discard;	/* NDJSON: skipping the rest of an oversize line */
	bool busy;	/* a request is on a worker thread */
	bool reading, bp_paused, eof, shutting, closing;
	bool subscribed, sse;
	char (*subs)[VG_CODE_MAX]; /* subscribed indicators; none: all */
	size_t nsubs;
	vg__http *http; /* HTTP state; owned */
} vg__conn;

struct vg_server {
	uv_loop_t *loop;
	vg_store *store;
	const char *data_dir;
	const vg_api_hooks *hooks;
	char *token, *cors_origin;
	unsigned max_conns;
	size_t max_request;
	double idle_timeout_s;
	vg__listener *ls;
	size_t nls;
	unsigned listeners_open;
	vg__conn *conns;
	unsigned nconns;
	uv_timer_t poll, grace;
	bool poll_open, grace_open, grace_closing;
	uint32_t last_vintage;
	double start, stats_at, last_keepalive;
	uint64_t idle_at;
	uint64_t conns_total, requests, errors;
	uint64_t by_op[VG__MAX_OPS];
	unsigned inflight;
	bool stopping, done_called, free_when_done;
	void (*done)(void *ud);
	void *done_ud;
};

int vg__buf_reserve(char **b, size_t *cap, size_t need);
void vg__conn_out(vg__conn *c, const char *data, size_t len);
void vg__conn_flush(vg__conn *c);
void vg__conn_close(vg__conn *c);
void vg__conn_close_soft(vg__conn *c);
void vg__server_maybe_done(vg_server *s);
/* Answer a request (parsed, owned by the callee) on this connection. */
void vg__dispatch(vg__conn *c, struct cJSON *req);
/* Write an answer in the connection's protocol; `req` may be NULL. */
void vg__respond(vg__conn *c, const struct cJSON *req,
		 const struct cJSON *resp);
void vg__ndjson_respond(vg__conn *c, const struct cJSON *resp);

/* http.c */
void vg__http_conn_init(vg__conn *c);
void vg__http_conn_free(vg__conn *c);
void vg__http_pump(vg__conn *c);
void vg__http_respond(vg__conn *c, const struct cJSON *req,
		      const struct cJSON *resp);

#endif
