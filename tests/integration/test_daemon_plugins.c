/* vigied running plugins: scheduled at start (missed runs), a derived
 * plugin triggered by its input's commit, manual runs with config and
 * events, a failing plugin that writes nothing, SIGTERM during a run. */
#include <stdarg.h>

#include "daemon.h"

static daemon_t D;

static void setup(void)
{
	memset(&D, 0, sizeof(D));
	D.dir = tmp_dir();
	snprintf(D.data, sizeof(D.data), "%s/data", D.dir);
	mkdir(D.data, 0755);
	load_fixture(D.data);
	static char plugins[1024];
	snprintf(plugins, sizeof(plugins), "%s",
		 root_path("tests/fixtures/daemon-plugins"));
	static const char *extra[] = { "--plugins", plugins, NULL };
	daemon_start_args(&D, extra);
}

static void teardown(void)
{
	daemon_teardown(&D);
}

TestSuite(daemon_plugins, .init = setup, .fini = teardown, .timeout = 120);

/* The newest record of a plugin in `jobs`, once it has ended. */
static cJSON *wait_job(lines *l, const char *plugin, const char *status,
		       int min_id)
{
	for (int i = 0; i < 400; i++) {
		cJSON *r = rpc(l, "{\"op\":\"jobs\",\"limit\":50}");
		const cJSON *row;
		cJSON_ArrayForEach(row, result_rows(r))
		{
			if (strcmp(row_str(row, "name"), plugin) ||
			    row_num(row, "id") < min_id)
				continue;
			if (!strcmp(row_str(row, "status"), status)) {
				cJSON *copy = cJSON_Duplicate(row, true);
				cJSON_Delete(r);
				return copy;
			}
		}
		cJSON_Delete(r);
		usleep(50000);
	}
	cr_assert_fail("no %s job of %s", status, plugin);
	return NULL;
}

static double value_of(lines *l, const char *ind, const char *terr)
{
	char req[256];
	snprintf(req, sizeof(req),
		 "{\"op\":\"series\",\"indicator\":\"%s\",\"territory\":\"%s\"}",
		 ind, terr);
	cJSON *r = rpc(l, req);
	cr_assert(is_ok(r), "%s -> %s", req, cJSON_PrintUnformatted(r));
	const cJSON *row = cJSON_GetArrayItem(result_rows(r), 0);
	cr_assert_not_null(row, "%s: no value", req);
	double v = row_num(row, "value");
	cJSON_Delete(r);
	return v;
}

Test(daemon_plugins, missed_runs_derived_plugin_and_failure)
{
	lines *l = calloc(1, sizeof(*l));
	l->fd = unix_connect(D.sock);
	cJSON *j = wait_job(l, "counts", "ok", 0);
	cr_assert_eq(row_num(j, "rows_written"), 4);
	cr_assert_str_eq(row_str(j, "trigger"), "missed");
	cJSON_Delete(j);
	j = wait_job(l, "doubled", "ok", 0);
	cr_assert_str_eq(row_str(j, "trigger"), "after");
	cJSON_Delete(j);
	/* Montaigu-Vendée: 20 754 inhabitants -> 207, doubled 414. */
	cr_assert_eq(value_of(l, "test_count", "com:85146"), 207);
	cr_assert_eq(value_of(l, "test_doubled", "com:85146"), 414);
	/* The failing plugin: located error, nothing written (its
	 * indicator does not even exist). */
	j = wait_job(l, "broken", "failed", 0);
	cr_assert(strstr(row_str(j, "error"), "source ended early"), "%s",
		  row_str(j, "error"));
	cr_assert(strstr(row_str(j, "error"), "broken.lua:"), "%s",
		  row_str(j, "error"));
	cJSON_Delete(j);
	cJSON *r = rpc(l, "{\"op\":\"series\",\"indicator\":\"test_broken\","
			  "\"territory\":\"com:85146\"}");
	cr_assert_str_eq(err_code(r), "unknown_indicator");
	cJSON_Delete(r);
	/* plugins lists all four with their state. */
	r = rpc(l, "{\"op\":\"plugins\"}");
	cr_assert_eq(cJSON_GetArraySize(result_rows(r)), 4);
	cJSON_Delete(r);
	close(l->fd);
	free(l);
}

