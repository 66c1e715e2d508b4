/* vigie: the command-line client.
 *
 * Offline mode (`--data DIR`) opens the store directly. Every command is a
 * row of the `commands` table below, which drives dispatch and `help`. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cmd/output.h"
#include "cmd/plugin_cmd.h"
#include "vigie/api.h"
#include "vigie/common.h"
#include "vigie/io.h"
#include "vigie/query.h"
#include "vigie/store.h"

typedef struct cli {
	const char *data;
	out_format fmt;
	vg_store *store;
	vg_error err;
	/* Remote mode: the daemon at --socket PATH or --connect HOST:PORT. */
	bool remote;
	const char *socket_path, *connect, *token;
	int fd;
	char *rbuf; /* bytes read from the daemon, not yet a full line */
	size_t rlen, rcap;
} cli;

/* Exit codes: 0 ok, 1 operation failed, 2 usage error. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static int fail(cli *c)
{
	char buf[1024];
	fprintf(stderr, "vigie: %s\n", vg_error_format(&c->err, buf, sizeof(buf)));
	return EXIT_FAIL;
}

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
	fprintf(stderr, "vigie%s%s: ", *cmd ? " " : "", cmd);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see 'vigie help')\n");
	return EXIT_USAGE;
}

static int open_store(cli *c, bool write)
{
	vg_store_opts o = { .read_only = !write };
	if (vg_store_open(&c->store, c->data, &o, &c->err))
		return fail(c);
	return 0;
}

/* ---- option parsing shared by the commands --------------------------- */

typedef struct cmd_opts {
	const char *from, *to, *as_of, *level, *period, *in, *indicator,
		*published, *territory;
	bool skip_bad;
} cmd_opts;

/* Parse the options after the command words; positional arguments are
 * left in argv[optind..]. Returns 0 or EXIT_USAGE. */
static int parse_opts(const char *cmd, int argc, char **argv, cmd_opts *o)
{
	static const struct option longs[] = {
		{ "from", required_argument, 0, 'f' },
		{ "to", required_argument, 0, 't' },
		{ "as-of", required_argument, 0, 'a' },
		{ "level", required_argument, 0, 'l' },
		{ "period", required_argument, 0, 'p' },
		{ "in", required_argument, 0, 'i' },
		{ "indicator", required_argument, 0, 'n' },
		{ "published", required_argument, 0, 'P' },
		{ "skip-bad", no_argument, 0, 's' },
		{ "territory", required_argument, 0, 'T' },
		{ 0, 0, 0, 0 },
	};
	memset(o, 0, sizeof(*o));
	optind = 1;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'f': o->from = optarg; break;
		case 't': o->to = optarg; break;
		case 'a': o->as_of = optarg; break;
		case 'l': o->level = optarg; break;
		case 'p': o->period = optarg; break;
		case 'i': o->in = optarg; break;
		case 'n': o->indicator = optarg; break;
		case 'P': o->published = optarg; break;
		case 's': o->skip_bad = true; break;
		case 'T': o->territory = optarg; break;
		default:
			return usage_error(cmd, "unknown or incomplete option "
					   "'%s'", argv[optind - 1]);
		}
	}
	return 0;
}

/* ---- import / export -------------------------------------------------- */

static void print_report(const char *what, const char *path,
			 const vg_import_report *r, bool ok)
{
	for (size_t i = 0; i < r->nerrors; i++) {
		char buf[1024];
		fprintf(stderr, "  %s\n",
			vg_error_format(&r->errors[i], buf, sizeof(buf)));
	}
	if (r->bad_rows > r->nerrors)
		fprintf(stderr, "  ... and %llu more\n",
			(unsigned long long)(r->bad_rows - r->nerrors));
	if (!ok)
		return;
	const vg_commit_info *ci = &r->commit;
	fprintf(stderr,
		"imported %s from %s: %llu rows read, %llu skipped; "
		"%llu new, %llu revised, %llu unchanged points; "
		"%llu indicators and %llu territories defined or changed",
		what, path, (unsigned long long)r->rows,
		(unsigned long long)r->bad_rows,
		(unsigned long long)ci->points_new,
		(unsigned long long)ci->points_changed,
		(unsigned long long)ci->points_unchanged,
		(unsigned long long)ci->indicators,
		(unsigned long long)ci->territories);
	if (ci->vintage)
		fprintf(stderr, " (vintage %u)\n", ci->vintage);
	else
		fprintf(stderr, " (nothing changed: no vintage recorded)\n");
}

