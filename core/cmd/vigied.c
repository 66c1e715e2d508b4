/* vigied: the daemon. Opens the store, serves the socket API (NDJSON over
 * unix/TCP, HTTP) and runs the plugins on their schedules.
 *
 * Settings come from one table (`settings` below) that drives the config
 * file (`key = value` lines), the command-line flags and `--help`. Flags
 * override the file. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "vigie/daemon.h"
#include "vigie/api.h"
#include "vigie/common.h"
#include "vigie/log.h"
#include "vigie/server.h"
#include "vigie/store.h"

#define MAX_LISTEN 8

typedef struct config {
	char data[1024], plugins[1024], token_file[1024], addr_file[1024],
		cors_origin[256], log_format[16], config[1024];
	char listen[MAX_LISTEN][300];
	size_t nlisten;
	char http[MAX_LISTEN][300];
	size_t nhttp;
	char fetch_root[MAX_LISTEN][300];
	size_t nfetch_root;
	long workers, max_conns, max_request, idle_timeout, grace;
	bool foreground;
} config;

typedef enum { S_STR, S_LIST, S_LONG, S_FLAG } set_kind;

/* The settings: one row each for the config file, the flags and help. */
static const struct setting {
	const char *name; /* config key and --flag */
	set_kind kind;
	size_t off, size; /* in config */
	const char *arg, *help;
} settings[] = {
#define F(m) offsetof(config, m), sizeof(((config *)0)->m)
	{ "config", S_STR, F(config), "FILE",
	  "read settings from FILE (key = value lines) first" },
	{ "data", S_STR, F(data), "DIR", "data directory (default var/data)" },
	{ "plugins", S_STR, F(plugins), "DIR",
	  "plugin directory (default plugins)" },
	{ "listen", S_LIST, F(listen), "ADDR",
	  "unix:PATH or tcp:HOST:PORT, repeatable (default unix:DATA/"
	  "vigied.sock and tcp:127.0.0.1:7878; port 0: a free port)" },
	{ "http", S_LIST, F(http), "HOST:PORT",
	  "serve HTTP/1.1 too, repeatable (e.g. 127.0.0.1:7879)" },
	{ "fetch-root", S_LIST, F(fetch_root), "DIR",
	  "local directory plugins may read with ctx:fetch, repeatable "
	  "(the plugin and data directories always are)" },
	{ "token-file", S_STR, F(token_file), "FILE",
	  "admin token for write ops over TCP/HTTP (first line of FILE)" },
	{ "cors-origin", S_STR, F(cors_origin), "ORIGIN",
	  "browser origin allowed over HTTP (or *)" },
	{ "workers", S_LONG, F(workers), "N",
	  "worker threads for plugin runs and heavy queries (default 2)" },
	{ "max-connections", S_LONG, F(max_conns), "N",
	  "connections at once (default 1024)" },
	{ "max-request", S_LONG, F(max_request), "BYTES",
	  "longest request accepted (default 1048576)" },
	{ "idle-timeout", S_LONG, F(idle_timeout), "SECONDS",
	  "close connections idle this long (default 300)" },
	{ "grace", S_LONG, F(grace), "SECONDS",
	  "on SIGTERM, wait this long for requests and runs (default 30)" },
	{ "addr-file", S_STR, F(addr_file), "FILE",
	  "where to write the bound addresses (default DATA/vigied.addr)" },
	{ "log-format", S_STR, F(log_format), "text|json",
	  "log lines as text or JSON (default: text on a terminal)" },
	{ "foreground", S_FLAG, F(foreground), NULL,
	  "stay attached to the terminal (default: detach once listening)" },
#undef F
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vigied [options]\n\n");
	for (size_t i = 0; i < VG_ARRAY_LEN(settings); i++) {
		const struct setting *s = &settings[i];
		char left[64];
		snprintf(left, sizeof(left), "--%s%s%s", s->name,
			 s->arg ? " " : "", s->arg ? s->arg : "");
		fprintf(f, "  %-26s %s\n", left, s->help);
	}
	fprintf(f, "  %-26s %s\n", "--doc-ops",
		"print the operation reference (Markdown) and exit");
	fprintf(f, "\nSignals: SIGHUP reloads the token and changed plugins; "
		   "SIGTERM/SIGINT drain and exit 0.\n");
}