Test(daemon_plugins, manual_run_with_config_and_events)
{
	lines *l = calloc(1, sizeof(*l));
	l->fd = unix_connect(D.sock);
	cJSON *j = wait_job(l, "doubled", "ok", 0);
	int after = (int)row_num(j, "id");
	cJSON_Delete(j);
	cJSON *r = rpc(l, "{\"id\":1,\"op\":\"subscribe\"}");
	cr_assert(is_ok(r));
	cJSON_Delete(r);
	r = rpc(l, "{\"id\":2,\"op\":\"run\",\"plugin\":\"counts\",\"config\":"
		   "{\"bump\":1}}");
	/* Events may arrive before the answer: skip them. */
	while (cJSON_GetObjectItemCaseSensitive(r, "event")) {
		cJSON_Delete(r);
		r = next_json(l);
	}
	cr_assert(is_ok(r), "%s", cJSON_PrintUnformatted(r));
	int job = (int)row_num(cJSON_GetObjectItemCaseSensitive(r, "result"),
			       "job");
	cJSON_Delete(r);
	bool progress = false, data = false, ok = false;
	for (int i = 0; i < 200 && !(ok && data); i++) {
		cJSON *ev = next_json(l);
		const char *kind = row_str(ev, "event");
		if (!strcmp(kind, "progress") && row_num(ev, "job") == job)
			progress = true;
		if (!strcmp(kind, "job") && row_num(ev, "job") == job &&
		    !strcmp(row_str(ev, "status"), "ok"))
			ok = true;
		if (!strcmp(kind, "data")) {
			const cJSON *inds = cJSON_GetObjectItemCaseSensitive(
				ev, "indicators");
			const cJSON *it;
			cJSON_ArrayForEach(it, inds)
			{
				if (!strcmp(it->valuestring, "test_count"))
					data = true;
			}
		}
		cJSON_Delete(ev);
	}
	cr_assert(progress, "no progress event");
	cr_assert(ok, "no job ok event");
	cr_assert(data, "no data event for test_count");
	close(l->fd);
	l->fd = unix_connect(D.sock);
	l->len = 0;
	/* The derived plugin ran again on the new input. */
	cJSON_Delete(wait_job(l, "doubled", "ok", after + 1));
	cr_assert_eq(value_of(l, "test_count", "com:85146"), 208);
	cr_assert_eq(value_of(l, "test_doubled", "com:85146"), 416);
	/* Admin only: over TCP without the token, refused. */
	lines *t = calloc(1, sizeof(*t));
	t->fd = tcp_connect(D.tcp_port);
	r = rpc(t, "{\"op\":\"run\",\"plugin\":\"counts\"}");
	cr_assert_str_eq(err_code(r), "forbidden");
	cJSON_Delete(r);
	r = rpc(t, "{\"op\":\"run\",\"plugin\":\"nope\",\"token\":"
		   "\"test-token-0123456789abcdef\"}");
	cr_assert_str_eq(err_code(r), "unknown_plugin");
	cJSON_Delete(r);
	close(t->fd);
	free(t);
	close(l->fd);
	free(l);
}

Test(daemon_plugins, sigterm_during_a_run_loses_nothing)
{
	lines *l = calloc(1, sizeof(*l));
	l->fd = unix_connect(D.sock);
	cJSON_Delete(wait_job(l, "slow", "ok", 0));
	cJSON *r = rpc(l, "{\"op\":\"run\",\"plugin\":\"slow\",\"config\":"
			  "{\"seconds\":2}}");
	cr_assert(is_ok(r));
	int job = (int)row_num(cJSON_GetObjectItemCaseSensitive(r, "result"),
			       "job");
	cJSON_Delete(r);
	cJSON_Delete(wait_job(l, "slow", "running", job));
	close(l->fd);
	free(l);
	/* Mid-run: the daemon waits for it (grace), then exits 0. */
	cr_assert_eq(daemon_stop(&D), 0);
	char hist[700];
	snprintf(hist, sizeof(hist), "%s/runs.jsonl", D.data);
	FILE *f = fopen(hist, "r");
	cr_assert_not_null(f);
	char line[2048], last_slow[2048] = "";
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "\"name\":\"slow\""))
			snprintf(last_slow, sizeof(last_slow), "%s", line);
	fclose(f);
	cr_assert(strstr(last_slow, "\"status\":\"ok\""), "%s", last_slow);
	vg_store *s;
	vg_error err = { 0 };
	cr_assert_eq(vg_store_open(&s, D.data, NULL, &err), 0, "%s", err.msg);
	vg_read *rd;
	cr_assert_eq(vg_read_begin(s, &rd, &err), 0);
	uint32_t ind, terr;
	cr_assert_eq(vg_read_indicator_id(rd, "test_slow", &ind, &err), 0);
	cr_assert_eq(vg_read_territory_id(rd, "com:85047", &terr, &err), 0);
	vg_point p;
	cr_assert_eq(vg_read_point(rd, ind, terr, per("2022"), VG_LATEST, &p), 0);
	cr_assert_eq(p.value, 4);
	vg_read_end(rd);
	vg_store_close(s);
}