static int cmd_import(cli *c, int argc, char **argv)
{
	cmd_opts o;
	if (parse_opts("import", argc, argv, &o))
		return EXIT_USAGE;
	if (argc - optind != 2)
		return usage_error("import", "expects a kind and a file: "
				   "import indicators|territories|points "
				   "FILE%s", "");
	const char *kind = argv[optind], *path = argv[optind + 1];
	vg_import_opts io = { .skip_bad = o.skip_bad };
	if (o.published && vg_time_parse(o.published, &io.published))
		return usage_error("import", "--published '%s' is not a date",
				   o.published);
	int (*fn)(vg_store *, const char *, const vg_import_opts *,
		  vg_import_report *, vg_error *);
	if (!strcmp(kind, "indicators"))
		fn = vg_import_indicators;
	else if (!strcmp(kind, "territories"))
		fn = vg_import_territories;
	else if (!strcmp(kind, "points"))
		fn = vg_import_points;
	else
		return usage_error("import", "unknown kind '%s' (indicators, "
				   "territories or points)", kind);
	if (open_store(c, true))
		return EXIT_FAIL;
	vg_import_report *rep = calloc(1, sizeof(*rep));
	if (!rep)
		return EXIT_FAIL;
	int rc = fn(c->store, path, &io, rep, &c->err);
	print_report(kind, path, rep, rc == 0);
	free(rep);
	return rc ? fail(c) : EXIT_OK;
}

static int cmd_export(cli *c, int argc, char **argv)
{
	cmd_opts o;
	if (parse_opts("export", argc, argv, &o))
		return EXIT_USAGE;
	if (argc - optind != 1 || strcmp(argv[optind], "points"))
		return usage_error("export", "usage: export points "
				   "[--indicator IND]%s", "");
	if (open_store(c, false))
		return EXIT_FAIL;
	uint64_t rows;
	if (vg_export_points(c->store, o.indicator, stdout, &rows, &c->err))
		return fail(c);
	fprintf(stderr, "exported %llu points\n", (unsigned long long)rows);
	return EXIT_OK;
}

/* ---- queries: through the API, in-process or over a socket -------------- */

/* Every query command builds a protocol request and renders the answer's
 * rows with the op's columns: offline (in-process vg_api_call) and remote
 * (a daemon over --socket/--connect) give the same output by
 * construction. */

static int remote_open(cli *c)
{
	if (c->fd >= 0)
		return 0;
	int fd;
	if (c->socket_path) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		if (strlen(c->socket_path) >= sizeof(a.sun_path)) {
			fprintf(stderr, "vigie: socket path too long\n");
			return -1;
		}
		strcpy(a.sun_path, c->socket_path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
			fprintf(stderr, "vigie: cannot connect to %s: %s (is "
					"vigied running?)\n",
				c->socket_path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
	} else {
		char host[256];
		const char *colon = strrchr(c->connect, ':');
		if (!colon || (size_t)(colon - c->connect) >= sizeof(host)) {
			fprintf(stderr, "vigie: --connect expects HOST:PORT, "
					"not '%s'\n",
				c->connect);
			return -1;
		}
		memcpy(host, c->connect, (size_t)(colon - c->connect));
		host[colon - c->connect] = '\0';
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
		int rc = getaddrinfo(host, colon + 1, &hints, &ai);
		if (rc) {
			fprintf(stderr, "vigie: %s: %s\n", c->connect,
				gai_strerror(rc));
			return -1;
		}
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
			fprintf(stderr, "vigie: cannot connect to %s: %s (is "
					"vigied running?)\n",
				c->connect, strerror(errno));
			if (fd >= 0)
				close(fd);
			freeaddrinfo(ai);
			return -1;
		}
		freeaddrinfo(ai);
	}
	c->fd = fd;
	return 0;
}

