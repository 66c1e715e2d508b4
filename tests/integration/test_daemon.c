/* vigied end to end: the real daemon on free loopback ports, spoken to
 * over unix, TCP and HTTP. */
#include <pthread.h>
#include <stdarg.h>

#include "daemon.h"

static daemon_t D;

static void setup(void)
{
	daemon_setup(&D);
}

static void teardown(void)
{
	daemon_teardown(&D);
}

TestSuite(daemon, .init = setup, .fini = teardown, .timeout = 120);

/* Vendée: the sum of the 255 communes' populations in the fixture. */
#define VENDEE_POP 706343

Test(daemon, ping_over_unix_tcp_and_http)
{
	lines *l = calloc(1, sizeof(*l));
	l->fd = unix_connect(D.sock);
	cJSON *r = rpc(l, "{\"id\":1,\"op\":\"ping\"}");
	cr_assert(is_ok(r));
	cr_assert_eq(cJSON_GetObjectItemCaseSensitive(r, "id")->valueint, 1);
	cJSON_Delete(r);
	close(l->fd);
	l->fd = tcp_connect(D.tcp_port);
	l->len = 0;
	r = rpc(l, "{\"id\":\"a\",\"op\":\"ping\"}");
	cr_assert(is_ok(r));
	cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(r, "id")->valuestring,
			 "a");
	cJSON_Delete(r);
	close(l->fd);
	free(l);
	char *body;
	int st = http_req(D.http_port,
			  "GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n", &body,
			  NULL, 0);
	cr_assert_eq(st, 200);
	cr_assert(strstr(body, "\"pong\":\"vigie\""), "%s", body);
	free(body);
}

/* Every read operation over TCP, with values checked against the
 * fixture. */
Test(daemon, every_read_op_answers_right)
{
	lines *l = calloc(1, sizeof(*l));
	l->fd = tcp_connect(D.tcp_port);
	cJSON *r = rpc(l, "{\"id\":1,\"op\":\"series\",\"indicator\":"
			  "\"population\",\"territory\":\"com:85146\"}");
	cr_assert(is_ok(r));
	const cJSON *row = cJSON_GetArrayItem(result_rows(r), 0);
	cr_assert_eq(row_num(row, "value"), 20754);
	cr_assert_str_eq(row_str(row, "period"), "2022");
	cJSON_Delete(r);

	r = rpc(l, "{\"id\":2,\"op\":\"aggregate\",\"indicator\":\"population\","
		   "\"period\":\"2022\",\"territory\":\"dep:85\"}");
	cr_assert(is_ok(r));
	row = cJSON_GetArrayItem(result_rows(r), 0);
	cr_assert_eq(row_num(row, "value"), VENDEE_POP);
	cr_assert_str_eq(row_str(row, "source"), "computed");
	cr_assert_eq(row_num(row, "members"), 255);
	cr_assert_str_eq(row_str(row, "coverage"), "complete");
	cJSON_Delete(r);

	r = rpc(l, "{\"id\":3,\"op\":\"slice\",\"indicator\":\"population\","
		   "\"level\":\"com\",\"period\":\"2022\",\"within\":\"dep:85\","
		   "\"limit\":100}");
	cr_assert(is_ok(r));
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(r, "result");
	cr_assert_eq(cJSON_GetArraySize(result_rows(r)), 100);
	cr_assert_eq(row_num(res, "total"), 255);
	cr_assert_eq(row_num(res, "next_offset"), 100);
	cJSON_Delete(r);

	r = rpc(l, "{\"id\":4,\"op\":\"compare\",\"indicator\":\"population\","
		   "\"territory\":\"com:85146\",\"period\":\"2022\"}");
	cr_assert(is_ok(r));
	bool saw_dep = false;
	cJSON_ArrayForEach(row, result_rows(r))
		if (!strcmp(row_str(row, "territory"), "dep:85")) {
			saw_dep = true;
			cr_assert_eq(row_num(row, "value"), VENDEE_POP);
			cr_assert_eq(row_num(row, "gap"), 20754 - VENDEE_POP);
		}
	cr_assert(saw_dep);
	cJSON_Delete(r);

	r = rpc(l, "{\"id\":5,\"op\":\"rank\",\"indicator\":\"population\","
		   "\"territory\":\"com:85146\",\"period\":\"2022\",\"within\":"
		   "\"dep:85\"}");
	cr_assert(is_ok(r));
	row = cJSON_GetArrayItem(result_rows(r), 0);
	cr_assert_eq(row_num(row, "count"), 255);
	cr_assert_eq(row_num(row, "position"), 4);
	cJSON_Delete(r);

	static const char *const more[] = {
		"{\"op\":\"profile\",\"territory\":\"dep:85\",\"period\":\"2022\"}",
		"{\"op\":\"disparities\",\"indicator\":\"population\","
		"\"territory\":\"dep:85\",\"period\":\"2022\"}",
		"{\"op\":\"history\",\"indicator\":\"population\","
		"\"territory\":\"com:85146\",\"period\":\"2022\"}",
		"{\"op\":\"indicators\"}",
		"{\"op\":\"territories\",\"level\":\"dep\"}",
		"{\"op\":\"stats\"}",
	};
	for (size_t i = 0; i < sizeof(more) / sizeof(*more); i++) {
		r = rpc(l, more[i]);
		cr_assert(is_ok(r), "%s -> %s", more[i],
			  cJSON_PrintUnformatted(r));
		cr_assert(cJSON_GetArraySize(result_rows(r)) > 0, "%s",
			  more[i]);
		cJSON_Delete(r);
	}
	r = rpc(l, "{\"op\":\"stats\"}");
	const cJSON *srv = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(r, "result"), "server");
	cr_assert_not_null(srv);
	cr_assert(row_num(srv, "requests") >= 10);
	cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(srv,
							    "loop_busy_pct"));
	cJSON_Delete(r);
	close(l->fd);
	free(l);
}

