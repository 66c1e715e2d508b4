/* The Lua host: limits (deadline, instruction budget, memory cap, cancel)
 * that pcall cannot swallow, the sandbox's refusals, and error locations.
 * Every failing run must leave the store untouched. */
#include <pthread.h>
#include <unistd.h>

#include "plugin_helpers.h"

static char *DIR_;
static vg_store *S;

static void setup(void)
{
	DIR_ = tmp_dir();
	S = small_store(DIR_);
}

static void teardown(void)
{
	vg_store_close(S);
	rm_tree(DIR_);
}

TestSuite(lua, .init = setup, .fini = teardown, .timeout = 60);

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

Test(lua, infinite_loop_stopped_at_deadline)
{
	vg_plugin *p = load_fixture("loop.lua", NULL, 0);
	vg_run_result res;
	double t0 = now();
	int rc = run_with(p, S, NULL, NULL, &res);
	double dt = now() - t0;
	cr_assert_eq(rc, VG_ETIMEOUT, "rc %d: %s", rc, E.msg);
	cr_assert(dt >= 0.3 && dt < 2.0, "stopped after %.3f s", dt);
	cr_assert(ends_with(E.where, "loop.lua"), "where: %s", E.where);
	cr_assert_eq(E.line, 4, "line %ld", E.line);
	cr_assert(strstr(E.msg, "deadline exceeded"), "%s", E.msg);
	cr_assert(strstr(E.msg, "stack traceback"), "%s", E.msg);
	vg_run_result_clear(&res);
	vg_plugin_free(p);
}

Test(lua, pcall_xpcall_coroutine_cannot_swallow_the_deadline)
{
	vg_plugin *p = load_fixture("loop_pcall.lua", NULL, 0);
	uint64_t before = store_points(S), vint = store_vintages(S);
	vg_run_result res;
	double t0 = now();
	int rc = run_with(p, S, NULL, NULL, &res);
	double dt = now() - t0;
	cr_assert_eq(rc, VG_ETIMEOUT, "rc %d: %s", rc, E.msg);
	cr_assert(dt < 2.0, "stopped after %.3f s", dt);
	cr_assert_eq(res.rows_written, 0);
	cr_assert_eq(store_points(S), before);
	cr_assert_eq(store_vintages(S), vint);
	vg_run_result_clear(&res);
	vg_plugin_free(p);
}

Test(lua, instruction_budget)
{
	vg_plugin *p = load_fixture("loop.lua", NULL, 0);
	vg_run_opts o = { .max_instructions = 100000 };
	vg_run_result res;
	double t0 = now();
	int rc = run_with(p, S, NULL, &o, &res);
	cr_assert_eq(rc, VG_ETIMEOUT, "rc %d: %s", rc, E.msg);
	cr_assert(strstr(E.msg, "instruction budget of 100000"), "%s", E.msg);
	cr_assert(now() - t0 < 0.25, "the budget, not the deadline, stopped it");
	cr_assert(res.instructions >= 100000 && res.instructions <= 102000,
		  "%llu instructions", (unsigned long long)res.instructions);
	vg_run_result_clear(&res);
	vg_plugin_free(p);
}

Test(lua, memory_bomb_stopped_at_cap)
{
	vg_plugin *p = load_fixture("membomb.lua", NULL, 0);
	cr_assert_eq(vg_plugin_memory(p), 8u << 20);
	vg_run_result res;
	int rc = run_with(p, S, NULL, NULL, &res);
	cr_assert_eq(rc, VG_ENOMEM, "rc %d: %s", rc, E.msg);
	cr_assert(strstr(E.msg, "memory limit of 8388608 bytes"), "%s", E.msg);
	cr_assert(res.memory_peak <= (8u << 20) + (1u << 20),
		  "peak %zu", res.memory_peak);
	cr_assert(res.memory_peak > (6u << 20), "peak %zu", res.memory_peak);
	vg_run_result_clear(&res);
	vg_plugin_free(p);
}

Test(lua, memory_bomb_in_pcall_still_fails_and_writes_nothing)
{
	vg_plugin *p = load_fixture("membomb_pcall.lua", NULL, 0);
	uint64_t before = store_points(S);
	vg_run_result res;
	int rc = run_with(p, S, NULL, NULL, &res);
	cr_assert_eq(rc, VG_ENOMEM, "rc %d: %s", rc, E.msg);
	cr_assert_eq(res.rows_written, 0, "the put after the bomb never ran");
	cr_assert_eq(store_points(S), before);
	vg_run_result_clear(&res);
	vg_plugin_free(p);
}

static volatile int CANCEL;

static void *cancel_later(void *ud)
{
	(void)ud;
	usleep(50 * 1000);
	CANCEL = 1;
	return NULL;
}