static int send_line(cli *c, const cJSON *req)
{
	char *s = cJSON_PrintUnformatted(req);
	if (!s)
		return -1;
	size_t n = strlen(s), off = 0;
	s[n] = '\n';
	while (off < n + 1) {
		ssize_t w = write(c->fd, s + off, n + 1 - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "vigie: lost the daemon: %s\n",
				strerror(errno));
			cJSON_free(s);
			return -1;
		}
		off += (size_t)w;
	}
	cJSON_free(s);
	return 0;
}

/* One line from the daemon, parsed. NULL when the connection ended. */
static cJSON *recv_line(cli *c)
{
	for (;;) {
		char *nl = c->rbuf ? memchr(c->rbuf, '\n', c->rlen) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - c->rbuf);
			cJSON *o = cJSON_ParseWithLength(c->rbuf, n);
			memmove(c->rbuf, nl + 1, c->rlen - n - 1);
			c->rlen -= n + 1;
			if (!o)
				fprintf(stderr, "vigie: the daemon sent a line "
						"that is not JSON\n");
			return o;
		}
		if (c->rlen + 65536 > c->rcap) {
			size_t nc = c->rcap ? c->rcap * 2 : 131072;
			char *nb = realloc(c->rbuf, nc);
			if (!nb)
				return NULL;
			c->rbuf = nb;
			c->rcap = nc;
		}
		ssize_t r = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "vigie: the daemon closed the "
					"connection\n");
			return NULL;
		}
		c->rlen += (size_t)r;
	}
}

/* Answer of one request; caller owns. NULL: already reported. */
static cJSON *call(cli *c, cJSON *req)
{
	if (c->remote) {
		if (c->token && !cJSON_GetObjectItemCaseSensitive(req, "token"))
			cJSON_AddStringToObject(req, "token", c->token);
		if (remote_open(c) || send_line(c, req))
			return NULL;
		/* Events of a subscription may come first: skip them. */
		for (;;) {
			cJSON *o = recv_line(c);
			if (!o || !cJSON_GetObjectItemCaseSensitive(o, "event"))
				return o;
			cJSON_Delete(o);
		}
	}
	if (!c->store && open_store(c, false))
		return NULL;
	return vg_api_call(c->store, NULL, c->data, req, true);
}

static const char *const value_cols[] = { "value", "gap", "min", "q1",
					  "median", "q3", "max", NULL };

static bool is_value_col(const char *name)
{
	for (const char *const *v = value_cols; *v; v++)
		if (!strcmp(*v, name))
			return true;
	return false;
}

static void cell_text(cli *c, const vg_api_col *col, const cJSON *v,
		      int decimals, char *buf, size_t n)
{
	buf[0] = '\0';
	if (!v || cJSON_IsNull(v))
		return;
	if (cJSON_IsString(v)) {
		snprintf(buf, n, "%s", v->valuestring);
		return;
	}
	if (cJSON_IsBool(v)) {
		snprintf(buf, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
		return;
	}
	if (!cJSON_IsNumber(v))
		return;
	double d = v->valuedouble;
	if (!strcmp(col->name, "percentile"))
		snprintf(buf, n, "%.1f", d);
	else if (!strcmp(col->name, "weight_covered_pct") ||
		 !strcmp(col->name, "ratio") ||
		 !strcmp(col->name, "max_min_ratio"))
		snprintf(buf, n, "%.4g", d);
	else if (c->fmt == OUT_TABLE && decimals >= 0 &&
		 is_value_col(col->name))
		snprintf(buf, n, "%.*f", decimals, d);
	else
		vg_value_format(d, buf, n);
}

static int decimals_of(const cJSON *o)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "decimals");
	return cJSON_IsNumber(d) ? d->valueint : -1;
}

