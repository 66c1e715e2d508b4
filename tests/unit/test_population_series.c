/* plugins/population_series.lua on the versions of
 * @etalab/decoupage-administratif installed in node_modules/ (npm ci),
 * on the COG 2024 geography fixture: every value is checked against an
 * independent reading of the same communes.json in C (cJSON) and, for the
 * millésime INSEE's file also gives (2022), against INSEE's file. */
#include <math.h>

#include "plugin_helpers.h"
#include "vigie/csv.h"
#include "vigie/io.h"
#include "vigie/query.h"

GEO_SUITE(popseries, 300);

/* The plugin with node_modules/ and plugins/ as fetch roots (as make run
 * and the daemon), `config` JSON or NULL. */
static int run_series(const char *config, vg_run_result *res)
{
	const char *roots[] = {root_path("node_modules"), root_path("plugins")};
	vg_plugin_env env = {
	    .lib_dir = root_path("plugins/lib"), .roots = roots, .nroots = 2};
	vg_plugin *p;
	OK(vg_plugin_load(root_path("plugins/population_series.lua"), &env, &p,
			  &E));
	int rc = run_with(p, S, config, NULL, res);
	vg_plugin_free(p);
	return rc;
}

static void run_ok(void)
{
	vg_run_result res;
	int rc = run_series(NULL, &res);
	cr_assert_eq(rc, 0, "%d %s\n%s", rc, E.msg, LOGS);
	vg_run_result_clear(&res);
}

/* ---- an independent reading of a version's communes.json ------------- */

typedef struct dep_sum {
	char dep[4];
	double sum;
} dep_sum;

typedef struct version {
	const char *year, *dir;
} version;

static const version VERSIONS[] = {
    {"2020", "decoupage-pop2020"},
    {"2021", "decoupage-pop2021"},
    {"2022", "@etalab/decoupage-administratif"},
    {"2023", "decoupage-pop2023"},
};

static cJSON *load_json(const char *rel)
{
	FILE *f = fopen(root_path(rel), "rb");
	cr_assert_not_null(f, "%s: run npm ci (scripts/install-deps.sh)", rel);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	cJSON *j = cJSON_Parse(buf);
	free(buf);
	cr_assert_not_null(j, "%s: not JSON", rel);
	return j;
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : "";
}

/* Sums by département of the communes the plugin writes: communes and
 * arrondissements municipaux with a population, without Paris, Lyon and
 * Marseille as communes (their arrondissements are there), the
 * collectivités d'outre-mer and Mayotte. Returns the number of
 * départements; *ncom the number of values. */
static size_t version_sums(const char *dir, dep_sum *out, size_t max,
			   size_t *ncom)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "node_modules/%s/data/communes.json", dir);
	cJSON *all = load_json(rel);
	size_t n = 0;
	*ncom = 0;
	const cJSON *c;
	cJSON_ArrayForEach(c, all)
	{
		const char *type = str(c, "type"), *code = str(c, "code");
		const char *dep = str(c, "departement");
		const cJSON *pop =
		    cJSON_GetObjectItemCaseSensitive(c, "population");
		if (strcmp(type, "commune-actuelle") &&
		    strcmp(type, "arrondissement-municipal"))
			continue;
		if (!strcmp(code, "75056") || !strcmp(code, "69123") ||
		    !strcmp(code, "13055") || !strcmp(str(c, "zone"), "com") ||
		    !strcmp(dep, "976") || !cJSON_IsNumber(pop))
			continue;
		(*ncom)++;
		size_t i = 0;
		while (i < n && strcmp(out[i].dep, dep))
			i++;
		if (i == n) {
			cr_assert_lt(n, max);
			snprintf(out[n].dep, sizeof(out[n].dep), "%s", dep);
			out[n++].sum = 0;
		}
		out[i].sum += pop->valuedouble;
	}
	cJSON_Delete(all);
	return n;
}

/* The stored point (not an aggregate); NaN when there is none. */
static double point(const char *terr, const char *period)
{
	vg_read *rd;
	uint32_t ii, ti;
	vg_point p;
	OK(vg_read_begin(S, &rd, &E));
	OK(vg_read_indicator_id(rd, "population", &ii, &E));
	OK(vg_read_territory_id(rd, terr, &ti, &E));
	int rc = vg_read_point(rd, ii, ti, per(period), VG_LATEST, &p);
	vg_read_end(rd);
	return rc ? NAN : p.value;
}

static int count(void *ud, const vg_point *p)
{
	(void)p;
	(*(size_t *)ud)++;
	return 0;
}

/* ---- tests ------------------------------------------------------------- */

/* 2022 (version 4.1.0) equals INSEE's populations de référence 2022,
 * population municipale, commune by commune (INSEE's file read here, not
 * through the plugin), and no point is left over. */