Test(lua, cancel_stops_the_run)
{
	vg_plugin *p = load_fixture("loop_pcall.lua", NULL, 0);
	CANCEL = 0;
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, cancel_later, NULL), 0);
	vg_run_opts o = { .cancel = &CANCEL };
	vg_run_result res;
	double t0 = now();
	int rc = run_with(p, S, NULL, &o, &res);
	pthread_join(th, NULL);
	cr_assert_eq(rc, VG_ECANCELED, "rc %d: %s", rc, E.msg);
	cr_assert(now() - t0 < 0.25, "canceled before the 0.3 s deadline");
	vg_run_result_clear(&res);
	vg_plugin_free(p);
}

Test(lua, error_located_with_traceback)
{
	vg_plugin *p = load_fixture("halfway.lua", NULL, 0);
	vg_run_result res;
	int rc = run_with(p, S, NULL, NULL, &res);
	cr_assert_eq(rc, VG_EPLUGIN, "rc %d: %s", rc, E.msg);
	cr_assert(ends_with(E.where, "tests/fixtures/plugins/halfway.lua"),
		  "%s", E.where);
	cr_assert_eq(E.line, 9, "line %ld", E.line);
	cr_assert(!strncmp(E.msg, "source is truncated at row 3", 28), "%s",
		  E.msg);
	cr_assert(strstr(E.msg, "stack traceback:"), "%s", E.msg);
	cr_assert(strstr(E.msg, "halfway.lua:9: in "), "%s", E.msg);
	char buf[1024];
	vg_error_format(&E, buf, sizeof(buf));
	cr_assert(strstr(buf, "halfway.lua:9: source is truncated"), "%s",
		  buf);
	vg_run_result_clear(&res);
	vg_plugin_free(p);
}

Test(lua, allowed_library_works)
{
	const char *roots[] = { root_path("tests") };
	vg_plugin *p = load_fixture("sandbox_ok.lua", roots, 1);
	vg_run_result res;
	OK(run_with(p, S, NULL, NULL, &res));
	cr_assert_eq(res.rows_written, 1);
	/* print joins its arguments with tabs, exactly */
	char want[64];
	snprintf(want, sizeof(want), "[info] sandbox ok\t");
	const char *at = strstr(LOGS, want);
	cr_assert(at, "%s", LOGS);
	at += strlen(want);
	cr_assert(strtol(at, (char **)&at, 10) > 10);
	cr_assert(!strncmp(at, "\tnil\n", 5), "%s", LOGS);
	vg_run_result_clear(&res);
	vg_plugin_free(p);
}

/* Each attack must make the run fail, with a message that says why. */
static const struct {
	const char *attack;
	int code;
	const char *msg;
} attacks[] = {
	{ "io_open", VG_EPLUGIN, "global 'io'" },
	{ "os_execute", VG_EPLUGIN, "field 'execute'" },
	{ "os_getenv", VG_EPLUGIN, "field 'getenv'" },
	{ "os_remove", VG_EPLUGIN, "field 'remove'" },
	{ "os_exit", VG_EPLUGIN, "field 'exit'" },
	{ "require_os", VG_EPLUGIN, "module 'os' not found" },
	{ "require_io", VG_EPLUGIN, "module 'io' not found" },
	{ "require_path", VG_EPLUGIN, "a module name is letters" },
	{ "package", VG_EPLUGIN, "global 'package'" },
	{ "debug", VG_EPLUGIN, "global 'debug'" },
	{ "dofile", VG_EPLUGIN, "global 'dofile'" },
	{ "loadfile", VG_EPLUGIN, "global 'loadfile'" },
	{ "load_bytecode", VG_EPLUGIN, "binary chunk" },
	{ "load_reader_bytecode", VG_EPLUGIN, "binary chunk" },
	{ "string_dump", VG_EPLUGIN, "field 'dump'" },
	{ "string_dump_method", VG_EPLUGIN, "field 'dump'" },
	{ "load_env", VG_EPLUGIN, "field 'io'" },
	{ "getmetatable_ctx", VG_EPLUGIN, "index a string value" },
	{ "ctx_field", VG_EPLUGIN, "index a vigie.ctx value" },
	{ "ctx_methods_rawset", VG_EPLUGIN, "bad argument #1 to 'rawset'" },
	{ "rawset_globals", VG_EPLUGIN, "rawset refused" },
	{ "rawset_string", VG_EPLUGIN, "rawset refused" },
	{ "rawset_env", VG_EPLUGIN, "rawset refused" },
	{ "global_assign", VG_EPLUGIN, "cannot assign 'leaked'" },
	{ "lib_assign", VG_EPLUGIN, "cannot assign 'format'" },
	{ "setmetatable_globals", VG_EPLUGIN, "protected metatable" },
	{ "string_metatable", VG_EPLUGIN, "index a string value" },
	{ "string_metatable_add", VG_EPLUGIN, "index a string value" },
	{ "pairs_leak", VG_EPLUGIN, "cannot assign 'rep'" },
	{ "collectgarbage_stop", VG_EPLUGIN, "invalid option 'stop'" },
	{ "fetch_abs", VG_ESANDBOX, "outside the directories" },
	{ "fetch_rel", VG_ESANDBOX, "outside the directories" },
	{ "fetch_file_url", VG_ESANDBOX, "outside the directories" },
	{ "fetch_scheme", VG_ESANDBOX, "only http, https" },
	{ "fetch_pcall", VG_ESANDBOX, "outside the directories" },
};