/* Print an answer's rows (or, for ops without a table, its result). */
static int render(cli *c, const vg_api_op *op, cJSON *result)
{
	cJSON *rows = cJSON_GetObjectItemCaseSensitive(result, "rows");
	if (cJSON_IsRaw(rows)) {
		/* In-process answers may carry rows as JSON text (slice). */
		cJSON *parsed = cJSON_Parse(rows->valuestring);
		if (!parsed)
			return EXIT_FAIL;
		cJSON_ReplaceItemInObjectCaseSensitive(result, "rows", parsed);
		rows = parsed;
	}
	if (!op->cols || !cJSON_IsArray(rows)) {
		char *s = cJSON_Print(result);
		if (s)
			printf("%s\n", s);
		cJSON_free(s);
		return EXIT_OK;
	}
	if (c->fmt == OUT_JSON) {
		char *s = cJSON_Print(rows);
		if (s)
			printf("%s\n", s);
		cJSON_free(s);
		return EXIT_OK;
	}
	size_t ncols = 0;
	while (op->cols[ncols].name)
		ncols++;
	const char *names[32];
	col_kind kinds[32];
	for (size_t i = 0; i < ncols && i < 32; i++) {
		names[i] = op->cols[i].name;
		kinds[i] = op->cols[i].num ? COL_NUM : COL_STR;
	}
	out_table *t = out_new(c->fmt, ncols, names, kinds);
	if (!t)
		return EXIT_FAIL;
	int dec = decimals_of(result);
	const cJSON *row;
	cJSON_ArrayForEach(row, rows)
	{
		char cells[32][64];
		const char *ptrs[32];
		int rdec = decimals_of(row);
		for (size_t i = 0; i < ncols && i < 32; i++) {
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(
				row, op->cols[i].name);
			if (cJSON_IsString(v)) {
				ptrs[i] = v->valuestring;
				continue;
			}
			cell_text(c, &op->cols[i], v, rdec >= 0 ? rdec : dec,
				  cells[i], sizeof(cells[i]));
			ptrs[i] = cells[i];
		}
		if (out_row(t, ptrs))
			return EXIT_FAIL;
	}
	int rc = out_flush(t, stdout) ? EXIT_FAIL : EXIT_OK;
	const cJSON *next = cJSON_GetObjectItemCaseSensitive(result,
							     "next_offset");
	if (cJSON_IsNumber(next))
		fprintf(stderr,
			"vigie: %d of %d rows shown; more with --offset %d\n",
			cJSON_GetArraySize(rows),
			cJSON_GetObjectItemCaseSensitive(result, "total")->valueint,
			next->valueint);
	return rc;
}

/* Send `req` (consumed), print the answer. */
static int run_request(cli *c, cJSON *req)
{
	const cJSON *opj = cJSON_GetObjectItemCaseSensitive(req, "op");
	const vg_api_op *op = vg_api_find(opj->valuestring);
	cJSON *resp = call(c, req);
	cJSON_Delete(req);
	if (!resp)
		return EXIT_FAIL;
	int rc;
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok"))) {
		rc = render(c, op, cJSON_GetObjectItemCaseSensitive(resp,
								    "result"));
	} else {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(resp, "error");
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
		const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e,
								    "message");
		fprintf(stderr, "vigie: %s: %s\n",
			cJSON_IsString(code) ? code->valuestring : "error",
			cJSON_IsString(msg) ? msg->valuestring : "");
		/* Bad arguments are usage errors, as when caught here. */
		rc = cJSON_IsString(code) &&
				     !strcmp(code->valuestring, "bad_argument")
			     ? EXIT_USAGE
			     : EXIT_FAIL;
	}
	cJSON_Delete(resp);
	return rc;
}

/* A command's request: positional words, then options, each mapped to an
 * argument of the op (see the `commands` table). */
typedef struct cmd_map {
	const char *op;
	const char *pos[4];   /* argument names of the positional words */
	const char *opts[10]; /* "--flag=arg" pairs: option -> argument */
} cmd_map;