Test(daemon, pipelined_answers_in_order)
{
	lines *l = calloc(1, sizeof(*l));
	l->fd = tcp_connect(D.tcp_port);
	enum { N = 2000 };
	size_t cap = N * 200, len = 0;
	char *burst = malloc(cap);
	for (int i = 0; i < N; i++) {
		/* Mix inline and worker-thread ops: order must hold. */
		if (i % 7 == 3)
			len += (size_t)snprintf(
				burst + len, cap - len,
				"{\"id\":%d,\"op\":\"aggregate\",\"indicator\":"
				"\"population\",\"period\":\"2022\",\"territory\":"
				"\"dep:85\"}\n",
				i);
		else
			len += (size_t)snprintf(
				burst + len, cap - len,
				"{\"id\":%d,\"op\":\"series\",\"indicator\":"
				"\"population\",\"territory\":\"com:85146\"}\n",
				i);
	}
	send_all(l->fd, burst, len);
	free(burst);
	for (int i = 0; i < N; i++) {
		cJSON *r = next_json(l);
		cr_assert(is_ok(r));
		cr_assert_eq(cJSON_GetObjectItemCaseSensitive(r, "id")->valueint,
			     i);
		cJSON_Delete(r);
	}
	close(l->fd);
	free(l);
}

/* Bad input: each gets a precise error and the connection stays usable. */
Test(daemon, bad_inputs_answered_connection_survives)
{
	lines *l = calloc(1, sizeof(*l));
	l->fd = tcp_connect(D.tcp_port);
	static const struct {
		const char *req, *code, *msg;
	} cases[] = {
		{ "{\"id\":1,\"op\":\"series\"", "bad_request", "not valid JSON" },
		{ "\xff\xfe{}", "bad_request", "not valid UTF-8" },
		{ "[1,2]", "bad_request", "JSON object" },
		{ "{\"id\":2}", "bad_request", "no \"op\"" },
		{ "{\"id\":3,\"op\":\"frobnicate\"}", "unknown_op", "frobnicate" },
		{ "{\"id\":4,\"op\":\"series\",\"indicator\":7,\"territory\":"
		  "\"com:85146\"}",
		  "bad_argument", "'indicator' must be a string" },
		{ "{\"id\":5,\"op\":\"slice\",\"indicator\":\"population\","
		  "\"level\":\"com\",\"period\":\"2022\",\"limit\":1e300}",
		  "bad_argument", "at most 2^53" },
		{ "{\"id\":6,\"op\":\"slice\",\"indicator\":\"population\","
		  "\"level\":\"com\",\"period\":\"2022\",\"limit\":2.5}",
		  "bad_argument", "integer" },
		{ "{\"id\":7,\"op\":\"series\",\"indicator\":\"population\","
		  "\"territory\":\"com:85146\",\"colour\":\"red\"}",
		  "bad_argument", "unknown argument 'colour'" },
		{ "{\"id\":8,\"op\":\"series\",\"indicator\":\"nope\","
		  "\"territory\":\"com:85146\"}",
		  "unknown_indicator", "nope" },
		{ "{\"id\":9,\"op\":\"series\",\"indicator\":\"population\","
		  "\"territory\":\"com:99999\"}",
		  "unknown_territory", "com:99999" },
		{ "{\"id\":10,\"op\":\"slice\",\"indicator\":\"population\","
		  "\"level\":\"galaxy\",\"period\":\"2022\"}",
		  "unknown_level", "galaxy" },
		{ "{\"id\":11,\"op\":\"aggregate\",\"indicator\":\"population\","
		  "\"period\":\"2022-13\",\"territory\":\"dep:85\"}",
		  "bad_argument", "not a period" },
		{ "{\"id\":12,\"op\":\"backup\",\"path\":\"b\"}", "forbidden",
		  "token" },
		{ "{\"id\":13,\"op\":\"backup\",\"path\":\"../../etc\","
		  "\"token\":\"test-token-0123456789abcdef\"}",
		  "bad_argument", "without '..'" },
		{ "{\"id\":14,\"op\":\"run\",\"plugin\":\"x\",\"token\":\"wrong\"}",
		  "forbidden", "token" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		cJSON *r = rpc(l, cases[i].req);
		cr_assert(!is_ok(r), "%s", cases[i].req);
		cr_assert_str_eq(err_code(r), cases[i].code, "%s -> %s",
				 cases[i].req, cJSON_PrintUnformatted(r));
		const char *m = cJSON_GetObjectItemCaseSensitive(
					cJSON_GetObjectItemCaseSensitive(r,
									 "error"),
					"message")
					->valuestring;
		cr_assert(strstr(m, cases[i].msg), "%s: message '%s' lacks '%s'",
			  cases[i].req, m, cases[i].msg);
		cJSON_Delete(r);
	}
	/* Deep nesting. */
	char deep[4096];
	size_t n = 0;
	n += (size_t)snprintf(deep, sizeof(deep), "{\"op\":\"ping\",\"x\":");
	for (int i = 0; i < 1000; i++)
		deep[n++] = '[';
	for (int i = 0; i < 1000; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	deep[n] = '\0';
	cJSON *r = rpc(l, deep);
	cr_assert_str_eq(err_code(r), "bad_request");
	cJSON_Delete(r);
	/* A 10 MB line: refused without being kept, then the next request
	 * works. */
	size_t big = 10u << 20;
	char *huge = malloc(big + 1);
	memset(huge, 'a', big);
	huge[0] = '"';
	huge[big] = '\n';
	send_all(l->fd, huge, big + 1);
	free(huge);
	r = next_json(l);
	cr_assert_str_eq(err_code(r), "too_large");
	cJSON_Delete(r);
	r = rpc(l, "{\"id\":99,\"op\":\"ping\"}");
	cr_assert(is_ok(r), "connection unusable after a 10 MB line");
	cr_assert_eq(cJSON_GetObjectItemCaseSensitive(r, "id")->valueint, 99);
	cJSON_Delete(r);
	close(l->fd);
	free(l);
}

Test(daemon, admin_rights_token_and_unix_peer)
{
	lines *l = calloc(1, sizeof(*l));
	/* The unix socket of the daemon's own user is trusted. */
	l->fd = unix_connect(D.sock);
	cJSON *r = rpc(l, "{\"id\":1,\"op\":\"backup\",\"path\":\"bk/one\"}");
	cr_assert_str_eq(err_code(r), "storage",
			 "bk/ does not exist yet: %s", cJSON_PrintUnformatted(r));
	cJSON_Delete(r);
	r = rpc(l, "{\"id\":1,\"op\":\"backup\",\"path\":\"one\"}");
	cr_assert(is_ok(r), "%s", cJSON_PrintUnformatted(r));
	cJSON_Delete(r);
	r = rpc(l, "{\"id\":2,\"op\":\"backup\",\"path\":\"one\"}");
	cr_assert_str_eq(err_code(r), "conflict");
	cJSON_Delete(r);
	close(l->fd);
	/* Over TCP, only with the token. */
	l->fd = tcp_connect(D.tcp_port);
	l->len = 0;
	r = rpc(l, "{\"id\":3,\"op\":\"backup\",\"path\":\"two\","
		   "\"token\":\"test-token-0123456789abcdef\"}");
	cr_assert(is_ok(r), "%s", cJSON_PrintUnformatted(r));
	cJSON_Delete(r);
	close(l->fd);
	free(l);
	/* The backup is a store that opens and holds the same data. */
	char bk[700];
	snprintf(bk, sizeof(bk), "%s/two", D.data);
	vg_store *s;
	vg_error err = { 0 };
	cr_assert_eq(vg_store_open(&s, bk, NULL, &err), 0, "%s", err.msg);
	vg_store_stat st;
	cr_assert_eq(vg_store_stat_get(s, &st, &err), 0);
	cr_assert_eq(st.points, 462);
	cr_assert_eq(st.territories, 502);
	vg_store_close(s);
}

static char *vigie_cmd(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static char *vigie_cmd(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	size_t cap = 1 << 16, len = 0;
	char *out = malloc(cap);
	size_t r;
	while ((r = fread(out + len, 1, cap - len - 1, p)) > 0) {
		len += r;
		if (len + 1 >= cap)
			out = realloc(out, cap *= 2);
	}
	out[len] = '\0';
	cr_assert_eq(pclose(p), 0, "%s", cmd);
	return out;
}

/* The CLI gives the same answer offline and through the daemon. */
Test(daemon, cli_remote_equals_offline)
{
	const char *q = "--format csv aggregate population --period 2022 "
			"--level epci --in dep:85";
	char *off = vigie_cmd("%s --data %s %s", bin_path("vigie"), D.data, q);
	char *uni = vigie_cmd("%s --socket %s %s", bin_path("vigie"), D.sock, q);
	char *tcp = NULL;
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "127.0.0.1:%d", D.tcp_port);
	tcp = vigie_cmd("%s --connect %s %s", bin_path("vigie"), cmd, q);
	cr_assert(strlen(off) > 100);
	cr_assert_str_eq(off, uni);
	cr_assert_str_eq(off, tcp);
	free(off);
	free(uni);
	free(tcp);
}

/* A subscriber hears about a commit made by another process. */
Test(daemon, subscription_receives_the_change)
{
	lines *l = calloc(1, sizeof(*l));
	l->fd = tcp_connect(D.tcp_port);
	cJSON *r = rpc(l, "{\"id\":1,\"op\":\"subscribe\",\"indicators\":"
			  "[\"population\"]}");
	cr_assert(is_ok(r), "%s", cJSON_PrintUnformatted(r));
	cJSON_Delete(r);
	char pts[700];
	snprintf(pts, sizeof(pts), "%s/rev.csv", D.dir);
	FILE *f = fopen(pts, "w");
	fprintf(f, "indicator;territory;period;value\n"
		   "population;com:85146;2022;20755\n");
	fclose(f);
	free(vigie_cmd("%s --data %s import points %s 2>&1",
		       bin_path("vigie"), D.data, pts));
	r = next_json(l);
	cr_assert_str_eq(row_str(r, "event"), "data");
	const cJSON *inds = cJSON_GetObjectItemCaseSensitive(r, "indicators");
	cr_assert_str_eq(cJSON_GetArrayItem(inds, 0)->valuestring, "population");
	cr_assert_eq(row_num(r, "points_changed"), 1);
	cJSON_Delete(r);
	/* And the new value is what a query now reads. */
	r = rpc(l, "{\"id\":2,\"op\":\"series\",\"indicator\":\"population\","
		   "\"territory\":\"com:85146\"}");
	cr_assert_eq(row_num(cJSON_GetArrayItem(result_rows(r), 0), "value"),
		     20755);
	cJSON_Delete(r);
	close(l->fd);
	free(l);
}

/* Readers never see half of a commit: while another process revises
 * every Vendée commune (+1 each), the département total read by
 * concurrent clients is always the old or the new one. */
typedef struct reader_arg {
	int port;
	int n, bad, seen_new;
} reader_arg;

static void *reader(void *ud)
{
	reader_arg *a = ud;
	lines *l = calloc(1, sizeof(*l));
	l->fd = tcp_connect(a->port);
	for (int i = 0; i < a->n; i++) {
		const char *req =
			"{\"op\":\"aggregate\",\"indicator\":\"population\","
			"\"period\":\"2022\",\"territory\":\"dep:85\"}\n";
		send_all(l->fd, req, strlen(req));
		char *s = next_line(l);
		cJSON *r = s ? cJSON_Parse(s) : NULL;
		free(s);
		double v = row_num(cJSON_GetArrayItem(result_rows(r), 0),
				   "value");
		if (v == VENDEE_POP + 255)
			a->seen_new++;
		else if (v != VENDEE_POP)
			a->bad++;
		cJSON_Delete(r);
	}
	close(l->fd);
	free(l);
	return NULL;
}

Test(daemon, readers_never_see_a_half_written_commit)
{
	char pts[700];
	snprintf(pts, sizeof(pts), "%s/plus1.csv", D.dir);
	FILE *in = fopen(root_path("tests/fixtures/daemon/points.csv"), "r");
	FILE *out = fopen(pts, "w");
	char line[256], ind[64], terr[64], per[16];
	long v;
	fprintf(out, "indicator;territory;period;value\n");
	while (fgets(line, sizeof(line), in))
		if (sscanf(line, "%63[^;];%63[^;];%15[^;];%ld", ind, terr, per,
			   &v) == 4 &&
		    !strncmp(terr, "com:85", 6))
			fprintf(out, "%s;%s;%s;%ld\n", ind, terr, per, v + 1);
	fclose(in);
	fclose(out);
	pthread_t th[4];
	reader_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (reader_arg){ .port = D.tcp_port, .n = 300 };
		pthread_create(&th[i], NULL, reader, &args[i]);
	}
	usleep(50000);
	free(vigie_cmd("%s --data %s import points %s 2>&1",
		       bin_path("vigie"), D.data, pts));
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(args[i].bad, 0,
			     "reader %d saw %d totals that were neither "
			     "before nor after",
			     i, args[i].bad);
	}
	lines *l = calloc(1, sizeof(*l));
	l->fd = tcp_connect(D.tcp_port);
	cJSON *r = rpc(l, "{\"op\":\"aggregate\",\"indicator\":\"population\","
			  "\"period\":\"2022\",\"territory\":\"dep:85\"}");
	cr_assert_eq(row_num(cJSON_GetArrayItem(result_rows(r), 0), "value"),
		     VENDEE_POP + 255);
	cJSON_Delete(r);
	close(l->fd);
	free(l);
}

