/* Integration harness: start the real vigied (the sanitizer build from
 * $VIGIE_BIN) on a fresh data directory with free loopback ports, talk
 * to it over its real sockets, stop it with SIGTERM and check it exited
 * 0 (so a leak or UB report under ASan fails the test). */
#ifndef VIGIE_TEST_DAEMON_H
#define VIGIE_TEST_DAEMON_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../unit/helpers.h"
#include "vigie/io.h"
#include "vigie/store.h"

typedef struct daemon {
	char *dir;      /* the test's directory; data is dir/data */
	char data[512];
	pid_t pid;
	int tcp_port, http_port;
	char sock[600];
	char token[64];
} daemon_t;

static inline const char *root_path(const char *rel)
{
	static char buf[1024];
	const char *r = getenv("VIGIE_ROOT");
	snprintf(buf, sizeof(buf), "%s/%s", r ? r : ".", rel);
	return buf;
}

static inline const char *bin_path(const char *name)
{
	static char buf[1024];
	const char *b = getenv("VIGIE_BIN");
	snprintf(buf, sizeof(buf), "%s/%s", b ? b : "build", name);
	return buf;
}

/* The Vendée and Loire-Atlantique subset of the real data. */
static inline void load_fixture(const char *data)
{
	vg_store *s;
	vg_error err = { 0 };
	cr_assert_eq(vg_store_open(&s, data, NULL, &err), 0, "%s", err.msg);
	vg_import_opts o = { 0 };
	vg_import_report *rep = calloc(1, sizeof(*rep));
	cr_assert_eq(vg_import_territories(
			     s, root_path("tests/fixtures/daemon/territories.csv"),
			     &o, rep, &err),
		     0, "%s", err.msg);
	cr_assert_eq(vg_import_indicators(
			     s, root_path("tests/fixtures/daemon/indicators.json"),
			     &o, rep, &err),
		     0, "%s", err.msg);
	cr_assert_eq(vg_import_points(s,
				      root_path("tests/fixtures/daemon/points.csv"),
				      &o, rep, &err),
		     0, "%s", err.msg);
	free(rep);
	vg_store_close(s);
}

static inline bool wait_file(const char *path, double secs)
{
	struct stat st;
	for (int i = 0; i < secs * 100; i++) {
		if (stat(path, &st) == 0 && st.st_size > 0)
			return true;
		usleep(10000);
	}
	return false;
}

/* Start vigied; extra flags (NULL-terminated) are appended. */
static inline void daemon_start_args(daemon_t *d, const char *const *extra)
{
	char addr[700], tokfile[700], listen_unix[700];
	snprintf(addr, sizeof(addr), "%s/addr", d->dir);
	snprintf(tokfile, sizeof(tokfile), "%s/token", d->dir);
	snprintf(d->token, sizeof(d->token), "test-token-0123456789abcdef");
	FILE *f = fopen(tokfile, "w");
	fprintf(f, "%s\n", d->token);
	fclose(f);
	snprintf(d->sock, sizeof(d->sock), "%s/s.sock", d->dir);
	snprintf(listen_unix, sizeof(listen_unix), "unix:%s", d->sock);
	unlink(addr);
	const char *argv[40] = { bin_path("vigied"), "--foreground",
				 "--data", d->data,
				 "--listen", listen_unix,
				 "--listen", "tcp:127.0.0.1:0",
				 "--http", "127.0.0.1:0",
				 "--token-file", tokfile,
				 "--addr-file", addr,
				 "--log-format", "json",
				 "--plugins", root_path("tests/fixtures/no-plugins") };
	int n = 18;
	for (; extra && *extra && n < 38; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	char log[700];
	snprintf(log, sizeof(log), "%s/vigied.log", d->dir);
	d->pid = fork();
	cr_assert(d->pid >= 0);
	if (d->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 2);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	cr_assert(wait_file(addr, 30), "vigied did not start (see %s)", log);
	f = fopen(addr, "r");
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "tcp:", 4))
			d->tcp_port = atoi(strrchr(line, ':') + 1);
		else if (!strncmp(line, "http:", 5))
			d->http_port = atoi(strrchr(line, ':') + 1);
	}
	fclose(f);
	cr_assert(d->tcp_port > 0 && d->http_port > 0);
}

static inline void daemon_start(daemon_t *d)
{
	daemon_start_args(d, NULL);
}