Test(popseries, millesime_2022_equals_the_insee_file)
{
	run_ok();
	vg_csv *c;
	vg_csv_opts co = {.sep = ';', .header = true};
	OK(vg_csv_open_file(
	    &c,
	    root_path("plugins/data/population/"
		      "popref2025_rp2022/ensemble~Communes.csv"),
	    &co, &E));
	vg_csv_row *row;
	size_t n = 0;
	while (vg_csv_next(c, &row, &E) == 1) {
		const char *dep = row->fields[2].ptr, *com = row->fields[5].ptr;
		if (!strcmp(dep, "975") || !strcmp(dep, "977") ||
		    !strcmp(dep, "978"))
			continue;
		char code[16], terr[24];
		snprintf(code, sizeof(code), "%s%s",
			 strncmp(dep, "97", 2) ? dep : "97", com);
		bool arm =
		    !strncmp(code, "751", 3) ||
		    (strcmp(code, "69381") >= 0 &&
		     strcmp(code, "69389") <= 0) ||
		    (strcmp(code, "13201") >= 0 && strcmp(code, "13216") <= 0);
		snprintf(terr, sizeof(terr), "%s:%s", arm ? "arm" : "com",
			 code);
		double want = strtod(row->fields[7].ptr, NULL);
		cr_assert_eq(point(terr, "2022"), want, "%s", terr);
		n++;
	}
	vg_csv_close(c);
	cr_assert_eq(n, 34960);
	/* Every 2022 point was compared: the slice of communes and
	 * arrondissements has exactly as many. */
	vg_read *rd;
	uint32_t ii;
	OK(vg_read_begin(S, &rd, &E));
	OK(vg_read_indicator_id(rd, "population", &ii, &E));
	size_t total = 0;
	for (uint16_t l = 0; l < vg_read_level_count(rd); l++) {
		const char *name = vg_read_level_name(rd, l);
		if (strcmp(name, "com") && strcmp(name, "arm"))
			continue;
		size_t k = 0;
		OK(vg_read_slice(rd, ii, per("2022"), l, 0, VG_LATEST, count,
				 &k));
		total += k;
	}
	vg_read_end(rd);
	cr_assert_eq(total, 34960);
	/* INSEE's France total (Mayotte has no 2022 value: partial). */
	vg_agg_value fr = agg_value_of(S, "population", "fr", "2022");
	cr_assert_eq(fr.value, 67760573);
	cr_assert(fr.cov.partial);
}

/* Every département of every millésime, computed by the engine from the
 * communes (old codes through the passage table, codes unknown to the
 * geography folded by the plugin), equals the sum of that version's
 * communes of the département. */
Test(popseries, departement_totals_per_millesime)
{
	run_ok();
	for (size_t v = 0; v < sizeof(VERSIONS) / sizeof(VERSIONS[0]); v++) {
		dep_sum sums[128];
		size_t ncom;
		size_t n = version_sums(VERSIONS[v].dir, sums, 128, &ncom);
		cr_assert_eq(n, 100, "%s: %zu départements", VERSIONS[v].year,
			     n);
		cr_assert_gt(ncom, 34800);
		for (size_t i = 0; i < n; i++) {
			char terr[16];
			snprintf(terr, sizeof(terr), "dep:%s", sums[i].dep);
			vg_agg_value got = agg_value_of(S, "population", terr,
							VERSIONS[v].year);
			cr_assert_eq(got.value, sums[i].sum,
				     "%s %s: %.0f != %.0f", terr,
				     VERSIONS[v].year, got.value, sums[i].sum);
			cr_assert_eq(got.source, VG_SOURCE_COMPUTED);
		}
	}
	/* 2020 was published in the COG 2022: old codes count through the
	 * passage table (tested above), and... */
	vg_agg_value dep18 = agg_value_of(S, "population", "dep:18", "2020");
	cr_assert(!dep18.cov.partial);
	/* ...and Lugny-Bourbonnais (18131), absorbed by Osmery (18173) in
	 * 2023 without becoming a commune déléguée, is counted in Osmery. */
	cJSON *all =
	    load_json("node_modules/decoupage-pop2020/data/communes.json");
	double lugny = NAN, osmery = NAN;
	const cJSON *c;
	cJSON_ArrayForEach(c, all)
	{
		const cJSON *pop =
		    cJSON_GetObjectItemCaseSensitive(c, "population");
		if (!strcmp(str(c, "type"), "commune-actuelle") &&
		    !strcmp(str(c, "code"), "18131"))
			lugny = pop->valuedouble;
		if (!strcmp(str(c, "type"), "commune-actuelle") &&
		    !strcmp(str(c, "code"), "18173"))
			osmery = pop->valuedouble;
	}
	cJSON_Delete(all);
	cr_assert(lugny > 0 && osmery > 0);
	cr_assert_eq(point("com:18173", "2020"), lugny + osmery);
	cr_assert(strstr(LOGS, "com:18131") != NULL, "%s", LOGS);
	/* 2021 (4.0.0): three communes of 2024 have no value in the
	 * package; their départements say partial, never a silent total. */
	cr_assert(agg_value_of(S, "population", "dep:85", "2021").cov.partial);
	cr_assert(agg_value_of(S, "population", "dep:60", "2021").cov.partial);
	cr_assert(!agg_value_of(S, "population", "dep:85", "2022").cov.partial);
}