Test(daemon, second_instance_refused)
{
	char cmd[2400];
	snprintf(cmd, sizeof(cmd),
		 "%s --foreground --data %s --listen tcp:127.0.0.1:0 2>&1",
		 bin_path("vigied"), D.data);
	FILE *p = popen(cmd, "r");
	char out[1024] = "";
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	cr_assert_neq(WEXITSTATUS(st), 0);
	cr_assert(strstr(out, "already serves"), "%s", out);
}

Test(daemon, sigterm_with_requests_in_flight_exits_cleanly)
{
	/* Clients mid-conversation; SIGTERM; exit 0 (teardown checks),
	 * and the store is intact afterwards. */
	int fds[8];
	for (int i = 0; i < 8; i++) {
		fds[i] = tcp_connect(D.tcp_port);
		const char *req = "{\"op\":\"aggregate\",\"indicator\":"
				  "\"population\",\"period\":\"2022\","
				  "\"level\":\"com\"}\n";
		for (int k = 0; k < 20; k++)
			send_all(fds[i], req, strlen(req));
	}
	cr_assert_eq(daemon_stop(&D), 0);
	for (int i = 0; i < 8; i++)
		close(fds[i]);
	vg_store *s;
	vg_error err = { 0 };
	cr_assert_eq(vg_store_open(&s, D.data, NULL, &err), 0, "%s", err.msg);
	vg_store_stat st;
	vg_store_stat_get(s, &st, &err);
	cr_assert_eq(st.points, 462);
	vg_store_close(s);
}

