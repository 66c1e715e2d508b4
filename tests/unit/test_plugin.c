/* Plugins: manifest validation, the ctx API against a store, transactional
 * runs and vintages, the worked example on the real INSEE file (checked
 * against an independent conversion), xlsx/zip/csv readers on real files. */
#include <math.h>

#include "plugin_helpers.h"
#include "vigie/csv.h"
#include "vigie/io.h"
#include "vigie/query.h"

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

TestSuite(plugin, .init = setup, .fini = teardown, .timeout = 120);

static const char *write_tmp(const char *name, const char *text)
{
	static char path[4][1024];
	static int k;
	k = (k + 1) % 4;
	snprintf(path[k], sizeof(path[k]), "%s/%s", DIR_, name);
	FILE *f = fopen(path[k], "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return path[k];
}

static double point_value(const char *ind, const char *terr, const char *p,
			  vg_status *st)
{
	vg_read *rd;
	OK(vg_read_begin(S, &rd, &E));
	uint32_t ii, ti;
	OK(vg_read_indicator_id(rd, ind, &ii, &E));
	OK(vg_read_territory_id(rd, terr, &ti, &E));
	vg_point pt;
	int rc = vg_read_point(rd, ii, ti, per(p), VG_LATEST, &pt);
	vg_read_end(rd);
	cr_assert_eq(rc, 0, "no point %s %s %s", ind, terr, p);
	if (st)
		*st = pt.status;
	return pt.value;
}

/* ---- manifest ---------------------------------------------------------- */

static const struct {
	const char *src;
	int code;
	const char *msg;
} bad_manifests[] = {
	{ "return { name = 'x', run = function() end, colour = 1 }",
	  VG_EPLUGIN, "manifest key 'colour': unknown key" },
	{ "return { run = function() end }", VG_EPLUGIN,
	  "manifest key 'name': is missing" },
	{ "return { name = 'x' }", VG_EPLUGIN, "manifest key 'run': is missing" },
	{ "return { name = 'Bad-Name', run = function() end }", VG_EPLUGIN,
	  "manifest key 'name': must be a string of [a-z]" },
	{ "return { name = 'x', run = 1 }", VG_EPLUGIN,
	  "manifest key 'run': must be a function" },
	{ "return { name = 'x', run = function() end, schedule = '0 4 * *' }",
	  VG_EPLUGIN, "manifest key 'schedule': must be a cron expression" },
	{ "return { name = 'x', run = function() end, every = '6 hours' }",
	  VG_EPLUGIN, "manifest key 'every'" },
	{ "return { name = 'x', run = function() end, every = '6h', "
	  "schedule = '0 4 * * 1' }",
	  VG_EPLUGIN, "either 'schedule' or 'every'" },
	{ "return { name = 'x', run = function() end, after = 'cog' }",
	  VG_EPLUGIN, "manifest key 'after': must be a list" },
	{ "return { name = 'x', run = function() end, after = { 'x' } }",
	  VG_EPLUGIN, "cannot run after itself" },
	{ "return { name = 'x', run = function() end, "
	  "indicators = { pop = { label = 'P', aggregate = 'average' } } }",
	  VG_EPLUGIN, "manifest key 'indicators.pop'" },
	{ "return { name = 'x', run = function() end, "
	  "indicators = { pop = { label = 'P', colour = 'red' } } }",
	  VG_EPLUGIN, "manifest key 'indicators.pop.colour': unknown key" },
	{ "return { name = 'x', run = function() end, "
	  "indicators = { pop = { label = 12 } } }",
	  VG_EPLUGIN, "'indicators.pop.label': must be a string, not number" },
	{ "return { name = 'x', run = function() end, "
	  "indicators = { pop = { periodicity = 'weekly' } } }",
	  VG_EPLUGIN, "periodicity" },
	{ "return { name = 'x', run = function() end, "
	  "indicators = { ['Pop'] = { label = 'P' } } }",
	  VG_EPLUGIN, "'Pop' is not an indicator code" },
	{ "return { name = 'x', run = function() end, config = { t = {} } }",
	  VG_EPLUGIN, "manifest key 'config.t': a default must be" },
	{ "return { name = 'x', run = function() end, timeout = -1 }",
	  VG_EPLUGIN, "manifest key 'timeout'" },
	{ "return { name = 'x', run = function() end, memory = '12 apples' }",
	  VG_EPLUGIN, "manifest key 'memory'" },
	{ "return { name = 'x', run = function() end, memory = 1000 }",
	  VG_EPLUGIN, "from 1M to 64G" },
	{ "return 42", VG_EPLUGIN, "must return its manifest table, it "
				   "returned number" },
	{ "return {\n name = 'x',\n run = function() end end", VG_EPARSE,
	  "'}' expected" },
	{ "local t = {}\nreturn t.a.b", VG_EPLUGIN, "attempt to index a nil" },
	{ "while true do end", VG_ETIMEOUT, "deadline exceeded" },
	{ "local s = 'x' while true do s = s .. s end", VG_ENOMEM,
	  "memory limit" },
	{ "return io.open('/etc/passwd')", VG_EPLUGIN, "global 'io'" },
};

Test(plugin, manifest_errors_are_precise)
{
	for (size_t i = 0; i < sizeof(bad_manifests) / sizeof(bad_manifests[0]);
	     i++) {
		const char *path = write_tmp("bad.lua", bad_manifests[i].src);
		vg_plugin *p = NULL;
		vg_error_clear(&E);
		int rc = vg_plugin_load(path, NULL, &p, &E);
		cr_expect_eq(rc, bad_manifests[i].code, "#%zu: rc %d: %s", i,
			     rc, E.msg);
		cr_expect(strstr(E.msg, bad_manifests[i].msg), "#%zu: %s", i,
			  E.msg);
		cr_expect(ends_with(E.where, "bad.lua"), "#%zu: where %s", i,
			  E.where);
		cr_expect_null(p);
		vg_plugin_free(p);
	}
	/* Syntax errors are located at their line. */
	vg_plugin *p = NULL;
	const char *path = write_tmp("syntax.lua", "return {\n name = 'x'\n"
				     " run = function() end }\n");
	cr_assert_eq(vg_plugin_load(path, NULL, &p, &E), VG_EPARSE);
	cr_assert_eq(E.line, 3, "line %ld: %s", E.line, E.msg);
	cr_assert_eq(vg_plugin_load("/nonexistent/p.lua", NULL, &p, &E),
		     VG_ENOTFOUND);
}

Test(plugin, manifest_summary)
{
	vg_plugin *p = load_fixture("api.lua", NULL, 0);
	cr_assert_str_eq(vg_plugin_name(p), "api");
	cr_assert(ends_with(vg_plugin_path(p), "api.lua"));
	cr_assert_null(vg_plugin_schedule(p));
	cr_assert_eq(vg_plugin_every(p), 6 * 3600);
	cr_assert_eq(vg_plugin_after_count(p), 1);
	cr_assert_str_eq(vg_plugin_after(p, 0), "insee_population");
	cr_assert_null(vg_plugin_after(p, 1));
	cr_assert_eq(vg_plugin_timeout(p), VG_PLUGIN_TIMEOUT_DEFAULT);
	cJSON *j = vg_plugin_to_json(p);
	cr_assert_not_null(j);
	const cJSON *inds = cJSON_GetObjectItem(j, "indicators");
	cr_assert_eq(cJSON_GetArraySize(inds), 2);
	/* sorted by code; the rule is canonical */
	const cJSON *d = cJSON_GetArrayItem(inds, 0);
	cr_assert_str_eq(cJSON_GetObjectItem(d, "code")->valuestring,
			 "density");
	cr_assert_str_eq(cJSON_GetObjectItem(d, "aggregate")->valuestring,
			 "ratio(gp, pop, 100000)");
	const cJSON *cfg = cJSON_GetObjectItem(j, "config");
	cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(cfg, "factor")));
	cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(cfg, "flag")));
	cJSON_Delete(j);
	vg_plugin_free(p);

	p = load_fixture("loop.lua", NULL, 0);
	cr_assert_eq(vg_plugin_timeout(p), 0.3);
	vg_plugin_free(p);
	p = load_fixture("membomb.lua", NULL, 0);
	cr_assert_eq(vg_plugin_memory(p), 8u << 20);
	vg_plugin_free(p);
}

