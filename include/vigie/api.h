/* The operations of the socket API (protocol v1), independent of any
 * transport.
 *
 * A request is a JSON object {"id": ..., "op": "series", <arguments>};
 * the answer is {"id", "ok": true, "result": {...}} or {"id", "ok": false,
 * "error": {"code", "message"}}. The daemon feeds it lines of NDJSON or
 * HTTP requests; the command-line client calls it in-process in offline
 * mode, so both modes give the same answers.
 *
 * One table (vg_api_ops) lists every operation with its arguments, their
 * types, whether it needs admin rights, and the columns of its rows: it
 * drives dispatch, argument validation, `help`, the CLI's tables and the
 * reference part of docs/protocol.md (`vigied --doc-ops`). */
#ifndef VIGIE_API_H
#define VIGIE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigie/store.h"

#define VG_API_VERSION 1
/* Rows per answer when the request says nothing, and at most. */
#define VG_API_LIMIT_DEFAULT 10000
#define VG_API_LIMIT_MAX 100000

struct cJSON;

typedef enum vg_arg_type {
	VG_ARG_STR,  /* a string */
	VG_ARG_INT,  /* an integer, |x| <= 2^53 */
	VG_ARG_BOOL, /* true/false */
	VG_ARG_STRS, /* an array of strings (HTTP: comma-separated) */
	VG_ARG_OBJ,  /* an object (e.g. plugin config overrides) */
} vg_arg_type;

const char *vg_arg_type_name(vg_arg_type t);

typedef struct vg_api_arg {
	const char *name;
	vg_arg_type type;
	bool required;
	const char *help;
} vg_api_arg;

/* Column of an answer's rows, for the CLI's tables and the docs. */
typedef struct vg_api_col {
	const char *name;
	bool num; /* a number (JSON number or null) */
} vg_api_col;

enum {
	VG_OP_ADMIN = 1 << 0,  /* needs the token or a same-uid unix peer */
	VG_OP_HEAVY = 1 << 1,  /* may take long: run off the event loop */
	VG_OP_DAEMON = 1 << 2, /* needs the daemon (scheduler, connection) */
};

/* What a running daemon adds to the store: its scheduler and counters.
 * Every hook may be NULL (offline mode): the op then answers
 * `unavailable`. Hooks are called on the thread running the request;
 * they return a new JSON value the caller owns, or NULL with `msg` set
 * (and `*code` to a protocol error code). */
typedef struct vg_api_hooks {
	void *ud;
	struct cJSON *(*stats)(void *ud);
	struct cJSON *(*plugins)(void *ud);
	struct cJSON *(*jobs)(void *ud, size_t limit);
	struct cJSON *(*run)(void *ud, const char *plugin,
			     const struct cJSON *config, const char **code,
			     char *msg, size_t n);
	struct cJSON *(*reload)(void *ud, const char **code, char *msg,
				size_t n);
} vg_api_hooks;

/* One request being answered. */
typedef struct vg_api_req {
	vg_store *store;
	const vg_api_hooks *hooks; /* may be NULL */
	const struct cJSON *args;  /* the request object, validated */
	const char *data_dir;      /* backups and imports stay under it */
	struct cJSON *result;      /* set by the handler; owned by the req */
	const char *ecode;         /* set on error: a protocol error code */
	char emsg[768];
} vg_api_req;

typedef struct vg_api_op {
	const char *name;
	unsigned flags;
	int (*fn)(vg_api_req *req); /* NULL: answered by the transport */
	const vg_api_arg *args;     /* terminated by a NULL name */
	const vg_api_col *cols;     /* of result.rows; NULL: not a table */
	const char *summary;
	const char *example; /* a request line, for help and the docs */
} vg_api_op;

/* The table, and one op by name (NULL when unknown). */
const vg_api_op *vg_api_ops(size_t *n);
const vg_api_op *vg_api_find(const char *name);

/* The protocol error codes, with what each means (for the docs). */
typedef struct vg_api_errcode {
	const char *code, *meaning;
} vg_api_errcode;
const vg_api_errcode *vg_api_errcodes(size_t *n);

/* Parse one request text (an NDJSON line or an HTTP body) into *req.
 * Returns NULL on success, else a new error envelope (caller owns) that
 * says what is wrong and where: invalid JSON (with the byte offset),
 * invalid UTF-8, nesting deeper than 32, not an object, no "op". */
struct cJSON *vg_api_parse(const char *text, size_t len, struct cJSON **req);

/* The same for an HTTP body whose op is in the URL: "op" may be absent
 * (then `op` is set) but must not differ; an empty body is {}. */
struct cJSON *vg_api_parse_body(const char *text, size_t len, const char *op,
				struct cJSON **req);

/* Check the arguments of `req` against `op`: required ones present,
 * no unknown key ("id", "op" and "token" are always allowed), types
 * right, integers exact and in range. Returns 0 or VG_EINVAL with
 * `msg` naming the argument. */
int vg_api_check_args(const vg_api_op *op, const struct cJSON *req, char *msg,
		      size_t n);

/* Answer one parsed request: find the op, check rights (`admin`: the
 * caller is allowed write/admin ops) and arguments, run it. Returns the
 * response envelope; the caller owns it. */
struct cJSON *vg_api_call(vg_store *s, const vg_api_hooks *hooks,
			  const char *data_dir, const struct cJSON *req,
			  bool admin);

/* Envelopes. `id` may be NULL (then "id": null). Caller owns. */
struct cJSON *vg_api_ok(const struct cJSON *id, struct cJSON *result);
struct cJSON *vg_api_err(const struct cJSON *id, const char *code,
			 const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The reference of every op as Markdown (docs/protocol.md embeds it).
 * Returns a malloc'd string. */
char *vg_api_doc_markdown(void);

#endif