/* ---- HTTP ------------------------------------------------------------------- */

Test(daemon, http_get_post_keepalive_errors)
{
	char *body, hdrs[4096];
	int st = http_req(D.http_port,
			  "GET /v1/series?indicator=population&territory=com%3A85146 "
			  "HTTP/1.1\r\nHost: x\r\n\r\n",
			  &body, hdrs, sizeof(hdrs));
	cr_assert_eq(st, 200, "%s", body);
	cr_assert(strstr(body, "\"value\":20754"), "%s", body);
	free(body);
	const char *post_body = "{\"indicator\":\"population\",\"period\":"
				"\"2022\",\"territory\":\"dep:85\"}";
	char raw[1024];
	snprintf(raw, sizeof(raw),
		 "POST /v1/aggregate HTTP/1.1\r\nHost: x\r\nContent-Type: "
		 "application/json\r\nContent-Length: %zu\r\n\r\n%s",
		 strlen(post_body), post_body);
	st = http_req(D.http_port, raw, &body, hdrs, sizeof(hdrs));
	cr_assert_eq(st, 200, "%s", body);
	cr_assert(strstr(body, "\"value\":706343"), "%s", body);
	free(body);
	st = http_req(D.http_port, "GET /v1/nope HTTP/1.1\r\nHost: x\r\n\r\n",
		      &body, NULL, 0);
	cr_assert_eq(st, 404);
	cr_assert(strstr(body, "unknown_op"));
	free(body);
	st = http_req(D.http_port,
		      "GET /v1/slice?indicator=population&level=com&period=2022"
		      "&limit=abc HTTP/1.1\r\nHost: x\r\n\r\n",
		      &body, NULL, 0);
	cr_assert_eq(st, 400);
	cr_assert(strstr(body, "'limit' must be an integer"), "%s", body);
	free(body);
	st = http_req(D.http_port,
		      "GET /v1/backup?path=x HTTP/1.1\r\nHost: x\r\n\r\n", &body,
		      NULL, 0);
	cr_assert_eq(st, 403);
	free(body);
	st = http_req(D.http_port,
		      "GET /v1/backup?path=viahttp HTTP/1.1\r\nHost: x\r\n"
		      "Authorization: Bearer test-token-0123456789abcdef\r\n\r\n",
		      &body, NULL, 0);
	cr_assert_eq(st, 200, "%s", body);
	free(body);
	st = http_req(D.http_port, "BREW /v1/ping HTCPCP/1.0\r\n\r\n", &body,
		      NULL, 0);
	cr_assert_eq(st, 400);
	free(body);

	/* Keep-alive: two requests pipelined on one connection. */
	int fd = tcp_connect(D.http_port);
	const char *two = "GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n"
			  "GET /v1/ping?id=2 HTTP/1.1\r\nHost: x\r\n"
			  "Connection: close\r\n\r\n";
	send_all(fd, two, strlen(two));
	char buf[8192];
	size_t len = 0;
	ssize_t r;
	while ((r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)r;
	buf[len] = '\0';
	close(fd);
	int count = 0;
	for (char *p = buf; (p = strstr(p, "HTTP/1.1 200")); p++)
		count++;
	cr_assert_eq(count, 2, "%s", buf);
	cr_assert(strstr(buf, "\"id\":\"2\""), "%s", buf);
}

Test(daemon, http_body_too_large_and_cors)
{
	/* Restart with a CORS origin and a small request limit. */
	daemon_stop(&D);
	static const char *const extra[] = { "--cors-origin",
					     "https://dash.example",
					     "--max-request", "1000", NULL };
	daemon_start_args(&D, extra);
	char *body, hdrs[4096];
	int st = http_req(D.http_port,
			  "OPTIONS /v1/series HTTP/1.1\r\nHost: x\r\nOrigin: "
			  "https://dash.example\r\n\r\n",
			  &body, hdrs, sizeof(hdrs));
	cr_assert_eq(st, 204);
	cr_assert(strstr(hdrs, "Access-Control-Allow-Origin: "
			       "https://dash.example"),
		  "%s", hdrs);
	free(body);
	st = http_req(D.http_port,
		      "GET /v1/ping HTTP/1.1\r\nHost: x\r\nOrigin: "
		      "https://evil.example\r\n\r\n",
		      &body, hdrs, sizeof(hdrs));
	cr_assert_eq(st, 200);
	cr_assert_null(strstr(hdrs, "Access-Control-Allow-Origin"), "%s", hdrs);
	free(body);
	char raw[4096];
	char pad[2001];
	memset(pad, ' ', 2000);
	pad[2000] = '\0';
	snprintf(raw, sizeof(raw),
		 "POST /v1/ping HTTP/1.1\r\nHost: x\r\nContent-Length: "
		 "2002\r\n\r\n{}%s",
		 pad);
	st = http_req(D.http_port, raw, &body, NULL, 0);
	cr_assert_eq(st, 413, "%s", body);
	free(body);
}

Test(daemon, sse_events_stream)
{
	int fd = tcp_connect(D.http_port);
	const char *req = "GET /v1/events?indicators=population HTTP/1.1\r\n"
			  "Host: x\r\n\r\n";
	send_all(fd, req, strlen(req));
	char buf[8192] = "";
	size_t len = 0;
	while (!strstr(buf, "event: subscribed")) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
		cr_assert(r > 0);
		len += (size_t)r;
		buf[len] = '\0';
	}
	cr_assert(strstr(buf, "text/event-stream"), "%s", buf);
	char pts[700];
	snprintf(pts, sizeof(pts), "%s/rev.csv", D.dir);
	FILE *f = fopen(pts, "w");
	fprintf(f, "indicator;territory;period;value\n"
		   "population;com:44109;2022;330000\n");
	fclose(f);
	free(vigie_cmd("%s --data %s import points %s 2>&1",
		       bin_path("vigie"), D.data, pts));
	while (!strstr(buf, "event: data")) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
		cr_assert(r > 0, "no data event: %s", buf);
		len += (size_t)r;
		buf[len] = '\0';
	}
	cr_assert(strstr(buf, "\"indicators\":[\"population\"]"), "%s", buf);
	close(fd);
}