/* ---- the ctx API ------------------------------------------------------- */

static char CFG[2048];

static vg_plugin *api_setup(void)
{
	write_tmp("gp.csv", "territory;period;gp\r\ndep:44;2024;120\r\n"
		  "dep:85;2024;40\r\ncom:85146;2024;12\r\n");
	write_tmp("density.json",
		  "{\"points\": [{\"territory\": \"dep:44\", \"period\": "
		  "\"2024\", \"value\": 12.5}, {\"territory\": \"dep:85\", "
		  "\"period\": \"2024\", \"value\": null}]}");
	snprintf(CFG, sizeof(CFG),
		 "{\"csv\": \"gp.csv\", \"json\": \"file://%s/density.json\", "
		 "\"factor\": \"2\"}", DIR_);
	const char *roots[] = { DIR_ };
	return load_fixture("api.lua", roots, 1);
}

Test(plugin, api_run_commits_everything)
{
	vg_plugin *p = api_setup();
	vg_run_result res;
	OK(run_with(p, S, CFG, NULL, &res));
	cr_assert_eq(res.rows_written, 6);
	cr_assert_eq(res.rows_rejected, 1);
	cr_assert_eq(res.commit.points_new, 6);
	cr_assert_neq(res.commit.vintage, 0);
	cr_assert_eq(res.commit.territories, 1);
	cr_assert_eq(point_value("gp", "dep:44", "2024", NULL), 240);
	cr_assert_eq(point_value("gp", "com:85146", "2024", NULL), 24);
	cr_assert_eq(point_value("gp", "cls:test", "2024", NULL), 1234.5);
	cr_assert_eq(point_value("density", "dep:44", "2024", NULL), 12.5);
	vg_status st;
	cr_assert(isnan(point_value("density", "dep:85", "2024", &st)));
	cr_assert_eq(st, VG_STATUS_SUPPRESSED);
	cr_assert_eq(PROGRESS_DONE, 1);
	cr_assert_eq(PROGRESS_TOTAL, 2);
	cr_assert(strstr(LOGS, "[warn] api done"), "%s", LOGS);
	cr_assert(strstr(LOGS, "api.lua:"), "%s", LOGS);
	cr_assert(strstr(LOGS, "row rejected: a row the plugin refused"),
		  "%s", LOGS);

	/* The vintage says where the values came from. */
	vg_read *rd;
	OK(vg_read_begin(S, &rd, &E));
	vg_vintage v;
	OK(vg_read_vintage(rd, res.commit.vintage, &v, &E));
	cr_assert_str_eq(v.origin, "plugin api: 6 rows written, 1 rejected");
	cr_assert_str_eq(v.checksum, res.checksum);
	cr_assert_eq(strncmp(v.checksum, "sha256:", 7), 0);
	cr_assert_eq(strlen(v.checksum), 71);
	uint32_t cls;
	OK(vg_read_territory_id(rd, "cls:test", &cls, &E));
	uint32_t d44;
	OK(vg_read_territory_id(rd, "dep:44", &d44, &E));
	cr_assert(vg_read_territory_within(rd, d44, cls));
	vg_read_end(rd);

	/* The same sources again: nothing new, no vintage. */
	vg_run_result_clear(&res);
	uint64_t vint = store_vintages(S);
	OK(run_with(p, S, CFG, NULL, &res));
	cr_assert_eq(res.commit.vintage, 0);
	cr_assert_eq(res.commit.points_unchanged, 6);
	cr_assert_eq(store_vintages(S), vint);
	vg_run_result_clear(&res);
	vg_plugin_free(p);
}