static int set_value(config *c, const struct setting *s, const char *v,
		     const char *where)
{
	char *field = (char *)c + s->off;
	switch (s->kind) {
	case S_STR:
		if (strlen(v) >= s->size) {
			fprintf(stderr, "vigied: %s: %s is too long\n", where,
				s->name);
			return -1;
		}
		strcpy(field, v);
		return 0;
	case S_LIST: {
		size_t *n = !strcmp(s->name, "listen") ? &c->nlisten
			    : !strcmp(s->name, "http") ? &c->nhttp
						       : &c->nfetch_root;
		if (*n >= MAX_LISTEN || strlen(v) >= 300) {
			fprintf(stderr, "vigied: %s: too many or too long %s "
					"addresses\n",
				where, s->name);
			return -1;
		}
		strcpy(field + *n * 300, v);
		(*n)++;
		return 0;
	}
	case S_LONG: {
		char *end;
		long x = strtol(v, &end, 10);
		if (!*v || *end || x < 0) {
			fprintf(stderr, "vigied: %s: %s expects a number >= 0, "
					"not '%s'\n",
				where, s->name, v);
			return -1;
		}
		*(long *)field = x;
		return 0;
	}
	case S_FLAG:
		*(bool *)field = !strcmp(v, "true") || !strcmp(v, "1") ||
				 !strcmp(v, "yes");
		return 0;
	}
	return -1;
}

static const struct setting *find_setting(const char *name)
{
	for (size_t i = 0; i < VG_ARRAY_LEN(settings); i++)
		if (!strcmp(settings[i].name, name))
			return &settings[i];
	return NULL;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	char *e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
			 e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int read_config_file(config *c, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "vigied: cannot read config %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	char line[2048];
	int lineno = 0, rc = 0;
	while (!rc && fgets(line, sizeof(line), f)) {
		lineno++;
		char *l = trim(line);
		if (!*l || *l == '#')
			continue;
		char *eq = strchr(l, '=');
		char where[1100];
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		if (!eq) {
			fprintf(stderr, "vigied: %s: expected 'key = value'\n",
				where);
			rc = -1;
			break;
		}
		*eq = '\0';
		char *k = trim(l), *v = trim(eq + 1);
		for (char *p = k; *p; p++)
			if (*p == '_')
				*p = '-';
		const struct setting *s = find_setting(k);
		if (!s || !strcmp(k, "config")) {
			fprintf(stderr, "vigied: %s: unknown setting '%s'\n",
				where, k);
			rc = -1;
			break;
		}
		rc = set_value(c, s, v, where);
	}
	fclose(f);
	return rc;
}

/* Flags after the config file: the file is read first wherever --config
 * appears, and lists given as flags replace the file's. */
static int parse_args(config *c, int argc, char **argv, bool *doc_ops)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--config") && i + 1 < argc) {
			if (read_config_file(c, argv[i + 1]))
				return -1;
			snprintf(c->config, sizeof(c->config), "%s",
				 argv[i + 1]);
		}
	bool flag_listen = false, flag_http = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		}
		if (!strcmp(a, "--doc-ops")) {
			*doc_ops = true;
			continue;
		}
		const char *eq = strchr(a, '=');
		char name[64];
		if (strncmp(a, "--", 2)) {
			fprintf(stderr, "vigied: unexpected argument '%s' (see "
					"--help)\n",
				a);
			return -1;
		}
		size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		if (nl >= sizeof(name))
			nl = sizeof(name) - 1;
		memcpy(name, a + 2, nl);
		name[nl] = '\0';
		const struct setting *s = find_setting(name);
		if (!s) {
			fprintf(stderr, "vigied: unknown option '%s' (see "
					"--help)\n",
				a);
			return -1;
		}
		const char *v;
		if (s->kind == S_FLAG) {
			v = eq ? eq + 1 : "true";
		} else if (eq) {
			v = eq + 1;
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			fprintf(stderr, "vigied: %s needs a value (%s)\n", a,
				s->arg);
			return -1;
		}
		if (!strcmp(name, "config"))
			continue;
		if (!strcmp(name, "listen") && !flag_listen) {
			flag_listen = true;
			c->nlisten = 0;
		}
		if (!strcmp(name, "http") && !flag_http) {
			flag_http = true;
			c->nhttp = 0;
		}
		if (set_value(c, s, v, "command line"))
			return -1;
	}
	return 0;
}