/* A fresh data directory with the fixture loaded, and the daemon on it. */
static inline void daemon_setup(daemon_t *d)
{
	memset(d, 0, sizeof(*d));
	d->dir = tmp_dir();
	snprintf(d->data, sizeof(d->data), "%s/data", d->dir);
	mkdir(d->data, 0755);
	load_fixture(d->data);
	daemon_start(d);
}

/* SIGTERM and the exit status (0 expected: ASan findings make it
 * non-zero). */
static inline int daemon_stop(daemon_t *d)
{
	if (d->pid <= 0)
		return 0;
	kill(d->pid, SIGTERM);
	int st = 0;
	for (int i = 0; i < 3000; i++) {
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(10000);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &st, 0);
	d->pid = 0;
	return -1;
}

static inline void daemon_teardown(daemon_t *d)
{
	int rc = daemon_stop(d);
	if (rc != 0) {
		char cmd[800];
		snprintf(cmd, sizeof(cmd), "tail -30 %s/vigied.log >&2", d->dir);
		int r = system(cmd);
		(void)r;
	}
	cr_expect_eq(rc, 0, "vigied exited with %d", rc);
	rm_tree(d->dir);
}

/* ---- clients ---------------------------------------------------------------- */

static inline int tcp_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0,
		     "connect %d: %s", port, strerror(errno));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct timeval tv = { .tv_sec = 20 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static inline int unix_connect(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0,
		     "connect %s: %s", path, strerror(errno));
	struct timeval tv = { .tv_sec = 20 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static inline void send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		cr_assert(w > 0, "write: %s", strerror(errno));
		s += w;
		n -= (size_t)w;
	}
}

/* A line reader over one socket. */
typedef struct lines {
	int fd;
	char buf[1 << 20];
	size_t len;
} lines;

/* Next line (without '\n'), malloc'd; NULL on EOF/timeout. */
static inline char *next_line(lines *l)
{
	for (;;) {
		char *nl = memchr(l->buf, '\n', l->len);
		if (nl) {
			size_t n = (size_t)(nl - l->buf);
			char *s = strndup(l->buf, n);
			memmove(l->buf, nl + 1, l->len - n - 1);
			l->len -= n + 1;
			return s;
		}
		if (l->len == sizeof(l->buf))
			return NULL;
		ssize_t r = read(l->fd, l->buf + l->len, sizeof(l->buf) - l->len);
		if (r <= 0)
			return NULL;
		l->len += (size_t)r;
	}
}

static inline cJSON *next_json(lines *l)
{
	char *s = next_line(l);
	cr_assert_not_null(s, "no answer from the daemon");
	cJSON *o = cJSON_Parse(s);
	cr_assert_not_null(o, "answer is not JSON: %s", s);
	free(s);
	return o;
}

/* One request line, one answer. */
static inline cJSON *rpc(lines *l, const char *req)
{
	send_all(l->fd, req, strlen(req));
	send_all(l->fd, "\n", 1);
	return next_json(l);
}

static inline bool is_ok(const cJSON *r)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok"));
}

static inline const char *err_code(const cJSON *r)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
	return cJSON_IsString(c) ? c->valuestring : "";
}

static inline const cJSON *result_rows(const cJSON *r)
{
	return cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(r, "result"), "rows");
}

static inline double row_num(const cJSON *row, const char *k)
{
	return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(row, k));
}

static inline const char *row_str(const cJSON *row, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, k);
	return cJSON_IsString(v) ? v->valuestring : "";
}

/* A whole HTTP exchange on a new connection: returns the status, the
 * body into *body (malloc'd) and the headers into hdrs. */
static inline int http_req(int port, const char *raw, char **body,
			   char *hdrs, size_t hn)
{
	int fd = tcp_connect(port);
	send_all(fd, raw, strlen(raw));
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (len + 1 >= cap)
			buf = realloc(buf, cap *= 2);
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = '\0';
		char *end = strstr(buf, "\r\n\r\n");
		if (end) {
			char *cl = strcasestr(buf, "Content-Length:");
			if (cl && cl < end &&
			    len >= (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10))
				break;
		}
	}
	close(fd);
	buf[len] = '\0';
	int status = 0;
	sscanf(buf, "HTTP/1.1 %d", &status);
	char *end = strstr(buf, "\r\n\r\n");
	if (hdrs)
		snprintf(hdrs, hn, "%.*s", end ? (int)(end - buf) : 0, buf);
	*body = strdup(end ? end + 4 : "");
	free(buf);
	return status;
}

#endif
