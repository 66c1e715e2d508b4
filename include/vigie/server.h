/* The daemon's listeners: NDJSON over unix sockets and TCP, and the same
 * operations over HTTP/1.1 (with server-sent events), all on one libuv
 * loop. Requests are answered by vg_api_call; ops marked VG_OP_HEAVY
 * run on the libuv thread pool while the connection waits (so answers
 * stay in request order); everything else runs inline on the loop.
 *
 * Limits: request size (an oversized NDJSON line or HTTP body is answered
 * `too_large` and skipped, never buffered whole), connections (beyond the
 * cap a new client gets `busy` and is closed), idle time, and output: a
 * client that does not read its answers stops being read from until its
 * backlog drains (back-pressure), so memory stays bounded.
 *
 * Every function must be called on the loop's thread. */
#ifndef VIGIE_SERVER_H
#define VIGIE_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "vigie/api.h"
#include "vigie/error.h"
#include "vigie/store.h"

typedef struct vg_server vg_server;

typedef struct vg_server_opts {
	vg_store *store;
	const char *data_dir;
	/* "unix:PATH" or "tcp:HOST:PORT" (port 0: a free one). */
	const char *const *listen;
	size_t nlisten;
	const char *const *http; /* "HOST:PORT" */
	size_t nhttp;
	const char *token;       /* admin token; NULL: unix same-uid only */
	const char *cors_origin; /* allowed browser origin, "*" or NULL */
	unsigned max_conns;      /* 0: 1024 */
	size_t max_request;      /* bytes; 0: 1 MiB */
	double idle_timeout_s;   /* 0: 300 s; subscribers are exempt */
	const vg_api_hooks *hooks;
} vg_server_opts;

/* Bind every listener and start serving. Errors name the address
 * (VG_EBUSY: address in use, VG_EINVAL: malformed address). */
int vg_server_start(uv_loop_t *loop, const vg_server_opts *o,
		    vg_server **out, vg_error *err);

/* The bound addresses ("unix:/path", "tcp:127.0.0.1:40123",
 * "http:127.0.0.1:40124"), one per line. Returns the length. */
size_t vg_server_addrs(const vg_server *s, char *buf, size_t n);

/* Push an event to the subscribers it concerns: {"event":"data",
 * "indicators":[...]...} goes to those subscribed to one of those
 * indicators (or to all), any other event to every subscriber. */
void vg_server_event(vg_server *s, const struct cJSON *event);

/* Counters for `stats`: uptime, connections, requests by op, errors,
 * loop busy %. Caller owns the result. */
struct cJSON *vg_server_stats(vg_server *s);

/* Stop accepting, let in-flight requests finish (at most grace_s), close
 * every connection, then call done(ud). */
void vg_server_stop(vg_server *s, double grace_s, void (*done)(void *ud),
		    void *ud);
/* After done was called. */
void vg_server_free(vg_server *s);

#endif