Test(daemon, connection_limit)
{
	daemon_stop(&D);
	static const char *const extra[] = { "--max-connections", "2", NULL };
	daemon_start_args(&D, extra);
	int a = tcp_connect(D.tcp_port), b = tcp_connect(D.tcp_port);
	lines *l = calloc(1, sizeof(*l));
	l->fd = a;
	cJSON *r = rpc(l, "{\"op\":\"ping\"}");
	cr_assert(is_ok(r));
	cJSON_Delete(r);
	l->fd = tcp_connect(D.tcp_port);
	l->len = 0;
	r = next_json(l);
	cr_assert_str_eq(err_code(r), "busy");
	cJSON_Delete(r);
	close(l->fd);
	free(l);
	close(a);
	close(b);
}

/* Every read op over each transport (unix, TCP, HTTP POST) answers the
 * same. */
Test(daemon, every_read_op_over_each_transport)
{
	static const char *const ops[][2] = {
		{ "ping", "{}" },
		{ "stats", "{}" },
		{ "indicators", "{}" },
		{ "territories", "{\"search\":\"montaigu\",\"level\":\"com\"}" },
		{ "series", "{\"indicator\":\"population\",\"territory\":"
			    "\"com:85146\"}" },
		{ "history", "{\"indicator\":\"population\",\"territory\":"
			     "\"com:85146\",\"period\":\"2022\"}" },
		{ "slice", "{\"indicator\":\"population\",\"level\":\"epci\","
			   "\"period\":\"2022\"}" },
		{ "aggregate", "{\"indicator\":\"population\",\"period\":"
			       "\"2022\",\"level\":\"epci\",\"within\":"
			       "\"dep:85\"}" },
		{ "compare", "{\"indicator\":\"population\",\"territory\":"
			     "\"com:85146\",\"period\":\"2022\"}" },
		{ "rank", "{\"indicator\":\"population\",\"territory\":"
			  "\"com:85146\",\"period\":\"2022\"}" },
		{ "profile", "{\"territory\":\"com:85146\",\"period\":\"2022\"}" },
		{ "disparities", "{\"indicator\":\"population\",\"territory\":"
				 "\"dep:85\",\"period\":\"2022\"}" },
		{ "plugins", "{}" },
		{ "jobs", "{}" },
	};
	lines *u = calloc(1, sizeof(*u)), *t = calloc(1, sizeof(*t));
	u->fd = unix_connect(D.sock);
	t->fd = tcp_connect(D.tcp_port);
	for (size_t i = 0; i < sizeof(ops) / sizeof(*ops); i++) {
		cJSON *args = cJSON_Parse(ops[i][1]);
		cJSON_AddStringToObject(args, "op", ops[i][0]);
		char *line = cJSON_PrintUnformatted(args);
		cJSON *ru = rpc(u, line), *rt = rpc(t, line);
		cJSON_DeleteItemFromObjectCaseSensitive(args, "op");
		char *body = cJSON_PrintUnformatted(args);
		char raw[2048], *hb;
		snprintf(raw, sizeof(raw),
			 "POST /v1/%s HTTP/1.1\r\nHost: x\r\nContent-Length: "
			 "%zu\r\n\r\n%s",
			 ops[i][0], strlen(body), body);
		int st = http_req(D.http_port, raw, &hb, NULL, 0);
		cJSON *rh = cJSON_Parse(hb);
		cr_assert_eq(st, 200, "%s over HTTP: %s", ops[i][0], hb);
		cr_assert(is_ok(ru) && is_ok(rt) && is_ok(rh), "%s", ops[i][0]);
		/* Same result everywhere (stats move between calls). */
		if (strcmp(ops[i][0], "stats")) {
			char *a = cJSON_PrintUnformatted(
				cJSON_GetObjectItemCaseSensitive(ru, "result"));
			char *b = cJSON_PrintUnformatted(
				cJSON_GetObjectItemCaseSensitive(rt, "result"));
			char *c = cJSON_PrintUnformatted(
				cJSON_GetObjectItemCaseSensitive(rh, "result"));
			cr_assert_str_eq(a, b, "%s", ops[i][0]);
			cr_assert_str_eq(a, c, "%s", ops[i][0]);
			free(a);
			free(b);
			free(c);
		}
		cJSON_Delete(ru);
		cJSON_Delete(rt);
		cJSON_Delete(rh);
		free(hb);
		free(body);
		cJSON_free(line);
		cJSON_Delete(args);
	}
	close(u->fd);
	close(t->fd);
	free(u);
	free(t);
}