static int collect(void *ud, const vg_point *p)
{
	vg_point *out = ud;
	size_t i = 0;
	while (out[i].period)
		i++;
	cr_assert_lt(i, 15);
	out[i] = *p;
	return 0;
}

/* Montaigu-Vendée: one value per millésime, each the package's. */
Test(popseries, series_of_one_commune)
{
	run_ok();
	vg_read *rd;
	uint32_t ii, ti;
	vg_point pts[16];
	memset(pts, 0, sizeof(pts));
	OK(vg_read_begin(S, &rd, &E));
	OK(vg_read_indicator_id(rd, "population", &ii, &E));
	OK(vg_read_territory_id(rd, "com:85146", &ti, &E));
	OK(vg_read_series(rd, ii, ti, 0, 0, VG_LATEST, collect, pts));
	vg_read_end(rd);
	for (size_t v = 0; v < 4; v++) {
		cr_assert_eq(pts[v].period, per(VERSIONS[v].year));
		char rel[256];
		snprintf(rel, sizeof(rel), "node_modules/%s/data/communes.json",
			 VERSIONS[v].dir);
		cJSON *all = load_json(rel);
		double want = NAN;
		const cJSON *c;
		cJSON_ArrayForEach(c, all)
		{
			if (!strcmp(str(c, "type"), "commune-actuelle") &&
			    !strcmp(str(c, "code"), "85146"))
				want = cJSON_GetObjectItemCaseSensitive(
					   c, "population")
					   ->valuedouble;
		}
		cJSON_Delete(all);
		cr_assert_eq(pts[v].value, want, "%s", VERSIONS[v].year);
		cr_assert_eq(pts[v].status, VG_STATUS_OK);
	}
	cr_assert_eq(pts[4].period, 0, "more than 4 values");
	/* The values differ from year to year: not one file read 4 times. */
	cr_assert_neq(pts[0].value, pts[2].value);
	cr_assert_neq(pts[1].value, pts[3].value);
}

/* Re-running, or running insee_population on the same 2022 figures,
 * writes no revision: one definition, the same values. */
static uint32_t vintage_of(const char *terr, const char *period)
{
	vg_read *rd;
	uint32_t ii, ti;
	vg_point pt;
	OK(vg_read_begin(S, &rd, &E));
	OK(vg_read_indicator_id(rd, "population", &ii, &E));
	OK(vg_read_territory_id(rd, terr, &ti, &E));
	OK(vg_read_point(rd, ii, ti, per(period), VG_LATEST, &pt));
	vg_read_end(rd);
	return pt.vintage;
}

Test(popseries, insee_population_and_a_rerun_change_nothing)
{
	run_ok();
	uint64_t v0 = store_vintages(S);
	uint32_t before = vintage_of("com:85146", "2022");
	run_ok();
	cr_assert_eq(store_vintages(S), v0);
	const char *roots[] = {root_path("plugins/data")};
	vg_plugin_env env = {
	    .lib_dir = root_path("plugins/lib"), .roots = roots, .nroots = 1};
	vg_plugin *p;
	OK(vg_plugin_load(root_path("plugins/insee_population.lua"), &env, &p,
			  &E));
	vg_run_result res;
	cr_assert_eq(run_with(p, S, NULL, NULL, &res), 0, "%s", E.msg);
	vg_plugin_free(p);
	vg_run_result_clear(&res);
	/* population_totale is new (one vintage); no population point of
	 * 2022 was revised by INSEE's own file. */
	cr_assert_eq(store_vintages(S), v0 + 1);
	cr_assert_eq(vintage_of("com:85146", "2022"), before);
	cr_assert_eq(vintage_of("arm:75101", "2022"), before);
}

/* A version that is not the checked one, or a malformed list, stops the
 * run with what, where and why; nothing is written. */
Test(popseries, wrong_version_or_config_is_refused)
{
	vg_run_result res;
	int rc = run_series("{\"versions\": \"2020=decoupage-pop2021@2.3.1\"}",
			    &res);
	cr_assert_neq(rc, 0);
	cr_assert(strstr(E.msg, "decoupage-pop2021/package.json: version "
				"4.0.0, expected 2.3.1 for millésime 2020"),
		  "%s", E.msg);
	vg_run_result_clear(&res);
	rc = run_series("{\"versions\": \"2020:decoupage-pop2020\"}", &res);
	cr_assert_neq(rc, 0);
	cr_assert(strstr(E.msg, "config 'versions': '2020:decoupage-pop2020' "
				"is not YEAR=PACKAGE_DIR@VERSION"),
		  "%s", E.msg);
	vg_run_result_clear(&res);
	rc = run_series("{\"versions\": \"2020=decoupage-pop2020@2.3.1,"
			"2020=decoupage-pop2020@2.3.1\"}",
			&res);
	cr_assert_neq(rc, 0);
	cr_assert(strstr(E.msg, "millésime 2020 given twice"), "%s", E.msg);
	vg_run_result_clear(&res);
	cr_assert_eq(store_points(S), 0);
}