Test(plugin, dry_run_writes_nothing)
{
	vg_plugin *p = api_setup();
	uint64_t pts = store_points(S), vint = store_vintages(S);
	vg_run_opts o = { .dry_run = true };
	vg_run_result res;
	OK(run_with(p, S, CFG, &o, &res));
	cr_assert_eq(store_points(S), pts);
	cr_assert_eq(store_vintages(S), vint);
	cr_assert_not_null(res.dry);
	const cJSON *gp = cJSON_GetObjectItem(
		cJSON_GetObjectItem(res.dry, "indicators"), "gp");
	cr_assert_eq(cJSON_GetObjectItem(gp, "points")->valuedouble, 4);
	const cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItem(gp, "sample"),
					     0);
	cr_assert_str_eq(cJSON_GetObjectItem(s0, "territory")->valuestring,
			 "dep:44");
	cr_assert_eq(cJSON_GetObjectItem(s0, "value")->valuedouble, 240);
	cr_assert_eq(cJSON_GetObjectItem(res.dry, "territories")->valuedouble,
		     1);
	vg_run_result_clear(&res);
	cr_assert_null(res.dry);
	vg_plugin_free(p);
}

Test(plugin, config_overrides_checked)
{
	vg_plugin *p = api_setup();
	vg_run_result res;
	cr_assert_eq(run_with(p, S, "{\"nope\": 1}", NULL, &res), VG_EINVAL);
	cr_assert(strstr(E.msg, "config key 'nope' is not declared"), "%s",
		  E.msg);
	cr_assert_eq(run_with(p, S, "{\"factor\": \"two\"}", NULL, &res),
		     VG_EINVAL);
	cr_assert(strstr(E.msg, "'factor' must be a number"), "%s", E.msg);
	cr_assert_eq(run_with(p, S, "{\"flag\": 3}", NULL, &res), VG_EINVAL);
	vg_plugin_free(p);
}