static int build_request(const char *cmd, const cmd_map *m, int argc,
			 char **argv, cJSON **out)
{
	cJSON *req = cJSON_CreateObject();
	cJSON_AddNumberToObject(req, "id", 1);
	cJSON_AddStringToObject(req, "op", m->op);
	size_t npos = 0;
	while (npos < 4 && m->pos[npos])
		npos++;
	size_t got = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2)) {
			if (got >= npos) {
				cJSON_Delete(req);
				return usage_error(cmd, "unexpected argument "
						   "'%s'",
						   a);
			}
			cJSON_AddStringToObject(req, m->pos[got++], a);
			continue;
		}
		const char *arg = NULL;
		size_t fl = strlen(a + 2);
		for (size_t k = 0; k < 10 && m->opts[k]; k++) {
			const char *eq = strchr(m->opts[k], '=');
			if ((size_t)(eq - m->opts[k]) == fl &&
			    !strncmp(m->opts[k], a + 2, fl)) {
				arg = eq + 1;
				break;
			}
		}
		if (!arg || i + 1 >= argc) {
			cJSON_Delete(req);
			return usage_error(cmd, "unknown or incomplete option "
					   "'%s'",
					   a);
		}
		const char *v = argv[++i];
		const vg_api_op *op = vg_api_find(m->op);
		const vg_api_arg *spec = op->args;
		while (spec->name && strcmp(spec->name, arg))
			spec++;
		cJSON_DeleteItemFromObjectCaseSensitive(req, arg);
		if (spec->name && spec->type == VG_ARG_STRS) {
			/* A comma-separated list. */
			cJSON *arr = cJSON_AddArrayToObject(req, arg);
			char *copy = strdup(v), *save = NULL;
			for (char *t = strtok_r(copy, ",", &save); t;
			     t = strtok_r(NULL, ",", &save))
				cJSON_AddItemToArray(arr, cJSON_CreateString(t));
			free(copy);
		} else if (spec->name && spec->type == VG_ARG_INT) {
			char *end;
			long long x = strtoll(v, &end, 10);
			if (!*v || *end) {
				cJSON_Delete(req);
				return usage_error(cmd, "%s expects a number",
						   a);
			}
			cJSON_AddNumberToObject(req, arg, (double)x);
		} else {
			cJSON_AddStringToObject(req, arg, v);
		}
	}
	if (got < npos) {
		cJSON_Delete(req);
		return usage_error(cmd, "missing %s (see 'vigie help')",
				   m->pos[got]);
	}
	*out = req;
	return 0;
}

static const cmd_map maps[] = {
	{ "series",
	  { "indicator", "territory" },
	  { "from=from", "to=to", "as-of=as_of" } },
	{ "slice",
	  { "indicator" },
	  { "level=level", "period=period", "in=within", "as-of=as_of",
	    "offset=offset", "limit=limit", "membership=membership" } },
	{ "aggregate",
	  { "indicator" },
	  { "period=period", "level=level", "in=within", "territory=territory",
	    "territories=territories", "as-of=as_of", "offset=offset",
	    "limit=limit", "membership=membership" } },
	{ "compare",
	  { "indicator", "territory" },
	  { "period=period", "as-of=as_of", "membership=membership" } },
	{ "rank",
	  { "indicator", "territory" },
	  { "period=period", "in=within", "as-of=as_of",
	    "membership=membership" } },
	{ "profile",
	  { "territory" },
	  { "period=period", "as-of=as_of", "membership=membership" } },
	{ "perimeter", { "territory" }, { NULL } },
	{ "define_perimeter",
	  { "code" },
	  { "name=name", "members=members", "from=from", "parents=parents" } },
	{ "disparities",
	  { "indicator", "territory" },
	  { "period=period", "level=level", "as-of=as_of",
	    "membership=membership" } },
	{ "history", { "indicator", "territory", "period" }, { NULL } },
	{ "indicators", { NULL }, { NULL } },
	{ "territories",
	  { NULL },
	  { "level=level", "in=within", "search=search", "offset=offset",
	    "limit=limit" } },
	{ "stats", { NULL }, { NULL } },
	{ "plugins", { NULL }, { NULL } },
	{ "jobs", { NULL }, { "limit=limit" } },
	{ "backup", { "path" }, { NULL } },
	{ "reload", { NULL }, { NULL } },
	{ "ping", { NULL }, { NULL } },
};

static int cmd_query(cli *c, int argc, char **argv)
{
	const char *cmd = argv[0];
	const char *op = !strcmp(cmd, "stat") || !strcmp(cmd, "status")
				 ? "stats"
				 : cmd;
	for (size_t i = 0; i < VG_ARRAY_LEN(maps); i++) {
		if (strcmp(maps[i].op, op))
			continue;
		cJSON *req = NULL;
		int rc = build_request(cmd, &maps[i], argc, argv, &req);
		return rc ? rc : run_request(c, req);
	}
	return usage_error(cmd, "no such query%s", "");
}

