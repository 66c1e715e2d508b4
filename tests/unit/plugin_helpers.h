/* Helpers shared by test_lua.c and test_plugin.c: fixture paths, a small
 * store, loading and running a plugin with captured logs. */
#ifndef VIGIE_TEST_PLUGIN_HELPERS_H
#define VIGIE_TEST_PLUGIN_HELPERS_H

#include <cjson/cJSON.h>
#include <time.h>

#include "helpers.h"
#include "vigie/io.h"
#include "vigie/plugin.h"
#include "vigie/query.h"

static inline const char *root_path(const char *rel)
{
	static char buf[4][1024];
	static int k;
	const char *base = getenv("VIGIE_ROOT");
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", base ? base : ".", rel);
	return buf[k];
}

static inline const char *fixture(const char *name)
{
	static char buf[1024];
	snprintf(buf, sizeof(buf), "%s",
		 root_path("tests/fixtures/plugins/"));
	strncat(buf, name, sizeof(buf) - strlen(buf) - 1);
	return buf;
}

/* Captured log lines, joined with '\n'. */
static char LOGS[65536];
static uint64_t PROGRESS_DONE, PROGRESS_TOTAL;

static inline void cap_log(void *ud, const char *level, const char *msg)
{
	(void)ud;
	size_t n = strlen(LOGS);
	snprintf(LOGS + n, sizeof(LOGS) - n, "[%s] %s\n", level, msg);
}

static inline void cap_progress(void *ud, uint64_t done, uint64_t total)
{
	(void)ud;
	PROGRESS_DONE = done;
	PROGRESS_TOTAL = total;
}

/* A store with fr > reg:52 > dep:44, dep:85 > com:85146 and an indicator
 * `pop` with 2023 and 2024 values for the two départements. */
static inline vg_store *small_store(const char *dir)
{
	vg_store *s;
	OK(vg_store_open(&s, dir, NULL, &E));
	vg_batch *b;
	vg_batch_opts bo = { .origin = "test", .time = 1700000000 };
	OK(vg_batch_new(s, &bo, &b, &E));
	vg_territory t[] = {
		make_terr("fr", "France", NULL, NULL),
		make_terr("reg:52", "Pays de la Loire", "fr", NULL),
		make_terr("dep:44", "Loire-Atlantique", "reg:52", NULL),
		make_terr("dep:85", "Vendée", "reg:52", NULL),
		make_terr("com:85146", "Montaigu-Vendée", "dep:85", NULL),
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		OK(vg_batch_territory(b, &t[i], &E));
	vg_indicator pop = make_ind("pop", "sum");
	OK(vg_batch_indicator(b, &pop, &E));
	OK(vg_batch_point(b, "pop", "dep:44", per("2024"), 1000,
			  VG_STATUS_OK, &E));
	OK(vg_batch_point(b, "pop", "dep:44", per("2023"), 990,
			  VG_STATUS_OK, &E));
	OK(vg_batch_point(b, "pop", "dep:85", per("2024"), 500,
			  VG_STATUS_OK, &E));
	vg_commit_info ci;
	OK(vg_batch_commit(b, &ci, &E));
	return s;
}

/* A store in `dir` holding the real geography of the committed fixture
 * (COG 2024: 36 355 current territories and 1 991 old commune codes), as
 * the bundled plugins' tests start from. */
static inline vg_store *geo_store(const char *dir)
{
	vg_store *s;
	OK(vg_store_open(&s, dir, NULL, &E));
	vg_import_report *rep = calloc(1, sizeof(*rep));
	OK(vg_import_territories(
		s, root_path("tests/fixtures/real/territories_cog2024.csv"),
		NULL, rep, &E));
	cr_assert_eq(rep->commit.territories, 38346);
	free(rep);
	return s;
}

/* A Criterion suite whose every test starts on a fresh geo_store: DIR_
 * and S name the directory and the store. */
#define GEO_SUITE(name, secs)                                              \
	static char *DIR_;                                                 \
	static vg_store *S;                                                \
	static void geo_setup(void)                                        \
	{                                                                  \
		DIR_ = tmp_dir();                                          \
		S = geo_store(DIR_);                                       \
	}                                                                  \
	static void geo_teardown(void)                                     \
	{                                                                  \
		vg_store_close(S);                                         \
		rm_tree(DIR_);                                             \
	}                                                                  \
	TestSuite(name, .init = geo_setup, .fini = geo_teardown,           \
		  .timeout = (secs))

/* The engine's value of `ind` at `terr` for `period` (latest data, the
 * membership in force), in one call. */
static inline vg_agg_value agg_value_of(vg_store *s, const char *ind,
					const char *terr, const char *period)
{
	vg_read *rd;
	uint32_t ii, ti;
	vg_agg_ctx *c;
	vg_agg_value v;
	OK(vg_read_begin(s, &rd, &E));
	OK(vg_read_indicator_id(rd, ind, &ii, &E));
	OK(vg_read_territory_id(rd, terr, &ti, &E));
	OK(vg_agg_ctx_new(rd, ii, per(period), VG_LATEST, &c, &E));
	OK(vg_agg_value_at(c, ti, &v, &E));
	vg_agg_ctx_free(c);
	vg_read_end(rd);
	return v;
}

static inline uint64_t store_points(vg_store *s)
{
	vg_store_stat st;
	OK(vg_store_stat_get(s, &st, &E));
	return st.points;
}

static inline uint64_t store_vintages(vg_store *s)
{
	vg_store_stat st;
	OK(vg_store_stat_get(s, &st, &E));
	return st.vintages;
}

static inline vg_plugin *load_fixture(const char *name,
				      const char *const *roots, size_t nroots)
{
	vg_plugin_env env = { .lib_dir = root_path("plugins/lib"),
			      .roots = roots, .nroots = nroots };
	vg_plugin *p = NULL;
	OK(vg_plugin_load(fixture(name), &env, &p, &E));
	return p;
}

/* Run with `config` (JSON text, may be NULL); returns the code. */
static inline int run_with(vg_plugin *p, vg_store *s, const char *config,
			   vg_run_opts *extra, vg_run_result *res)
{
	vg_run_opts o = { 0 };
	if (extra)
		o = *extra;
	cJSON *cfg = config ? cJSON_Parse(config) : NULL;
	if (config)
		cr_assert_not_null(cfg, "bad JSON in the test: %s", config);
	o.config = cfg;
	o.log = cap_log;
	o.progress = cap_progress;
	LOGS[0] = '\0';
	vg_error_clear(&E);
	int rc = vg_plugin_run(p, s, &o, res, &E);
	cJSON_Delete(cfg);
	return rc;
}

static inline bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

#endif