Test(lua, sandbox_escapes_refused)
{
	const char *roots[] = { root_path("tests/fixtures") };
	vg_plugin *p = load_fixture("escape.lua", roots, 1);
	uint64_t before = store_points(S);
	for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
		char cfg[128];
		snprintf(cfg, sizeof(cfg), "{\"attack\": \"%s\"}",
			 attacks[i].attack);
		vg_run_result res;
		int rc = run_with(p, S, cfg, NULL, &res);
		cr_expect_eq(rc, attacks[i].code, "%s: rc %d: %s",
			     attacks[i].attack, rc, E.msg);
		cr_expect(strstr(E.msg, attacks[i].msg), "%s: %s",
			  attacks[i].attack, E.msg);
		vg_run_result_clear(&res);
	}
	/* The attack table is real: an unknown name fails differently. */
	vg_run_result res;
	cr_assert_eq(run_with(p, S, "{\"attack\": \"none\"}", NULL, &res),
		     VG_EPLUGIN);
	cr_assert(strstr(E.msg, "no attack named none"), "%s", E.msg);
	vg_run_result_clear(&res);
	cr_assert_eq(store_points(S), before);
	vg_plugin_free(p);
}

Test(lua, string_metatable_intact_across_runs)
{
	/* A fresh state per run: what one run did cannot leak to the next,
	 * and methods on strings keep working after the escape attempts. */
	const char *roots[] = { root_path("tests") };
	vg_plugin *esc = load_fixture("escape.lua", roots, 1);
	vg_plugin *ok = load_fixture("sandbox_ok.lua", roots, 1);
	vg_run_result res;
	cr_assert_neq(run_with(esc, S, "{\"attack\": \"pairs_leak\"}", NULL,
			       &res), 0);
	vg_run_result_clear(&res);
	OK(run_with(ok, S, NULL, NULL, &res));
	vg_run_result_clear(&res);
	vg_plugin_free(esc);
	vg_plugin_free(ok);
}

Test(lua, finalizers_refused)
{
	/* Lua runs __gc with hooks off: a finalizer's loop could not be
	 * stopped, so setmetatable refuses __gc. */
	vg_plugin *p = load_fixture("gc_loop.lua", NULL, 0);
	const char *how[] = { "{\"how\": \"direct\"}",
			      "{\"how\": \"placeholder\"}" };
	for (int i = 0; i < 2; i++) {
		vg_run_result res;
		double t0 = now();
		int rc = run_with(p, S, how[i], NULL, &res);
		cr_assert_eq(rc, VG_EPLUGIN, "%s: rc %d: %s", how[i], rc,
			     E.msg);
		cr_assert(strstr(E.msg, "__gc metamethods are not allowed"),
			  "%s", E.msg);
		cr_assert(now() - t0 < 5.0);
		vg_run_result_clear(&res);
	}
	vg_plugin_free(p);
}

typedef struct par {
	vg_plugin *p;
	vg_store *s;
	int rc;
	uint64_t rows;
} par;

static void *run_thread(void *ud)
{
	par *a = ud;
	vg_run_result res;
	vg_error e;
	a->rc = vg_plugin_run(a->p, a->s, NULL, &res, &e);
	a->rows = res.rows_written;
	vg_run_result_clear(&res);
	return NULL;
}

Test(lua, concurrent_runs_on_threads)
{
	const char *roots[] = { root_path("tests") };
	vg_plugin *p = load_fixture("sandbox_ok.lua", roots, 1);
	par a[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (par){ p, S, -1, 0 };
		cr_assert_eq(pthread_create(&th[i], NULL, run_thread, &a[i]),
			     0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(a[i].rc, 0, "thread %d: %d", i, a[i].rc);
		cr_assert_eq(a[i].rows, 1);
	}
	/* Four commits of the same point: one new, then unchanged. */
	vg_read *rd;
	OK(vg_read_begin(S, &rd, &E));
	uint32_t ii, ti;
	OK(vg_read_indicator_id(rd, "x", &ii, &E));
	OK(vg_read_territory_id(rd, "fr", &ti, &E));
	vg_point pt;
	OK(vg_read_point(rd, ii, ti, per("2024"), VG_LATEST, &pt));
	cr_assert_eq(pt.value, 1.0);
	vg_read_end(rd);
	vg_plugin_free(p);
}