/* `perimeter define CODE --members ... [--from P]` and `perimeter show
 * CODE`: the define_perimeter and perimeter ops. */
static int cmd_perimeter(cli *c, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	const char *op = !strcmp(sub, "define") ? "define_perimeter"
			 : !strcmp(sub, "show") ? "perimeter"
						: NULL;
	if (!op)
		return usage_error("perimeter", "usage: perimeter define CODE "
				   "--members T1,T2,... [--name N] [--from P] "
				   "| perimeter show CODE%s", "");
	/* Offline, a definition writes: open the store for writing before
	 * call() opens it read-only. */
	if (!strcmp(sub, "define") && !c->remote && !c->store &&
	    open_store(c, true))
		return EXIT_FAIL;
	for (size_t i = 0; i < VG_ARRAY_LEN(maps); i++) {
		if (strcmp(maps[i].op, op))
			continue;
		cJSON *req = NULL;
		/* The subcommand is the command: its words follow it. */
		int rc = build_request("perimeter", &maps[i], argc - 1,
				       argv + 1, &req);
		return rc ? rc : run_request(c, req);
	}
	return EXIT_FAIL;
}

/* `run PLUGIN [--follow]`: start a run; with --follow, show its progress
 * until it ends (a live bar on a terminal, lines otherwise). */
static int cmd_run(cli *c, int argc, char **argv)
{
	bool follow = false;
	const char *plugin = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--follow"))
			follow = true;
		else if (!plugin && argv[i][0] != '-')
			plugin = argv[i];
		else
			return usage_error("run", "unexpected argument '%s'",
					   argv[i]);
	}
	if (!plugin)
		return usage_error("run", "usage: run PLUGIN [--follow]%s", "");
	if (!c->remote)
		return usage_error("run", "needs the daemon: give --socket PATH "
				   "or --connect HOST:PORT%s",
				   "");
	if (follow) {
		cJSON *sub = cJSON_CreateObject();
		cJSON_AddNumberToObject(sub, "id", 0);
		cJSON_AddStringToObject(sub, "op", "subscribe");
		cJSON *r = call(c, sub);
		cJSON_Delete(sub);
		if (!r)
			return EXIT_FAIL;
		cJSON_Delete(r);
	}
	cJSON *req = cJSON_CreateObject();
	cJSON_AddNumberToObject(req, "id", 1);
	cJSON_AddStringToObject(req, "op", "run");
	cJSON_AddStringToObject(req, "plugin", plugin);
	cJSON *resp = call(c, req);
	cJSON_Delete(req);
	if (!resp)
		return EXIT_FAIL;
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok"))) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(resp, "error");
		fprintf(stderr, "vigie: run: %s\n",
			cJSON_GetObjectItemCaseSensitive(e, "message")
				->valuestring);
		cJSON_Delete(resp);
		return EXIT_FAIL;
	}
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(resp, "result");
	double job = cJSON_GetNumberValue(
		cJSON_GetObjectItemCaseSensitive(res, "job"));
	fprintf(stderr, "vigie: %s started as job %.0f\n", plugin, job);
	cJSON_Delete(resp);
	if (!follow)
		return EXIT_OK;
	bool tty = isatty(STDERR_FILENO);
	for (;;) {
		cJSON *ev = recv_line(c);
		if (!ev)
			return EXIT_FAIL;
		const cJSON *kind = cJSON_GetObjectItemCaseSensitive(ev, "event");
		const cJSON *jid = cJSON_GetObjectItemCaseSensitive(ev, "job");
		if (!cJSON_IsString(kind) || !cJSON_IsNumber(jid) ||
		    jid->valuedouble != job) {
			cJSON_Delete(ev);
			continue;
		}
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(ev, "status");
		const char *status = cJSON_IsString(st) ? st->valuestring : "";
		if (!strcmp(kind->valuestring, "progress")) {
			double done = cJSON_GetNumberValue(
				cJSON_GetObjectItemCaseSensitive(ev, "done"));
			double total = cJSON_GetNumberValue(
				cJSON_GetObjectItemCaseSensitive(ev, "total"));
			if (tty && total > 0) {
				int w = 40, k = (int)(w * done / total);
				fprintf(stderr, "\r[%.*s%*s] %3.0f%% %.0f/%.0f",
					k,
					"########################################",
					w - k, "", 100 * done / total, done,
					total);
			} else {
				fprintf(stderr, "progress %.0f/%.0f\n", done,
					total);
			}
		} else if (!strcmp(status, "ok") || !strcmp(status, "failed") ||
			   !strcmp(status, "canceled")) {
			if (tty)
				fputc('\n', stderr);
			char *s = cJSON_PrintUnformatted(ev);
			fprintf(stderr, "%s\n", s ? s : "");
			cJSON_free(s);
			bool ok = !strcmp(status, "ok");
			cJSON_Delete(ev);
			return ok ? EXIT_OK : EXIT_FAIL;
		}
		cJSON_Delete(ev);
	}
}