Test(plugin, bad_puts_fail_the_run_with_location)
{
	static const struct {
		const char *call, *msg;
	} cases[] = {
		{ "ctx:put('nope', 'fr', '2024', 1)",
		  "indicator 'nope' is not declared" },
		{ "ctx:put('x', 'com:99999', '2024', 1)",
		  "unknown territory 'com:99999'" },
		{ "ctx:put('x', 'fr', '2024-13', 1)", "'2024-13' is not a period" },
		{ "ctx:put('x', 'fr', '2024-03', 1)", "a series mixes no" },
		{ "ctx:put('x', 'fr', '2024', tonumber('12,5'))",
		  "the value is nil, not a number" },
		{ "ctx:put('x', 'fr', '2024', 'abc')", "value 'abc' is not a number" },
		{ "ctx:put('x', 'fr', '2024', 0/0)", "not a finite number" },
		{ "ctx:put('x', 'fr', '2024', 1, 'bogus')", "unknown status 'bogus'" },
		{ "ctx:define_territory{ code = 'cls:a' }", "'name' must be a string" },
		{ "ctx:define_territory{ code = 'cls:a', name = 'A', colour = 1 }",
		  "unknown key 'colour'" },
		{ "ctx:define_territory{ code = 'cls:a', name = 'A', members = "
		  "{ 'com:85146' }, from = '2024-13' }",
		  "from '2024-13' is not a period" },
		{ "ctx:csv('missing.csv')", "no such file under the roots" },
		{ "ctx:json(ctx:fetch('bad.json'))", "invalid JSON near byte" },
		{ "ctx:log('loud', 'x')", "invalid option 'loud'" },
		{ "ctx.put(nil, 'x', 'fr', '2024', 1)", "vigie.ctx expected" },
		{ "ctx:put('x', 'fr\\0x', '2024', 1)", "contains a NUL byte" },
		{ "ctx:csv('dup.csv', { sep = ';' })",
		  "columns 2 and 3 are both named 'Ensemble'" },
		{ "ctx:xlsx('" "@SHARED@" "health/TCRD_068.xlsx', 'DEP', { skip = 4 })",
		  "are both named 'Ensemble des m" },
	};
	write_tmp("bad.json", "{\"a\": [1, 2,, 3]}");
	write_tmp("dup.csv", "code;Ensemble;Ensemble\n01;1;2\n");
	const char *roots[] = { DIR_, shared_path("") };
	vg_plugin_env env = { .roots = roots, .nroots = 2 };
	char shared[1024];
	snprintf(shared, sizeof(shared), "%s", shared_path(""));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char call[2048], src[4096];
		const char *at = strstr(cases[i].call, "@SHARED@");
		if (at)
			snprintf(call, sizeof(call), "%.*s%s%s",
				 (int)(at - cases[i].call), cases[i].call,
				 shared, at + 8);
		else
			snprintf(call, sizeof(call), "%s", cases[i].call);
		snprintf(src, sizeof(src),
			 "return { name = 't', indicators = { x = { label = "
			 "'x' } },\n run = function(ctx)\n %s\n end }\n",
			 call);
		const char *path = write_tmp("t.lua", src);
		vg_plugin *p;
		OK(vg_plugin_load(path, &env, &p, &E));
		vg_run_result res;
		int rc = run_with(p, S, NULL, NULL, &res);
		cr_expect_eq(rc, VG_EPLUGIN, "%s: rc %d", cases[i].call, rc);
		cr_expect(strstr(E.msg, cases[i].msg), "%s: %s", cases[i].call,
			  E.msg);
		cr_expect_eq(E.line, 3, "%s: line %ld", cases[i].call, E.line);
		cr_expect(ends_with(E.where, "t.lua"), "%s", E.where);
		vg_run_result_clear(&res);
		vg_plugin_free(p);
	}
}

/* ---- ctx:define_territory{successors = ...}: the passage table ------- */

/* Run a one-call plugin `body` on S; returns the code (message in E). */
static int run_body(const char *body)
{
	char src[4096];
	snprintf(src, sizeof(src),
		 "return { name = 't',\n run = function(ctx)\n %s\n end }\n",
		 body);
	vg_plugin *p;
	OK(vg_plugin_load(write_tmp("t.lua", src), NULL, &p, &E));
	vg_run_result res;
	int rc = run_with(p, S, NULL, NULL, &res);
	vg_run_result_clear(&res);
	vg_plugin_free(p);
	return rc;
}