/* ---- the process ------------------------------------------------------------ */

static int read_token(const char *path, char *out, size_t n)
{
	out[0] = '\0';
	if (!*path)
		return 0;
	FILE *f = fopen(path, "r");
	if (!f) {
		vg_errlog("cannot read the token file %s: %s", path,
			  strerror(errno));
		return -1;
	}
	char line[1024] = "";
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	snprintf(out, n, "%s", trim(line));
	if (strlen(out) < 16) {
		vg_errlog("token in %s is shorter than 16 characters: refusing "
			  "it",
			  path);
		return -1;
	}
	return 0;
}

/* One daemon per data directory: a second one would fight over the
 * plugins' schedules and the socket. The lock dies with the process. */
static int lock_data_dir(const char *data, int *fd_out)
{
	char path[1100];
	snprintf(path, sizeof(path), "%s/vigied.lock", data);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "vigied: cannot open %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		char pid[32] = "?";
		ssize_t n = read(fd, pid, sizeof(pid) - 1);
		pid[n > 0 ? n : 0] = '\0';
		fprintf(stderr,
			"vigied: another vigied (pid %s) already serves %s: "
			"stop it first, or use another --data\n",
			trim(pid), data);
		close(fd);
		return -1;
	}
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == 0 && write(fd, pid, (size_t)n) < 0)
		(void)0; /* the pid is informative only */
	*fd_out = fd;
	return 0;
}