static int cmd_plugin(cli *c, int argc, char **argv)
{
	return vg_cmd_plugin(argc, argv);
}

static int cmd_help(cli *c, int argc, char **argv);

/* The commands: one table drives dispatch and help. */
static const struct command {
	const char *name;
	int (*fn)(cli *, int, char **);
	const char *args;
	const char *help;
} commands[] = {
	{ "import", cmd_import,
	  "indicators|territories|points FILE [--skip-bad] [--published WHEN]",
	  "import a file; any bad row and nothing is imported" },
	{ "series", cmd_query, "IND TERR [--from P] [--to P] [--as-of WHEN]",
	  "one territory's values over time" },
	{ "slice", cmd_query,
	  "IND --level L --period P [--in TERR] [--as-of WHEN] "
	  "[--membership latest]",
	  "every territory of a level for one period (a map; in a perimeter: "
	  "its members of the period)" },
	{ "aggregate", cmd_query,
	  "IND --period P (--level L [--in TERR] | --territory T | "
	  "--territories T1,T2,...) [--as-of WHEN] [--membership latest]",
	  "values at any scale, computed with the indicator's rule, with "
	  "coverage; a perimeter on its members of the period (--membership "
	  "latest: on its latest members)" },
	{ "perimeter", cmd_perimeter,
	  "define CODE --members T1,T2,... [--name N] [--from P] "
	  "[--parents P1,...] | show CODE",
	  "define a perimeter or its membership from period P (admin); "
	  "show its membership versions" },
	{ "compare", cmd_query,
	  "IND TERR --period P [--as-of WHEN] [--membership latest]",
	  "a territory against each territory containing it and France, "
	  "with the gap" },
	{ "rank", cmd_query,
	  "IND TERR --period P [--in TERR] [--as-of WHEN] "
	  "[--membership latest]",
	  "position and percentile among the territories of its level (in a "
	  "perimeter: its members of the period, or --membership latest)" },
	{ "profile", cmd_query,
	  "TERR --period P [--as-of WHEN] [--membership latest]",
	  "every indicator of a territory with its containers' values "
	  "(portrait de territoire)" },
	{ "disparities", cmd_query,
	  "IND TERR --period P [--level L] [--as-of WHEN] "
	  "[--membership latest]",
	  "spread of the values of its communes (or --level): min, quartiles, "
	  "max, max/min" },
	{ "history", cmd_query, "IND TERR PERIOD",
	  "every published value of one point, oldest first" },
	{ "export", cmd_export, "points [--indicator IND]",
	  "write points as CSV (re-importable) to standard output" },
	{ "indicators", cmd_query, "", "list indicators" },
	{ "territories", cmd_query,
	  "[--level L] [--in TERR] [--search TEXT] [--offset N] [--limit N]",
	  "list territories" },
	{ "stat", cmd_query, "", "store statistics" },
	{ "status", cmd_query, "",
	  "the daemon's state: store, uptime, connections, requests, jobs "
	  "(remote)" },
	{ "ping", cmd_query, "", "is the daemon there? (remote)" },
	{ "plugins", cmd_query, "", "loaded plugins and their schedule (remote)" },
	{ "jobs", cmd_query, "[--limit N]", "recent and running plugin runs (remote)" },
	{ "run", cmd_run, "PLUGIN [--follow]",
	  "run a plugin now; --follow shows its progress (remote, admin)" },
	{ "reload", cmd_query, "", "reload changed plugins (remote, admin)" },
	{ "backup", cmd_query, "PATH",
	  "hot compacted copy of the store into PATH under the data "
	  "directory (admin)" },
	{ "plugin", cmd_plugin,
	  "check FILE.lua | run FILE.lua [--dry-run] [--data DIR] "
	  "[--config K=V]", "validate a plugin's manifest, or run it" },
	{ "help", cmd_help, "", "this text" },
};