/* define_perimeter over TCP: admin only; two membership versions; the
 * aggregate of 2022 uses the one in force (from 2019: 3 communes) or,
 * with membership latest, the one from 2023 (5 communes). Populations
 * 2022 of the fixture: 44001 2052, 44002 4121, 85001 2808, 85003 10218,
 * 85004 2966. */
Test(daemon, define_perimeter_versions_admin)
{
	lines *l = calloc(1, sizeof(*l));
	l->fd = tcp_connect(D.tcp_port);
	const char *v1 = "{\"id\":1,\"op\":\"define_perimeter\",\"code\":"
			 "\"cls:sud-loire\",\"name\":\"CLS Sud-Loire\","
			 "\"members\":[\"com:44001\",\"com:44002\","
			 "\"com:85001\"],\"from\":\"2019\"%s}";
	char req[512];
	snprintf(req, sizeof(req), v1, "");
	cJSON *r = rpc(l, req);
	cr_assert_str_eq(err_code(r), "forbidden", "%s",
			 cJSON_PrintUnformatted(r));
	cJSON_Delete(r);
	snprintf(req, sizeof(req), v1,
		 ",\"token\":\"test-token-0123456789abcdef\"");
	r = rpc(l, req);
	cr_assert(is_ok(r), "%s", cJSON_PrintUnformatted(r));
	cr_assert_gt(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "result"),
					 "vintage")->valuedouble, 0);
	cJSON_Delete(r);
	r = rpc(l, "{\"id\":2,\"op\":\"define_perimeter\",\"code\":"
		   "\"cls:sud-loire\",\"members\":[\"com:44001\",\"com:44002\","
		   "\"com:85001\",\"com:85003\",\"com:85004\"],\"from\":\"2023\","
		   "\"token\":\"test-token-0123456789abcdef\"}");
	cr_assert(is_ok(r), "%s", cJSON_PrintUnformatted(r));
	cJSON_Delete(r);
	/* A bad member: named, nothing written. */
	r = rpc(l, "{\"id\":3,\"op\":\"define_perimeter\",\"code\":"
		   "\"cls:sud-loire\",\"members\":[\"com:44001\",\"com:00000\"],"
		   "\"from\":\"2024\",\"token\":\"test-token-0123456789abcdef\"}");
	cr_assert_str_eq(err_code(r), "not_found");
	char *txt = cJSON_PrintUnformatted(r);
	cr_assert(strstr(txt, "member 'com:00000' is not defined"), "%s", txt);
	free(txt);
	cJSON_Delete(r);

	r = rpc(l, "{\"id\":4,\"op\":\"perimeter\",\"territory\":"
		   "\"cls:sud-loire\"}");
	cr_assert(is_ok(r), "%s", cJSON_PrintUnformatted(r));
	const cJSON *rows = result_rows(r);
	cr_assert_eq(cJSON_GetArraySize(rows), 2);
	const cJSON *row = cJSON_GetArrayItem(rows, 0);
	cr_assert_str_eq(row_str(row, "from"), "2019");
	cr_assert_str_eq(row_str(row, "until"), "2023");
	cr_assert_eq(row_num(row, "members"), 3);
	cr_assert_str_eq(row_str(row, "member_codes"),
			 "com:44001,com:44002,com:85001");
	cr_assert_eq(row_num(cJSON_GetArrayItem(rows, 1), "members"), 5);
	cJSON_Delete(r);

	/* Listings: the latest members, and the versions. */
	r = rpc(l, "{\"id\":41,\"op\":\"territories\",\"level\":\"cls\"}");
	cr_assert(is_ok(r), "%s", cJSON_PrintUnformatted(r));
	row = cJSON_GetArrayItem(result_rows(r), 0);
	cr_assert_eq(row_num(row, "members"), 5);
	const cJSON *vs = cJSON_GetObjectItem(row, "versions");
	cr_assert_eq(cJSON_GetArraySize(vs), 2);
	cr_assert_str_eq(row_str(cJSON_GetArrayItem(vs, 0), "from"), "2019");
	cr_assert_eq(row_num(cJSON_GetArrayItem(vs, 0), "members"), 3);
	cJSON_Delete(r);

	r = rpc(l, "{\"id\":5,\"op\":\"aggregate\",\"indicator\":\"population\","
		   "\"period\":\"2022\",\"territory\":\"cls:sud-loire\"}");
	cr_assert(is_ok(r), "%s", cJSON_PrintUnformatted(r));
	row = cJSON_GetArrayItem(result_rows(r), 0);
	cr_assert_eq(row_num(row, "value"), 2052 + 4121 + 2808);
	cr_assert_eq(row_num(row, "members"), 3);
	cr_assert_str_eq(row_str(row, "membership_from"), "2019");
	cr_assert_eq(row_num(row, "membership_members"), 3);
	cJSON_Delete(r);
	r = rpc(l, "{\"id\":6,\"op\":\"aggregate\",\"indicator\":\"population\","
		   "\"period\":\"2022\",\"territory\":\"cls:sud-loire\","
		   "\"membership\":\"latest\"}");
	cr_assert(is_ok(r), "%s", cJSON_PrintUnformatted(r));
	row = cJSON_GetArrayItem(result_rows(r), 0);
	cr_assert_eq(row_num(row, "value"),
		     2052 + 4121 + 2808 + 10218 + 2966);
	cr_assert_str_eq(row_str(row, "membership_from"), "2023");
	cJSON_Delete(r);
	/* compare and profile say it too. */
	r = rpc(l, "{\"id\":7,\"op\":\"compare\",\"indicator\":\"population\","
		   "\"period\":\"2022\",\"territory\":\"cls:sud-loire\"}");
	cr_assert(is_ok(r), "%s", cJSON_PrintUnformatted(r));
	row = cJSON_GetArrayItem(result_rows(r), 0);
	cr_assert_eq(row_num(row, "value"), 2052 + 4121 + 2808);
	cr_assert_str_eq(row_str(row, "membership_from"), "2019");
	cJSON_Delete(r);
	r = rpc(l, "{\"id\":8,\"op\":\"profile\",\"period\":\"2022\","
		   "\"territory\":\"cls:sud-loire\",\"membership\":\"latest\"}");
	cr_assert(is_ok(r), "%s", cJSON_PrintUnformatted(r));
	bool seen = false;
	cJSON_ArrayForEach(row, result_rows(r))
	{
		if (!strcmp(row_str(row, "indicator"), "population") &&
		    row_num(row, "depth") == 0) {
			cr_assert_eq(row_num(row, "value"),
				     2052 + 4121 + 2808 + 10218 + 2966);
			seen = true;
		}
	}
	cr_assert(seen);
	cJSON_Delete(r);
	r = rpc(l, "{\"id\":9,\"op\":\"aggregate\",\"indicator\":\"population\","
		   "\"period\":\"2022\",\"territory\":\"cls:sud-loire\","
		   "\"membership\":\"as_it_was\"}");
	cr_assert_str_eq(err_code(r), "bad_argument");
	cJSON_Delete(r);
	close(l->fd);
	free(l);
}