Test(plugin, define_territory_successors_refused_precisely)
{
	static const struct {
		const char *call, *msg;
	} cases[] = {
		/* weights: range, sum, every share of a split */
		{ "successors = { { code = 'com:85146', weight = 1.5 } }",
		  "territory 'com:85027': weight 1.5 of successor 'com:85146' "
		  "is not in (0, 1]" },
		{ "successors = { { code = 'com:85146', weight = 0 } }",
		  "weight 0 of successor 'com:85146' is not in (0, 1]" },
		{ "successors = { { code = 'com:85146', weight = 0/0 } }",
		  "of successor 'com:85146' is not in (0, 1]" },
		{ "successors = { { code = 'com:85146', weight = 0.6 }, "
		  "{ code = 'dep:85', weight = 0.3 } }",
		  "territory 'com:85027': the weights of its successors add up "
		  "to 0.9, not 1" },
		{ "successors = { { code = 'com:85146', weight = 0.6 }, "
		  "{ code = 'dep:85' } }",
		  "{code = 'com:85027'}: successors[2].weight must be a number "
		  "(a split gives every share)" },
		{ "successors = { { code = 'com:85146', weight = '1' } }",
		  "successors[1].weight must be a number" },
		/* shape */
		{ "successors = 'com:85146'",
		  "{code = 'com:85027'}: 'successors' must be a list" },
		{ "successors = {}", "'successors' is empty" },
		{ "successors = { 'com:85146' }",
		  "successors[1] is not a table" },
		{ "successors = { { weight = 1 } }",
		  "successors[1].code is not a territory code" },
		{ "successors = { { code = 'com:85146', share = 1 } }",
		  "successors[1]: unknown key 'share' (code, weight)" },
		{ "successors = { { code = 'com:85027' } }",
		  "territory 'com:85027' is its own successor" },
		{ "successors = { { code = 'bad code' } }", "bad code" },
		/* an old code lies within nothing */
		{ "parents = { 'dep:85' }, successors = { { code = 'com:85146' } }",
		  "territory 'com:85027' has successors (an old code) and also "
		  "parents or members" },
		{ "members = { 'com:85146' }, successors = { { code = "
		  "'com:85146' } }",
		  "has successors (an old code) and also parents or members" },
		/* checked at commit: neither in the store nor in this run */
		{ "successors = { { code = 'com:99999' } }",
		  "old territory 'com:85027': successor 'com:99999' is not "
		  "defined" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char body[1024];
		snprintf(body, sizeof(body),
			 "ctx:define_territory{ code = 'com:85027', name = "
			 "'Saint-Hilaire-de-Loulay', %s }", cases[i].call);
		cr_expect_neq(run_body(body), 0, "%s", cases[i].call);
		cr_expect(strstr(E.msg, cases[i].msg), "%s:\n  %s", cases[i].call,
			  E.msg);
	}
	/* nothing was written by any of them */
	vg_read *rd;
	uint32_t id;
	OK(vg_read_begin(S, &rd, &E));
	cr_assert_neq(vg_read_territory_id(rd, "com:85027", &id, NULL), 0);
	vg_read_end(rd);
}

Test(plugin, define_territory_successors_read_back_and_aggregated)
{
	/* A successor defined later in the same run is accepted (checked at
	 * commit); a split's shares are kept; pop 2015 published under the
	 * old codes is counted in their commune nouvelle. */
	OK(run_body(
		"ctx:define_territory{ code = 'com:85027', name = "
		"'Saint-Hilaire-de-Loulay', successors = { { code = "
		"'com:85146', weight = 1 } } }\n"
		"ctx:define_territory{ code = 'com:85999', name = 'Partagée', "
		"successors = { { code = 'com:85146', weight = 0.25 }, "
		"{ code = 'com:85300', weight = 0.75 } } }\n"
		"ctx:define_territory{ code = 'com:85300', name = 'Autre', "
		"parents = { 'dep:85' } }"));
	vg_read *rd;
	uint32_t old, split, m, other;
	OK(vg_read_begin(S, &rd, &E));
	OK(vg_read_territory_id(rd, "com:85027", &old, &E));
	OK(vg_read_territory_id(rd, "com:85999", &split, &E));
	OK(vg_read_territory_id(rd, "com:85146", &m, &E));
	OK(vg_read_territory_id(rd, "com:85300", &other, &E));
	const vg_passage *ps;
	cr_assert_eq(vg_read_territory_successors(rd, old, &ps), 1);
	cr_assert_eq(ps[0].terr, m);
	cr_assert_eq(ps[0].weight, 1);
	cr_assert_eq(vg_read_territory_successors(rd, split, &ps), 2);
	double w85146 = ps[0].terr == m ? ps[0].weight : ps[1].weight;
	double w85300 = ps[0].terr == other ? ps[0].weight : ps[1].weight;
	cr_assert_eq(w85146, 0.25);
	cr_assert_eq(w85300, 0.75);
	cr_assert_eq(vg_read_territory_predecessors(rd, m, &ps), 2);
	vg_territory t;
	OK(vg_read_territory(rd, old, &t, &E));
	cr_assert_eq(t.nparents, 0);
	cr_assert_eq(t.nsuccessors, 1);
	cr_assert_str_eq(t.successors[0].code, "com:85146");
	cr_assert_str_eq(t.name, "Saint-Hilaire-de-Loulay");
	vg_territory_clear(&t);
	vg_read_end(rd);

	/* ctx:territory, from a later run: the old code with its successors,
	 * a current commune without, an unknown code nil with the reason,
	 * and what this run defines is not committed yet. */
	cr_assert_eq(
		run_body(
			"local t = ctx:territory('com:85999')\n"
			"assert(t.code == 'com:85999' and t.level == 'com' and "
			"t.name == 'Partagée', 'old code')\n"
			"assert(#t.successors == 2, 'two successors')\n"
			"local w = {}\n"
			"for _, s in ipairs(t.successors) do w[s.code] = s.weight "
			"end\n"
			"assert(w['com:85146'] == 0.25 and w['com:85300'] == 0.75, "
			"'weights')\n"
			"local c = ctx:territory('com:85146')\n"
			"assert(c and c.successors == nil and c.level == 'com', "
			"'current commune')\n"
			"local none, why = ctx:territory('com:00000')\n"
			"assert(none == nil and why:find('com:00000', 1, true), "
			"'unknown: ' .. tostring(why))\n"
			"ctx:define_territory{ code = 'com:85998', name = 'N', "
			"parents = { 'dep:85' } }\n"
			"assert(ctx:territory('com:85998') == nil, 'not committed')"),
		0, "%s\n%s", E.msg, LOGS);

	/* pop 2015 in the old geography: 85027 whole, a quarter of 85999 */
	vg_batch *b;
	vg_batch_opts bo = { .origin = "test" }; /* now: after the run */
	OK(vg_batch_new(S, &bo, &b, &E));
	OK(vg_batch_point(b, "pop", "com:85027", per("2015"), 4000,
			  VG_STATUS_OK, &E));
	OK(vg_batch_point(b, "pop", "com:85999", per("2015"), 800,
			  VG_STATUS_OK, &E));
	vg_commit_info ci;
	OK(vg_batch_commit(b, &ci, &E));
	OK(vg_read_begin(S, &rd, &E));
	uint32_t ii;
	OK(vg_read_indicator_id(rd, "pop", &ii, &E));
	vg_agg_ctx *c;
	vg_agg_value v;
	OK(vg_agg_ctx_new(rd, ii, per("2015"), VG_LATEST, &c, &E));
	OK(vg_agg_value_at(c, m, &v, &E));
	cr_assert_eq(v.source, VG_SOURCE_COMPUTED);
	cr_assert_float_eq(v.value, 4000 + 0.25 * 800, 1e-9);
	cr_assert_eq(v.cov.via_passage, 1);
	OK(vg_agg_value_at(c, other, &v, &E));
	cr_assert_float_eq(v.value, 0.75 * 800, 1e-9);
	vg_agg_ctx_free(c);
	vg_read_end(rd);
}

/* ctx:define_territory{from=...}: two membership versions in one run. */
Test(plugin, define_territory_versions)
{
	const char *src =
		"return { name = 't', indicators = { x = { label = 'x' } },\n"
		" run = function(ctx)\n"
		"  ctx:define_territory{ code = 'cls:a', name = 'A', members = "
		"{ 'com:85146' }, from = '2019' }\n"
		"  ctx:define_territory{ code = 'cls:a', name = 'A', members = "
		"{ 'com:85146', 'dep:44' }, from = '2022' }\n"
		" end }\n";
	const char *path = write_tmp("v.lua", src);
	vg_plugin_env env = { 0 };
	vg_plugin *p;
	OK(vg_plugin_load(path, &env, &p, &E));
	vg_run_result res;
	OK(run_with(p, S, NULL, NULL, &res));
	vg_run_result_clear(&res);
	vg_plugin_free(p);
	vg_read *rd;
	uint32_t id;
	vg_territory t;
	OK(vg_read_begin(S, &rd, &E));
	OK(vg_read_territory_id(rd, "cls:a", &id, &E));
	OK(vg_read_territory(rd, id, &t, &E));
	vg_read_end(rd);
	cr_assert_eq(t.nversions, 2);
	cr_assert_eq(t.versions[0].from, per("2019"));
	cr_assert_eq(t.versions[0].nmembers, 1);
	cr_assert_eq(t.versions[1].from, per("2022"));
	cr_assert_eq(t.nmembers, 2);
	vg_territory_clear(&t);
}

Test(plugin, error_halfway_writes_nothing)
{
	vg_plugin *p = load_fixture("halfway.lua", NULL, 0);
	uint64_t pts = store_points(S), vint = store_vintages(S);
	vg_run_result res;
	cr_assert_eq(run_with(p, S, NULL, NULL, &res), VG_EPLUGIN);
	cr_assert_eq(res.rows_written, 2, "two puts were buffered");
	cr_assert_eq(store_points(S), pts);
	cr_assert_eq(store_vintages(S), vint);
	/* Not even the indicator definition was written. */
	vg_read *rd;
	uint32_t id;
	OK(vg_read_begin(S, &rd, &E));
	cr_assert_eq(vg_read_indicator_id(rd, "x", &id, &E), VG_ENOTFOUND);
	vg_read_end(rd);
	vg_run_result_clear(&res);

	OK(run_with(p, S, "{\"fail_at\": 99}", NULL, &res));
	cr_assert_eq(res.commit.points_new, 5);
	cr_assert_eq(store_points(S), pts + 5);
	cr_assert_eq(point_value("x", "com:85146", "2024", NULL), 50);
	cr_assert_str_eq(res.checksum, "", "no source fetched");
	vg_run_result_clear(&res);
	vg_plugin_free(p);
}

Test(plugin, fetch_limits)
{
	write_tmp("big.csv", "a;b\n1;2\n3;4\n");
	const char *roots[] = { DIR_ };
	vg_plugin_env env = { .roots = roots, .nroots = 1, .fetch_max = 8 };
	const char *path = write_tmp(
		"f.lua", "return { name = 'f', run = function(ctx)\n"
			 " ctx:fetch('big.csv') end }\n");
	vg_plugin *p;
	OK(vg_plugin_load(path, &env, &p, &E));
	vg_run_result res;
	cr_assert_eq(run_with(p, S, NULL, NULL, &res), VG_EPLUGIN);
	cr_assert(strstr(E.msg, "more than the limit of 8"), "%s", E.msg);
	vg_plugin_free(p);
	/* Without roots no local file may be read at all. */
	vg_plugin_env none = { 0 };
	OK(vg_plugin_load(path, &none, &p, &E));
	cr_assert_eq(run_with(p, S, NULL, NULL, &res), VG_ESANDBOX);
	cr_assert(strstr(E.msg, "no local root is configured"), "%s", E.msg);
	vg_plugin_free(p);
}

/* ---- readers on real files -------------------------------------------- */

Test(plugin, csv_options)
{
	const char *roots[] = { root_path("tests/fixtures/csv") };
	vg_plugin *p = load_fixture("csv_options.lua", roots, 1);
	char cfg[1200];
	snprintf(cfg, sizeof(cfg), "{\"dir\": \"%s\"}",
		 root_path("tests/fixtures/csv"));
	vg_run_result res;
	OK(run_with(p, S, cfg, NULL, &res));
	cr_assert(strstr(LOGS, "csv options ok"), "%s", LOGS);
	vg_run_result_clear(&res);
	vg_plugin_free(p);
}

static long compared_cells(void)
{
	const char *m = strstr(LOGS, "compared ");
	return m ? strtol(m + 9, NULL, 10) : -1;
}

Test(plugin, xlsx_matches_extracted_csv)
{
	static const struct {
		const char *xlsx, *sheet, *csv, *header;
		long min_cells;
	} cases[] = {
		{ "health/TCRD_068.xlsx", "DEP", "health/TCRD_068~DEP.csv",
		  NULL, 800 },
		{ "health/TCRD_068.xlsx", "REG", "health/TCRD_068~REG.csv",
		  NULL, 150 },
		{ "health/APL_mg_2021.xlsx", "#1", "health/APL_mg_2021~Sheet1.csv",
		  "Code commune", 34997 * 7 },
	};
	const char *roots[] = { shared_path("") };
	vg_plugin *p = load_fixture("xlsx_check.lua", roots, 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char cfg[1024];
		if (cases[i].header)
			snprintf(cfg, sizeof(cfg),
				 "{\"xlsx\": \"%s\", \"sheet\": \"%s\", "
				 "\"csv\": \"%s\", \"header\": \"%s\"}",
				 cases[i].xlsx, cases[i].sheet, cases[i].csv,
				 cases[i].header);
		else
			snprintf(cfg, sizeof(cfg),
				 "{\"xlsx\": \"%s\", \"sheet\": \"%s\", "
				 "\"csv\": \"%s\"}",
				 cases[i].xlsx, cases[i].sheet, cases[i].csv);
		vg_run_result res;
		int rc = run_with(p, S, cfg, NULL, &res);
		cr_expect_eq(rc, 0, "%s %s: %s", cases[i].xlsx, cases[i].sheet,
			     E.msg);
		cr_expect(compared_cells() >= cases[i].min_cells,
			  "%s: %s", cases[i].xlsx, LOGS);
		vg_run_result_clear(&res);
	}
	vg_plugin_free(p);
}

Test(plugin, xlsx_unknown_sheet_names_the_sheets)
{
	const char *roots[] = { shared_path("") };
	vg_plugin *p = load_fixture("xlsx_check.lua", roots, 1);
	vg_run_result res;
	cr_assert_eq(run_with(p, S,
			      "{\"xlsx\": \"health/TCRD_068.xlsx\", "
			      "\"sheet\": \"COM\", \"csv\": \"x\"}",
			      NULL, &res),
		     VG_EPLUGIN);
	cr_assert(strstr(E.msg, "no sheet 'COM' (sheets: 'DEP', 'REG')"),
		  "%s", E.msg);
	vg_plugin_free(p);
}

Test(plugin, zip_members)
{
	const char *roots[] = { shared_path("") };
	vg_plugin *p = load_fixture("zip_list.lua", roots, 1);
	vg_run_result res;
	OK(run_with(p, S, "{\"file\": \"health/TCRD_068.xlsx\"}", NULL, &res));
	cr_assert(strstr(LOGS, "zip ok"), "%s", LOGS);
	vg_run_result_clear(&res);
	vg_plugin_free(p);
}

/* ---- the worked example on real data ----------------------------------- */

Test(plugin, insee_population_matches_independent_conversion)
{
	vg_import_report *rep = calloc(1, sizeof(*rep));
	OK(vg_import_territories(
		S, root_path("tests/fixtures/real/territories_cog2024.csv"),
		NULL, rep, &E));
	free(rep);
	const char *roots[] = { shared_path("") };
	vg_plugin_env env = { .lib_dir = root_path("plugins/lib"),
			      .roots = roots, .nroots = 1 };
	vg_plugin *p;
	OK(vg_plugin_load(root_path("plugins/insee_population.lua"), &env, &p,
			  &E));
	uint64_t pts = store_points(S);

	vg_run_opts dry = { .dry_run = true };
	vg_run_result res;
	OK(run_with(p, S, NULL, &dry, &res));
	cr_assert_eq(store_points(S), pts);
	cr_assert_eq(res.rows_written, 69920);
	vg_run_result_clear(&res);

	OK(run_with(p, S, NULL, NULL, &res));
	cr_assert_eq(res.rows_written, 69920);
	cr_assert_eq(res.rows_rejected, 4, "the 4 COM rows");
	cr_assert_eq(res.commit.points_new, 69920);
	/* SOURCES.md: the file's sha256 */
	cr_assert_str_eq(res.checksum, "sha256:39eae0743dbf385cb0dbceafbf22dae2"
				       "40a2081d18b7d9b8b84631596b5044d1");
	cr_assert_eq(PROGRESS_DONE, 34964);

	/* Every value equals scripts/popref_to_points.py's conversion. */
	vg_csv *c;
	vg_csv_opts co = { .sep = ';', .header = true };
	OK(vg_csv_open_file(&c, root_path("tests/fixtures/real/"
					  "population_2022.csv"),
			    &co, &E));
	vg_read *rd;
	OK(vg_read_begin(S, &rd, &E));
	vg_csv_row *row;
	long n = 0;
	while (vg_csv_next(c, &row, &E) == 1) {
		uint32_t ii, ti;
		OK(vg_read_indicator_id(rd, row->fields[0].ptr, &ii, &E));
		OK(vg_read_territory_id(rd, row->fields[1].ptr, &ti, &E));
		vg_point pt;
		cr_assert_eq(vg_read_point(rd, ii, ti, per(row->fields[2].ptr),
					   VG_LATEST, &pt),
			     0, "%s %s", row->fields[0].ptr, row->fields[1].ptr);
		cr_assert_eq(pt.value, strtod(row->fields[3].ptr, NULL),
			     "%s %s: %g", row->fields[0].ptr,
			     row->fields[1].ptr, pt.value);
		cr_assert_eq(pt.vintage, res.commit.vintage);
		n++;
	}
	vg_read_end(rd);
	vg_csv_close(c);
	cr_assert_eq(n, 69920);
	cr_assert_eq(store_points(S), pts + 69920);

	/* Re-running on the same source writes no revision, no vintage. */
	uint32_t first = res.commit.vintage;
	vg_run_result_clear(&res);
	uint64_t vint = store_vintages(S);
	OK(run_with(p, S, NULL, NULL, &res));
	cr_assert_eq(res.commit.vintage, 0);
	cr_assert_eq(res.commit.points_unchanged, 69920);
	cr_assert_eq(store_vintages(S), vint);
	vg_status st;
	(void)point_value("population", "com:85146", "2022", &st);
	OK(vg_read_begin(S, &rd, &E));
	vg_vintage v;
	OK(vg_read_vintage(rd, first, &v, &E));
	cr_assert_str_eq(v.origin, "plugin insee_population: 69920 rows "
				   "written, 4 rejected");
	vg_read_end(rd);
	vg_run_result_clear(&res);
	vg_plugin_free(p);
}