static int cmd_help(cli *c, int argc, char **argv)
{
	printf("usage: vigie [--data DIR | --socket PATH | --connect HOST:PORT] "
	       "[--format table|csv|json] COMMAND ...\n\n"
	       "  --data DIR    data directory, offline (default $VIGIE_DATA, "
	       "else ./var/data)\n"
	       "  --socket PATH, --connect HOST:PORT\n"
	       "                ask the daemon instead (queries answer the "
	       "same)\n"
	       "  --token-file F  admin token for run/reload/backup over TCP "
	       "(or $VIGIE_TOKEN)\n"
	       "  --format F    table on a terminal, csv otherwise by "
	       "default\n\ncommands:\n");
	for (size_t i = 0; i < VG_ARRAY_LEN(commands); i++)
		printf("  %s %s\n      %s\n", commands[i].name, commands[i].args,
		       commands[i].help);
	printf("\nPeriods: 2024, 2024-Q1, 2024-03, 2024-03-15. WHEN: "
	       "2024-05-01 (end of that day, UTC) or 2024-05-01T12:00:00Z.\n"
	       "Territories: level:code, e.g. com:85146, epci:200081115, "
	       "dep:2A, reg:52, fr.\n");
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	cli c = { 0 };
	c.fd = -1;
	c.token = getenv("VIGIE_TOKEN");
	static char token_buf[1024];
	c.data = getenv("VIGIE_DATA");
	if (!c.data)
		c.data = "var/data";
	c.fmt = isatty(STDOUT_FILENO) ? OUT_TABLE : OUT_CSV;
	int i = 1;
	for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help")) {
			return cmd_help(&c, 0, NULL);
		} else if (!strcmp(a, "--data") && i + 1 < argc) {
			c.data = argv[++i];
		} else if (!strcmp(a, "--socket") && i + 1 < argc) {
			c.socket_path = argv[++i];
			c.remote = true;
		} else if (!strcmp(a, "--connect") && i + 1 < argc) {
			c.connect = argv[++i];
			c.remote = true;
		} else if (!strcmp(a, "--token-file") && i + 1 < argc) {
			FILE *tf = fopen(argv[++i], "r");
			if (!tf || !fgets(token_buf, sizeof(token_buf), tf)) {
				fprintf(stderr, "vigie: cannot read token file "
						"%s\n",
					argv[i]);
				return EXIT_USAGE;
			}
			fclose(tf);
			token_buf[strcspn(token_buf, "\r\n")] = '\0';
			c.token = token_buf;
		} else if (!strcmp(a, "--format") && i + 1 < argc) {
			const char *f = argv[++i];
			if (!strcmp(f, "table"))
				c.fmt = OUT_TABLE;
			else if (!strcmp(f, "csv"))
				c.fmt = OUT_CSV;
			else if (!strcmp(f, "json"))
				c.fmt = OUT_JSON;
			else
				return usage_error("", "unknown format '%s' "
						   "(table, csv, json)", f);
		} else {
			return usage_error("", "unknown or incomplete option "
					   "'%s'", a);
		}
	}
	if (i >= argc)
		return cmd_help(&c, 0, NULL), EXIT_USAGE;
	const char *name = argv[i];
	for (size_t k = 0; k < VG_ARRAY_LEN(commands); k++) {
		if (strcmp(commands[k].name, name))
			continue;
		/* The command sees its own argv: argv[0] is its name. */
		if (c.remote && (commands[k].fn == cmd_import ||
				 commands[k].fn == cmd_export))
			return usage_error(name, "works on a data directory "
					   "(--data), not through the daemon%s",
					   "");
		int rc = commands[k].fn(&c, argc - i, argv + i);
		vg_store_close(c.store);
		if (c.fd >= 0)
			close(c.fd);
		free(c.rbuf);
		return rc;
	}
	return usage_error("", "unknown command '%s'", name);
}