static int mkdir_p(const char *dir)
{
	char buf[1100];
	snprintf(buf, sizeof(buf), "%s", dir);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

typedef struct daemon_state {
	uv_loop_t *loop;
	config cfg;
	vg_store *store;
	vg_server *srv;
	vg_daemon *d; /* plugins and scheduler */
	uv_signal_t sigterm, sigint, sighup;
	char token[1024];
	int exit_code;
	int ready_fd; /* detaching: tell the parent we are up */
} daemon_state;

static void on_signal_closed(uv_handle_t *h)
{
	(void)h;
}

static void on_server_done(void *ud)
{
	daemon_state *st = ud;
	vg_info("stopped");
	/* The scheduler's handles keep the loop alive: close them too. */
	vg_daemon_free(st->d);
	st->d = NULL;
	uv_close((uv_handle_t *)&st->sigterm, on_signal_closed);
	uv_close((uv_handle_t *)&st->sigint, on_signal_closed);
	uv_close((uv_handle_t *)&st->sighup, on_signal_closed);
}

static void on_plugins_stopped(void *ud)
{
	daemon_state *st = ud;
	vg_server_stop(st->srv, (double)st->cfg.grace, on_server_done, st);
}

static void on_stop_signal(uv_signal_t *h, int sig)
{
	daemon_state *st = h->data;
	vg_info("%s: finishing in-flight requests and runs (grace %ld s)",
		sig == SIGTERM ? "SIGTERM" : "SIGINT", st->cfg.grace);
	uv_signal_stop(&st->sigterm);
	uv_signal_stop(&st->sigint);
	vg_daemon_stop(st->d, (double)st->cfg.grace, on_plugins_stopped, st);
}

static void on_hup(uv_signal_t *h, int sig)
{
	daemon_state *st = h->data;
	(void)sig;
	vg_info("SIGHUP: reloading the token and the plugins");
	char tok[1024];
	if (read_token(st->cfg.token_file, tok, sizeof(tok)) == 0)
		memcpy(st->token, tok, sizeof(tok));
	vg_daemon_reload(st->d, NULL, 0);
}

static void write_addr_file(daemon_state *st)
{
	char addrs[4096], tmp[1200];
	vg_server_addrs(st->srv, addrs, sizeof(addrs));
	snprintf(tmp, sizeof(tmp), "%s.tmp", st->cfg.addr_file);
	FILE *f = fopen(tmp, "w");
	if (!f || fputs(addrs, f) < 0 || fclose(f)) {
		vg_warn("cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	/* Atomic: a script polling for the file never reads half of it. */
	rename(tmp, st->cfg.addr_file);
}

static int serve(daemon_state *st)
{
	config *c = &st->cfg;
	vg_error err = { 0 };
	char buf[1024];
	vg_store_opts so = { 0 };
	if (vg_store_open(&st->store, c->data, &so, &err)) {
		vg_errlog("%s", vg_error_format(&err, buf, sizeof(buf)));
		return 1;
	}
	st->loop = uv_default_loop();
	uv_loop_configure(st->loop, UV_METRICS_IDLE_TIME);
	const char *roots[MAX_LISTEN];
	for (size_t i = 0; i < c->nfetch_root; i++)
		roots[i] = c->fetch_root[i];
	if (vg_daemon_new(st->loop, st->store, c->data, c->plugins, roots,
			  c->nfetch_root, (unsigned)c->workers, &st->d, &err)) {
		vg_errlog("%s", vg_error_format(&err, buf, sizeof(buf)));
		vg_store_close(st->store);
		return 1;
	}
	const vg_api_hooks *hooks = vg_daemon_hooks(st->d);
	const char *listen[MAX_LISTEN], *http[MAX_LISTEN];
	for (size_t i = 0; i < c->nlisten; i++)
		listen[i] = c->listen[i];
	for (size_t i = 0; i < c->nhttp; i++)
		http[i] = c->http[i];
	vg_server_opts o = {
		.store = st->store,
		.data_dir = c->data,
		.listen = listen,
		.nlisten = c->nlisten,
		.http = http,
		.nhttp = c->nhttp,
		.token = st->token[0] ? st->token : NULL,
		.cors_origin = c->cors_origin[0] ? c->cors_origin : NULL,
		.max_conns = (unsigned)c->max_conns,
		.max_request = (size_t)c->max_request,
		.idle_timeout_s = (double)c->idle_timeout,
		.hooks = hooks,
	};
	if (vg_server_start(st->loop, &o, &st->srv, &err)) {
		vg_errlog("%s", vg_error_format(&err, buf, sizeof(buf)));
		vg_daemon_free(st->d);
		uv_run(st->loop, UV_RUN_DEFAULT); /* let handles close */
		uv_loop_close(st->loop);
		vg_store_close(st->store);
		if (st->ready_fd >= 0) {
			char m[1100];
			int n = snprintf(m, sizeof(m), "E%s", err.msg);
			if (write(st->ready_fd, m, (size_t)n) < 0)
				(void)0;
		}
		return 1;
	}
	vg_daemon_set_server(st->d, st->srv);
	/* The handlers go in before the address file is written: a client
	 * that waits for the file (tests, scripts) and sends SIGTERM at once
	 * must get a drain, not the default action (exit 143). */
	uv_signal_init(st->loop, &st->sigterm);
	uv_signal_init(st->loop, &st->sigint);
	uv_signal_init(st->loop, &st->sighup);
	st->sigterm.data = st->sigint.data = st->sighup.data = st;
	uv_signal_start(&st->sigterm, on_stop_signal, SIGTERM);
	uv_signal_start(&st->sigint, on_stop_signal, SIGINT);
	uv_signal_start(&st->sighup, on_hup, SIGHUP);
	write_addr_file(st);
	char addrs[4096];
	vg_server_addrs(st->srv, addrs, sizeof(addrs));
	for (char *line = strtok(addrs, "\n"); line; line = strtok(NULL, "\n"))
		vg_info("listening on %s", line);
	vg_info("serving %s (addresses in %s)", c->data, c->addr_file);
	vg_daemon_start(st->d);
	if (st->ready_fd >= 0) {
		if (write(st->ready_fd, "K", 1) < 0)
			(void)0;
		close(st->ready_fd);
		st->ready_fd = -1;
	}
	uv_run(st->loop, UV_RUN_DEFAULT);
	vg_daemon_free(st->d);
	vg_server_free(st->srv);
	uv_run(st->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(st->loop))
		vg_warn("some handles were still open at exit");
	vg_store_close(st->store);
	unlink(c->addr_file);
	return st->exit_code;
}

/* Detach: the parent waits until the child listens (or failed) so the
 * shell sees errors and a script can query right after we return. */
static int detach(daemon_state *st)
{
	int fds[2];
	if (pipe(fds))
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(fds[1]);
		char m[1200];
		ssize_t n = read(fds[0], m, sizeof(m) - 1);
		if (n > 0 && m[0] == 'K')
			_exit(0);
		m[n > 0 ? n : 0] = '\0';
		fprintf(stderr, "vigied: failed to start%s%s\n",
			n > 1 ? ": " : "", n > 1 ? m + 1 : "");
		_exit(1);
	}
	close(fds[0]);
	setsid();
	st->ready_fd = fds[1];
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		close(null);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static daemon_state st;
	config *c = &st.cfg;
	st.ready_fd = -1;
	snprintf(c->data, sizeof(c->data), "%s",
		 getenv("VIGIE_DATA") ? getenv("VIGIE_DATA") : "var/data");
	snprintf(c->plugins, sizeof(c->plugins), "plugins");
	c->workers = 2;
	c->grace = 30;
	bool doc_ops = false;
	if (parse_args(c, argc, argv, &doc_ops))
		return 2;
	if (doc_ops) {
		char *md = vg_api_doc_markdown();
		fputs(md ? md : "", stdout);
		free(md);
		return md ? 0 : 1;
	}
	if (!c->log_format[0])
		snprintf(c->log_format, sizeof(c->log_format), "%s",
			 isatty(STDERR_FILENO) ? "text" : "json");
	if (strcmp(c->log_format, "text") && strcmp(c->log_format, "json")) {
		fprintf(stderr, "vigied: --log-format is text or json, not "
				"'%s'\n",
			c->log_format);
		return 2;
	}
	vg_log_setup(stderr,
		     !strcmp(c->log_format, "json") ? VG_LOG_JSON : VG_LOG_TEXT,
		     VG_LOG_INFO);
	if (c->workers < 1 || c->workers > 64) {
		fprintf(stderr, "vigied: --workers between 1 and 64\n");
		return 2;
	}
	if (mkdir_p(c->data)) {
		fprintf(stderr, "vigied: cannot create %s: %s\n", c->data,
			strerror(errno));
		return 1;
	}
	if (!c->nlisten) {
		snprintf(c->listen[0], sizeof(c->listen[0]),
			 "unix:%.200s/vigied.sock", c->data);
		snprintf(c->listen[1], sizeof(c->listen[1]),
			 "tcp:127.0.0.1:7878");
		c->nlisten = 2;
	}
	if (!c->addr_file[0])
		snprintf(c->addr_file, sizeof(c->addr_file), "%.1000s/vigied.addr",
			 c->data);
	if (read_token(c->token_file, st.token, sizeof(st.token)))
		return 1;
	/* Heavy queries use libuv's pool; size it before its first use. */
	char nw[16];
	snprintf(nw, sizeof(nw), "%ld", c->workers);
	setenv("UV_THREADPOOL_SIZE", nw, 0);
	signal(SIGPIPE, SIG_IGN);
	if (!c->foreground && detach(&st))
		return 1;
	int lockfd;
	if (lock_data_dir(c->data, &lockfd)) {
		if (st.ready_fd >= 0 &&
		    write(st.ready_fd, "Eanother vigied serves this data "
				       "directory",
			  42) < 0)
			(void)0;
		return 1;
	}
	int rc = serve(&st);
	close(lockfd);
	return rc;
}
