/* The bundled plugins of plugins/ on the bundled real data of
 * plugins/data/ (byte copies of ../shared/data, checked by checksum),
 * each checked against an independent reading of the same files in C and
 * against the producers' published figures, through the query engine. */
#include <math.h>

#include "plugin_helpers.h"
#include "vigie/csv.h"
#include "vigie/io.h"
#include "vigie/query.h"

GEO_SUITE(bundled, 240);

/* Run plugins/<name>.lua with the plugins directory as the only fetch
 * root (as the daemon does) and `config` (JSON or NULL); returns the
 * code, the result in *res (cleared by the caller). */
static bool WITH_SHARED; /* also ../shared/data as a root (after plugins/) */

static int run_bundled(const char *name, const char *config,
		       vg_run_result *res)
{
	char path[256];
	snprintf(path, sizeof(path), "plugins/%s.lua", name);
	const char *roots[] = { root_path("plugins"), shared_path("") };
	vg_plugin_env env = { .lib_dir = root_path("plugins/lib"),
			      .roots = roots, .nroots = WITH_SHARED ? 2 : 1 };
	vg_plugin *p;
	OK(vg_plugin_load(root_path(path), &env, &p, &E));
	int rc = run_with(p, S, config, NULL, res);
	vg_plugin_free(p);
	return rc;
}

static void run_ok(const char *name, const char *config, uint64_t rows)
{
	vg_run_result res;
	int rc = run_bundled(name, config, &res);
	cr_assert_eq(rc, 0, "%s: %d %s\n%s", name, rc, E.msg, LOGS);
	if (rows)
		cr_assert_eq(res.rows_written, rows, "%s: %lu rows", name,
			     (unsigned long)res.rows_written);
	vg_run_result_clear(&res);
}

/* ---- an independent reading of the files ---------------------------- */

typedef struct kv {
	char code[64];
	double a, b; /* two numeric columns of the row */
} kv;

static char *trim(char *s)
{
	while (*s == ' ')
		s++;
	size_t n = strlen(s);
	while (n && s[n - 1] == ' ')
		s[--n] = '\0';
	return s;
}

/* Rows of `rel` (under plugins/data/) whose columns ca and cb (0-based)
 * are integers or decimals: code = trimmed column 0. Returns the count. */
static size_t read_rows(const char *rel, int ca, int cb, kv *out, size_t max)
{
	char path[256];
	snprintf(path, sizeof(path), "plugins/data/%s", rel);
	vg_csv *c;
	vg_csv_opts co = { .sep = ';', .header = false };
	OK(vg_csv_open_file(&c, root_path(path), &co, &E));
	vg_csv_row *row;
	size_t n = 0;
	while (vg_csv_next(c, &row, &E) == 1) {
		if ((int)row->nfields <= ca || (int)row->nfields <= cb)
			continue;
		char *end1, *end2;
		const char *fa = row->fields[ca].ptr, *fb = row->fields[cb].ptr;
		double a = strtod(fa, &end1), b = strtod(fb, &end2);
		if (!*fa || !*fb || *end1 || *end2)
			continue;
		cr_assert_lt(n, max);
		char tmp[64];
		snprintf(tmp, sizeof(tmp), "%s", row->fields[0].ptr);
		snprintf(out[n].code, sizeof(out[n].code), "%s", trim(tmp));
		out[n].a = a;
		out[n].b = b;
		n++;
	}
	vg_csv_close(c);
	return n;
}

static const kv *find(const kv *t, size_t n, const char *code)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i].code, code))
			return &t[i];
	return NULL;
}

/* ---- insee_estimations ------------------------------------------------- */

#define ESTIM "population/estimations/estim-pop-dep-sexe-gca-1975-2025~"

/* The code of a row of the estimates as the plugin maps it. */
static void estim_terr(const char *code, char *out, size_t n)
{
	if (!strcmp(code, "France métropolitaine"))
		snprintf(out, n, "zone:france-metropolitaine");
	else if (!strcmp(code, "DOM"))
		snprintf(out, n, "zone:drom");
	else if (!strcmp(code, "France métropolitaine et DOM"))
		snprintf(out, n, "fr");
	else
		snprintf(out, n, "dep:%s", code);
}

Test(bundled, insee_estimations_every_value_and_status)
{
	run_ok("insee_estimations", NULL, 4 * 2 * 104);
	static const char *years[] = { "2022", "2023", "2024", "2025" };
	/* 2022 is définitif, later years provisoires / précoces. */
	static const vg_status want[] = { VG_STATUS_OK, VG_STATUS_PROVISIONAL,
					  VG_STATUS_PROVISIONAL,
					  VG_STATUS_PROVISIONAL };
	vg_read *rd;
	OK(vg_read_begin(S, &rd, &E));
	uint32_t ipop, i75;
	OK(vg_read_indicator_id(rd, "population_estimee", &ipop, &E));
	OK(vg_read_indicator_id(rd, "pop_75p", &i75, &E));
	for (int y = 0; y < 4; y++) {
		char rel[256];
		snprintf(rel, sizeof(rel), ESTIM "%s.csv", years[y]);
		kv rows[128];
		/* column 7: Ensemble Total, column 6: Ensemble 75+ */
		size_t n = read_rows(rel, 7, 6, rows, 128);
		cr_assert_eq(n, 104, "%s: %zu rows", rel, n);
		for (size_t i = 0; i < n; i++) {
			char terr[80];
			estim_terr(rows[i].code, terr, sizeof(terr));
			uint32_t ti;
			OK(vg_read_territory_id(rd, terr, &ti, &E));
			vg_point a, b;
			cr_assert_eq(vg_read_point(rd, ipop, ti, per(years[y]),
						   VG_LATEST, &a), 0, "%s", terr);
			cr_assert_eq(vg_read_point(rd, i75, ti, per(years[y]),
						   VG_LATEST, &b), 0, "%s", terr);
			cr_assert_eq(a.value, rows[i].a, "%s %s", terr, years[y]);
			cr_assert_eq(b.value, rows[i].b, "%s %s", terr, years[y]);
			cr_assert_eq(a.status, want[y], "%s %s", terr, years[y]);
		}
	}
	vg_read_end(rd);

	/* France 2025 (published): 68 605 616 */
	vg_agg_value fr = agg_value_of(S, "population_estimee", "fr", "2025");
	cr_assert_eq(fr.value, 68605616);
	cr_assert_eq(fr.source, VG_SOURCE_PUBLISHED);
	/* Pays de la Loire is computed from its 5 départements. */
	vg_agg_value pdl = agg_value_of(S, "population_estimee", "reg:52", "2025");
	cr_assert_eq(pdl.source, VG_SOURCE_COMPUTED);
	kv rows[128];
	size_t n = read_rows(ESTIM "2025.csv", 7, 6, rows, 128);
	double sum = 0, s75 = 0;
	static const char *pdl_deps[] = { "44", "49", "53", "72", "85" };
	for (int i = 0; i < 5; i++) {
		const kv *r = find(rows, n, pdl_deps[i]);
		cr_assert_not_null(r);
		sum += r->a;
		s75 += r->b;
	}
	cr_assert_eq(pdl.value, sum);
	cr_assert_eq(pdl.status, VG_STATUS_PROVISIONAL);
	/* The share of 75+ is a ratio of sums, not a mean of shares. */
	vg_agg_value share = agg_value_of(S, "pop_75p_share", "reg:52", "2025");
	cr_assert_float_eq(share.value, s75 / sum * 100, 1e-9);
	const kv *v85 = find(rows, n, "85");
	vg_agg_value s85 = agg_value_of(S, "pop_75p_share", "dep:85", "2025");
	cr_assert_float_eq(s85.value, v85->b / v85->a * 100, 1e-9);
}

Test(bundled, insee_estimations_rejects_a_wrong_year)
{
	vg_run_result res;
	uint64_t pts = store_points(S);
	/* the 2024 sheet given for 2025: the title says Année 2024 */
	int rc = run_bundled("insee_estimations",
			     "{\"years\": \"2025\", \"source\": \"data/"
			     ESTIM "2024.csv\"}", &res);
	cr_assert_eq(rc, VG_EPLUGIN, "%d %s", rc, E.msg);
	cr_assert(strstr(E.msg, "expected Année 2025"), "%s", E.msg);
	cr_assert(strstr(E.msg, "~2024.csv:2"), "%s", E.msg);
	cr_assert_eq(store_points(S), pts, "nothing written");
	vg_run_result_clear(&res);
	rc = run_bundled("insee_estimations", "{\"years\": \"25\"}", &res);
	cr_assert_eq(rc, VG_EPLUGIN);
	cr_assert(strstr(E.msg, "'25' is not a year"), "%s", E.msg);
	vg_run_result_clear(&res);
}

/* ---- drees_physicians: the published densities --------------------- */

/* TCRD_068 code -> territory, as the plugin maps it. */
static void tcrd_terr(const char *code, bool reg, char *out, size_t n)
{
	if (!strcmp(code, "M"))
		snprintf(out, n, "zone:france-metropolitaine");
	else if (!strcmp(code, "P"))
		snprintf(out, n, "zone:metro-hors-idf");
	else if (!strcmp(code, "F"))
		snprintf(out, n, "fr");
	else
		snprintf(out, n, "%s:%s", reg ? "reg" : "dep", code);
}

Test(bundled, physician_densities_round_to_published_integers)
{
	run_ok("insee_estimations", NULL, 0);
	run_ok("drees_physicians", NULL, 6 * 122);
	run_ok("health_densities", NULL, 0);

	kv est[128];
	size_t ne = read_rows(ESTIM "2025.csv", 7, 6, est, 128);
	kv dep[128], reg[64];
	/* column 2: physicians, column 3: density of all physicians */
	size_t nd = read_rows("health/TCRD_068~DEP.csv", 2, 3, dep, 128);
	size_t nr = read_rows("health/TCRD_068~REG.csv", 2, 3, reg, 64);
	cr_assert_eq(nd, 104, "101 départements, P, M, F");
	cr_assert_eq(nr, 21, "18 régions, P, M, F");

	/* Independently of Vigie: counts / estimates x 1e5 round to the
	 * published integers for the 101 départements, M and F. */
	size_t checked = 0;
	for (size_t i = 0; i < nd; i++) {
		const char *c = dep[i].code;
		const kv *e = find(est, ne, !strcmp(c, "M")
						    ? "France métropolitaine"
					    : !strcmp(c, "F")
						    ? "France métropolitaine et DOM"
						    : c);
		if (!strcmp(c, "P"))
			continue; /* not in the estimates: engine only */
		cr_assert_not_null(e, "%s has no estimate", c);
		double d = dep[i].a / e->a * 1e5;
		cr_assert_eq(floor(d + 0.5), dep[i].b, "%s: %.3f vs %g", c, d,
			     dep[i].b);
		/* and the engine computes the same ratio */
		char terr[80];
		tcrd_terr(c, false, terr, sizeof(terr));
		vg_agg_value v = agg_value_of(S, "physician_density", terr, "2025");
		cr_assert_eq(v.source, VG_SOURCE_COMPUTED, "%s", terr);
		cr_assert_float_eq(v.value, d, 1e-9 * d, "%s: %.6f vs %.6f",
				   terr, v.value, d);
		checked++;
	}
	cr_assert_eq(checked, 103, "101 départements, M and F");

	/* The engine, on its own, for every row of both sheets: régions
	 * and "hors Île-de-France" have no published estimate, so their
	 * denominators are sums of départements. */
	for (int sheet = 0; sheet < 2; sheet++) {
		const kv *t = sheet ? reg : dep;
		size_t n = sheet ? nr : nd;
		for (size_t i = 0; i < n; i++) {
			char terr[80];
			tcrd_terr(t[i].code, sheet, terr, sizeof(terr));
			vg_agg_value v = agg_value_of(S, "physician_density", terr,
						"2025");
			cr_assert_eq(floor(v.value + 0.5), t[i].b,
				     "%s: %.3f, published %g", terr, v.value,
				     t[i].b);
			cr_assert(!v.cov.partial, "%s partial", terr);
			vg_agg_value pub = agg_value_of(S, "physicians_density_pub",
						  terr, "2025");
			cr_assert_eq(pub.value, t[i].b);
			cr_assert_eq(pub.source, VG_SOURCE_PUBLISHED);
		}
	}
	/* A région's physicians: published (the sheet), and equal to the
	 * sum of its départements. */
	vg_agg_value r52 = agg_value_of(S, "physicians", "reg:52", "2025");
	cr_assert_eq(r52.value, find(reg, nr, "52")->a);
	double s = 0;
	static const char *pdl[] = { "44", "49", "53", "72", "85" };
	for (int i = 0; i < 5; i++)
		s += find(dep, nd, pdl[i])->a;
	cr_assert_eq(s, r52.value);
}

/* ---- drees_apl: weighted means at every scale ------------------------- */

typedef struct leaf {
	char code[16];     /* "85146" (without level) */
	char parents[160]; /* parent_codes of the fixture */
} leaf;

static int leaf_cmp(const void *a, const void *b)
{
	return strcmp(((const leaf *)a)->code, ((const leaf *)b)->code);
}

/* Communes and arrondissements of the territories fixture, sorted; old
 * codes of plugins/data/cog (COMD/COMA -> commune nouvelle) likewise. */
static leaf *load_leaves(size_t *n)
{
	vg_csv *c;
	vg_csv_opts co = { .sep = ';', .header = true };
	OK(vg_csv_open_file(&c, root_path("tests/fixtures/real/"
					  "territories_cog2024.csv"), &co, &E));
	leaf *t = calloc(40000, sizeof(*t));
	vg_csv_row *row;
	*n = 0;
	while (vg_csv_next(c, &row, &E) == 1) {
		const char *code = row->fields[0].ptr;
		if (strncmp(code, "com:", 4) && strncmp(code, "arm:", 4))
			continue;
		/* Old commune codes (the passage table) are not leaves. */
		if (row->nfields > 5 && row->fields[5].len)
			continue;
		cr_assert_lt(*n, 40000);
		snprintf(t[*n].code, sizeof(t[*n].code), "%s", code + 4);
		snprintf(t[*n].parents, sizeof(t[*n].parents), "%s",
			 row->fields[3].ptr);
		(*n)++;
	}
	vg_csv_close(c);
	qsort(t, *n, sizeof(*t), leaf_cmp);
	return t;
}

static leaf *load_passage(size_t *n)
{
	vg_csv *c;
	vg_csv_opts co = { .sep = ';', .header = true };
	OK(vg_csv_open_file(&c, root_path("plugins/data/cog/communes_"
					  "deleguees_associees_2024.csv"),
			    &co, &E));
	leaf *t = calloc(4000, sizeof(*t));
	vg_csv_row *row;
	*n = 0;
	while (vg_csv_next(c, &row, &E) == 1) {
		cr_assert_lt(*n, 4000);
		snprintf(t[*n].code, sizeof(t[*n].code), "%s",
			 row->fields[1].ptr);
		snprintf(t[*n].parents, sizeof(t[*n].parents), "%s",
			 row->fields[2].ptr);
		(*n)++;
	}
	vg_csv_close(c);
	qsort(t, *n, sizeof(*t), leaf_cmp);
	return t;
}

static const leaf *lookup(const leaf *t, size_t n, const char *code)
{
	leaf k;
	snprintf(k.code, sizeof(k.code), "%s", code);
	return bsearch(&k, t, n, sizeof(*t), leaf_cmp);
}

/* Sums over the APL file for the communes inside `target` ("fr" or a
 * parent code of the fixture), old codes folded as the plugin does. */
typedef struct apl_sums {
	double wsum, w, pop, under;
	int rows, rejected, folded;
} apl_sums;

static apl_sums apl_independent(const char *target, const leaf *lv,
				size_t nl, const leaf *pa, size_t np)
{
	apl_sums s = { 0 };
	vg_csv *c;
	vg_csv_opts co = { .sep = ';', .header = true };
	OK(vg_csv_open_file(&c, root_path("plugins/data/health/"
					  "APL_mg_2021~Sheet1.csv"), &co, &E));
	vg_csv_row *row;
	size_t tl = strlen(target);
	while (vg_csv_next(c, &row, &E) == 1) {
		cr_assert_eq(row->nfields, 7);
		const char *code = row->fields[0].ptr;
		const leaf *p = lookup(pa, np, code);
		if (p && strcmp(p->parents, code)) {
			code = p->parents;
			s.folded++;
		}
		const leaf *l = lookup(lv, nl, code);
		if (!l) {
			s.rejected++;
			continue;
		}
		/* "reg:52" must match a whole item of the parent list */
		bool in = !strcmp(target, "fr");
		for (const char *q = l->parents; !in && (q = strstr(q, target));
		     q += tl)
			in = (q == l->parents || q[-1] == ',') &&
			     (q[tl] == ',' || q[tl] == '\0');
		if (!in || !*row->fields[3].ptr)
			continue;
		double pop = strtod(row->fields[2].ptr, NULL);
		double apl = strtod(row->fields[3].ptr, NULL);
		double w = strtod(row->fields[6].ptr, NULL);
		s.wsum += apl * w;
		s.w += w;
		s.pop += pop;
		if (apl < 2.5)
			s.under += pop;
		s.rows++;
	}
	vg_csv_close(c);
	return s;
}

Test(bundled, apl_montaigu_vendee_and_its_containers)
{
	vg_run_result res;
	int rc = run_bundled("drees_apl", NULL, &res);
	cr_assert_eq(rc, 0, "%s\n%s", E.msg, LOGS);
	/* 3 codes of 2021 merged without a commune déléguée */
	cr_assert_eq(res.rows_rejected, 3, "%s", LOGS);
	cr_assert(strstr(LOGS, "com:27058"), "%s", LOGS);
	cr_assert(strstr(LOGS, "21 old communes folded"), "%s", LOGS);
	/* two sources: the checksum of their checksums */
	cr_assert(!strncmp(res.checksum, "sha256:", 7));
	vg_run_result_clear(&res);

	/* The commune: its published row. */
	vg_agg_value m = agg_value_of(S, "apl_mg", "com:85146", "2021");
	cr_assert_eq(m.source, VG_SOURCE_PUBLISHED);
	cr_assert_float_eq(m.value, 3.983, 1e-12);
	cr_assert_float_eq(agg_value_of(S, "apl_mg_65", "com:85146", "2021").value,
			   3.777, 1e-12);
	cr_assert_float_eq(agg_value_of(S, "apl_mg_62", "com:85146", "2021").value,
			   3.462, 1e-12);
	cr_assert_eq(agg_value_of(S, "pop_apl_under_2_5", "com:85146", "2021").value,
		     0);

	size_t nl, np;
	leaf *lv = load_leaves(&nl), *pa = load_passage(&np);
	cr_assert_eq(nl, 34980);
	/* Paris, Lyon, Marseille: the commune is computed from its
	 * arrondissements (the file has no row for 75056, 69123, 13055). */
	static const char *targets[] = { "epci:200070233", "dep:85", "reg:52",
					 "fr", "com:75056", "com:69123",
					 "com:13055" };
	static const int rows_min[] = { 5, 200, 1000, 34000, 20, 9, 16 };
	for (int i = 0; i < 7; i++) {
		apl_sums s = apl_independent(targets[i], lv, nl, pa, np);
		cr_assert_eq(s.rejected, 3);
		cr_assert_eq(s.folded, 21);
		cr_assert_geq(s.rows, rows_min[i], "%s: %d", targets[i],
			      s.rows);
		vg_agg_value v = agg_value_of(S, "apl_mg", targets[i], "2021");
		cr_assert_eq(v.source, VG_SOURCE_COMPUTED);
		double want = s.wsum / s.w;
		cr_assert_float_eq(v.value, want, 1e-9, "%s: %.9f vs %.9f",
				   targets[i], v.value, want);
		cr_assert_float_eq(v.cov.weight_covered, s.w, 1e-6 * s.w);
		vg_agg_value sh = agg_value_of(S, "apl_under_2_5_share", targets[i],
					 "2021");
		double wsh = s.under / s.pop * 100;
		cr_assert_float_eq(sh.value, wsh, 1e-9, "%s: %.9f vs %.9f",
				   targets[i], sh.value, wsh);
	}
	free(lv);
	free(pa);

	/* The original workbook gives the same values (to the 15 digits the
	 * CSV extraction kept): same points, France's APL unchanged. */
	vg_agg_value fr_csv = agg_value_of(S, "apl_mg", "fr", "2021");
	WITH_SHARED = true;
	rc = run_bundled("drees_apl", "{\"source\": \"health/APL_mg_2021.xlsx\"}",
			 &res);
	WITH_SHARED = false;
	cr_assert_eq(rc, 0, "%s", E.msg);
	cr_assert_eq(res.rows_written, 209838);
	cr_assert_eq(res.commit.points_new, 0);
	vg_run_result_clear(&res);
	vg_agg_value fr_xlsx = agg_value_of(S, "apl_mg", "fr", "2021");
	cr_assert_float_eq(fr_xlsx.value, fr_csv.value, 1e-9);
	cr_assert_float_eq(agg_value_of(S, "apl_mg", "com:85146", "2021").value, 3.983,
			   1e-12);
}

/* ---- cog: the geography, passage table included ----------------------- */

/* One territory as a line "code;level;name;parent_codes;successors", the
 * successors written as scripts/cog_to_territories.py writes them. */
typedef struct terr_line {
	char s[640];
} terr_line;

static int line_cmp(const void *a, const void *b)
{
	return strcmp(((const terr_line *)a)->s, ((const terr_line *)b)->s);
}

typedef struct terr_lines {
	vg_read *r;
	terr_line *v;
	size_t n;
} terr_lines;

static int store_line(void *ud, uint32_t id)
{
	terr_lines *x = ud;
	vg_territory t;
	OK(vg_read_territory(x->r, id, &t, &E));
	char par[VG_MAX_PARENTS * VG_CODE_MAX] = "", suc[512] = "";
	for (size_t i = 0; i < t.nparents; i++)
		snprintf(par + strlen(par), sizeof(par) - strlen(par), "%s%s",
			 i ? "," : "", t.parents[i]);
	if (t.nsuccessors == 1 && fabs(t.successors[0].weight - 1) < 1e-12)
		snprintf(suc, sizeof(suc), "%s", t.successors[0].code);
	else
		for (size_t i = 0; i < t.nsuccessors; i++)
			snprintf(suc + strlen(suc), sizeof(suc) - strlen(suc),
				 "%s%s=%.10g", i ? "|" : "",
				 t.successors[i].code, t.successors[i].weight);
	cr_assert_lt(x->n, 40000);
	int w = snprintf(x->v[x->n++].s, sizeof(x->v[0].s), "%s;%s;%s;%s;%s",
			 t.code, t.level, t.name, par, suc);
	cr_assert_lt((size_t)w, sizeof(x->v[0].s));
	vg_territory_clear(&t);
	return 0;
}

Test(bundled, cog_equals_the_fixture_successors_included)
{
	/* The plugin on a fresh store (from plugins/data only, as `make run`
	 * does), compared with the committed fixture line by line: codes,
	 * levels, names, parents in order, successors and weights. */
	char dir[1024];
	snprintf(dir, sizeof(dir), "%s/cog", DIR_);
	vg_store_close(S);
	OK(vg_store_open(&S, dir, NULL, &E));
	vg_run_result res;
	/* The fixture, like the COG, has only the communes déléguées and
	 * associées as old codes (the npm package's anciensCodes are checked
	 * by tests/cli/test_bundled_plugins_cli.sh). */
	int rc = run_bundled("cog", "{\"anciens_codes\": \"\"}", &res);
	cr_assert_eq(rc, 0, "%s\n%s", E.msg, LOGS);
	cr_assert_eq(res.commit.territories, 38346);
	vg_run_result_clear(&res);
	cr_assert(strstr(LOGS, "18 régions, 101 départements, 1255 EPCI, "
			       "34935 communes, 45 arrondissements "
			       "municipaux, 1991 old commune codes"),
		  "%s", LOGS);

	terr_lines got = { .v = calloc(40000, sizeof(terr_line)) };
	OK(vg_read_begin(S, &got.r, &E));
	OK(vg_read_territories(got.r, NULL, store_line, &got));

	terr_lines want = { .v = calloc(40000, sizeof(terr_line)) };
	vg_csv *c;
	vg_csv_opts co = { .sep = ';', .header = true };
	OK(vg_csv_open_file(&c, root_path("tests/fixtures/real/"
					  "territories_cog2024.csv"), &co, &E));
	vg_csv_row *row;
	while (vg_csv_next(c, &row, &E) == 1) {
		cr_assert_eq(row->nfields, 6);
		cr_assert_lt(want.n, 40000);
		int w = snprintf(want.v[want.n++].s, sizeof(want.v[0].s),
				 "%s;%s;%s;%s;%s", row->fields[0].ptr,
				 row->fields[1].ptr, row->fields[2].ptr,
				 row->fields[3].ptr, row->fields[5].ptr);
		cr_assert_lt((size_t)w, sizeof(want.v[0].s));
	}
	vg_csv_close(c);
	cr_assert_eq(got.n, want.n);
	qsort(got.v, got.n, sizeof(terr_line), line_cmp);
	qsort(want.v, want.n, sizeof(terr_line), line_cmp);
	for (size_t i = 0; i < got.n; i++)
		cr_assert_str_eq(got.v[i].s, want.v[i].s);

	/* The passage table at work on the real APL file, taken raw (not
	 * folded as drees_apl does): every row's population stored under
	 * the code it was published with; a commune nouvelle of 2024 counts
	 * its own row and those of the communes merged into it since 2021,
	 * each once (the old codes lie within nothing). */
	uint32_t ii;
	vg_batch *b;
	vg_batch_opts bo = { .origin = "test" };
	OK(vg_batch_new(S, &bo, &b, &E));
	vg_indicator ind = make_ind("pop_raw", "sum");
	OK(vg_batch_indicator(b, &ind, &E));
	OK(vg_csv_open_file(&c, root_path("plugins/data/health/"
					  "APL_mg_2021~Sheet1.csv"), &co, &E));
	double fr = 0;
	int olds = 0;
	typedef struct target {
		uint32_t id;
		double sum;
	} target;
	target tg[64];
	int ntg = 0;
	while (vg_csv_next(c, &row, &E) == 1) {
		char code[VG_CODE_MAX];
		uint32_t id;
		snprintf(code, sizeof(code), "com:%s", row->fields[0].ptr);
		if (vg_read_territory_id(got.r, code, &id, NULL))
			continue; /* merged without a commune déléguée */
		double pop = strtod(row->fields[2].ptr, NULL);
		OK(vg_batch_point(b, "pop_raw", code, per("2021"), pop,
				  VG_STATUS_OK, &E));
		fr += pop;
		const vg_passage *ps;
		size_t np = vg_read_territory_successors(got.r, id, &ps);
		if (!np)
			continue;
		cr_assert_eq(np, 1);
		cr_assert_eq(ps[0].weight, 1);
		olds++;
		int k = 0;
		while (k < ntg && tg[k].id != ps[0].terr)
			k++;
		if (k == ntg) {
			cr_assert_lt(ntg, 64);
			tg[ntg++] = (target){ ps[0].terr, 0 };
		}
		tg[k].sum += pop;
	}
	vg_csv_close(c);
	/* 85027 Boufféré: a commune déléguée of Montaigu-Vendée since 2019,
	 * absent from the 2021 file; the 2015-era point is counted there. */
	OK(vg_batch_point(b, "pop_raw", "com:85027", per("2015"), 4242,
			  VG_STATUS_OK, &E));
	/* A read open in this thread would hold the commit up. */
	vg_read_end(got.r);
	vg_commit_info ci;
	OK(vg_batch_commit(b, &ci, &E));
	cr_assert_eq(olds, 21); /* as drees_apl folds them */
	vg_read *rd;
	OK(vg_read_begin(S, &rd, &E));
	OK(vg_read_indicator_id(rd, "pop_raw", &ii, &E));
	for (int k = 0; k < ntg; k++) {
		const char *tc = vg_read_territory_code(rd, tg[k].id);
		char own[VG_CODE_MAX];
		snprintf(own, sizeof(own), "%s", tc);
		vg_point pt;
		double want_v = tg[k].sum;
		if (!vg_read_point(rd, ii, tg[k].id, per("2021"), VG_LATEST, &pt))
			want_v += pt.value; /* it kept its code: its own row */
		vg_agg_value v = agg_value_of(S, "pop_raw", own, "2021");
		cr_assert_eq(v.source, VG_SOURCE_COMPUTED, "%s", own);
		cr_assert_eq(v.cov.via_passage, 1, "%s", own);
		cr_assert_float_eq(v.value, want_v, 1e-6, "%s: %f vs %f", own,
				   v.value, want_v);
	}
	vg_read_end(rd);
	vg_agg_value f = agg_value_of(S, "pop_raw", "fr", "2021");
	cr_assert_float_eq(f.value, fr, 1e-3, "%f vs %f", f.value, fr);
	cr_assert_eq(f.cov.via_passage, (uint32_t)ntg);
	vg_agg_value m = agg_value_of(S, "pop_raw", "com:85146", "2015");
	cr_assert_eq(m.value, 4242);
	cr_assert_eq(m.cov.via_passage, 1);
	cr_assert_eq(agg_value_of(S, "pop_raw", "dep:85", "2015").value, 4242);
	cr_assert_eq(agg_value_of(S, "pop_raw", "fr", "2015").value, 4242);
	free(got.v);
	free(want.v);
}

/* A small COG (same columns as v_commune_2024.csv) under DIR_: cog run
 * on it with the real EPCI and names files; returns the code. */
static int run_cog_on(const char *communes_csv)
{
	char path[1024], cfg[1200];
	snprintf(path, sizeof(path), "%s/v_commune.csv", DIR_);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("TYPECOM,COM,REG,DEP,CTCD,ARR,TNCC,NCC,NCCENR,LIBELLE,CAN,"
	      "COMPARENT\n",
	      f);
	fputs(communes_csv, f);
	fclose(f);
	snprintf(cfg, sizeof(cfg),
		 "{\"communes\": \"%s\", \"anciens_codes\": \"\"}", path);
	const char *roots[] = { root_path("plugins"), DIR_ };
	vg_plugin_env env = { .lib_dir = root_path("plugins/lib"),
			      .roots = roots, .nroots = 2 };
	vg_plugin *p;
	OK(vg_plugin_load(root_path("plugins/cog.lua"), &env, &p, &E));
	vg_run_result res;
	int rc = run_with(p, S, cfg, NULL, &res);
	vg_run_result_clear(&res);
	vg_plugin_free(p);
	return rc;
}

#define COM(code, name, parent, type)                                   \
	"\"" type "\",\"" code "\",\"52\",\"85\",\"85D\",\"851\",\"0\",\"X\"," \
	"\"X\",\"" name "\",\"8512\",\"" parent "\"\n"

Test(bundled, cog_chains_and_bad_passages)
{
	/* A chain: 85999 was merged into 85027, itself later into 85146:
	 * 85999 ends in 85146, with weight 1. A COMD with its commune's own
	 * code is no old code. (The COG 2024 has no chain: COMPARENT is
	 * always current there.) */
	char dir[1024];
	snprintf(dir, sizeof(dir), "%s/chain", DIR_);
	vg_store_close(S);
	OK(vg_store_open(&S, dir, NULL, &E));
	int rc = run_cog_on(COM("85146", "Montaigu-Vendée", "", "COM")
				    COM("85146", "Montaigu", "85146", "COMD")
					    COM("85027", "Boufféré", "85146",
						"COMD")
						    COM("85999", "Ancienne",
							"85027", "COMA"));
	cr_assert_eq(rc, 0, "%s\n%s", E.msg, LOGS);
	cr_assert(strstr(LOGS, "1 communes, 0 arrondissements municipaux, 2 "
			       "old commune codes"),
		  "%s", LOGS);
	vg_read *rd;
	uint32_t m, a, b;
	OK(vg_read_begin(S, &rd, &E));
	OK(vg_read_territory_id(rd, "com:85146", &m, &E));
	OK(vg_read_territory_id(rd, "com:85027", &a, &E));
	OK(vg_read_territory_id(rd, "com:85999", &b, &E));
	const vg_passage *ps;
	cr_assert_eq(vg_read_territory_successors(rd, a, &ps), 1);
	cr_assert_eq(ps[0].terr, m);
	cr_assert_eq(vg_read_territory_successors(rd, b, &ps), 1);
	cr_assert_eq(ps[0].terr, m);
	cr_assert_eq(ps[0].weight, 1);
	cr_assert_eq(vg_read_territory_successors(rd, m, &ps), 0);
	cr_assert_str_eq(vg_read_territory_name(rd, m), "Montaigu-Vendée");
	vg_read_end(rd);

	/* Refused with the file and line, nothing written. */
	static const struct {
		const char *csv, *msg;
	} bad[] = {
		{ COM("85146", "M", "", "COM") COM("85027", "B", "85146", "COMD")
			  COM("85027", "B", "85300", "COMA"),
		  "v_commune.csv:4: old code 85027 has two communes (85146, "
		  "85300)" },
		{ COM("85146", "M", "", "COM") COM("85998", "B", "85997", "COMD"),
		  "old code 85997: no current successor (via 85998)" },
		{ COM("85146", "M", "", "COM") COM("85998", "B", "85997", "COMD")
			  COM("85997", "C", "85998", "COMD"),
		  "no current successor (via 85997, 85998)" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(run_cog_on(bad[i].csv), VG_EPLUGIN, "%zu", i);
		cr_expect(strstr(E.msg, bad[i].msg), "%zu: %s", i, E.msg);
	}
}

/* ---- ameli_open_data: the Opendatasoft export format ------------------ */

Test(bundled, ameli_export_statuses_and_liberal_gp_density)
{
	/* The fixture lies outside plugins/: give the repository root. */
	char cfg[2048];
	snprintf(cfg, sizeof(cfg), "{\"url\": \"%s\", \"ald_url\": \"%s\"}",
		 root_path("tests/fixtures/plugins/ameli/"
			   "demographie-effectifs-et-les-densites.csv"),
		 root_path("tests/fixtures/plugins/ameli/"
			   "patients-longueduree-annuelle.csv"));
	vg_run_result res;
	const char *roots[] = { root_path("plugins"), root_path("tests") };
	vg_plugin_env env = { .lib_dir = root_path("plugins/lib"),
			      .roots = roots, .nroots = 2 };
	vg_plugin *p;
	OK(vg_plugin_load(root_path("plugins/ameli_open_data.lua"), &env, &p,
			  &E));
	OK(run_with(p, S, cfg, NULL, &res));
	/* 8 GP rows "Tout âge" x "tout sexe" (2 indicators each); the age
	 * class, the sex split and the nurses are filtered out; "inconnu"
	 * is not a territory: rejected. Then 6 ALD rows, 1 "inconnu". */
	cr_assert_eq(res.rows_written, 16 + 6);
	cr_assert_eq(res.rows_rejected, 2);
	cr_assert(strstr(LOGS, "densites.csv:13: territory departement "
			       "'inconnu'"), "%s", LOGS);
	cr_assert(strstr(LOGS, "annuelle.csv:8: territory"), "%s", LOGS);
	vg_run_result_clear(&res);
	vg_plugin_free(p);

	vg_status st;
	vg_read *rd;
	OK(vg_read_begin(S, &rd, &E));
	static const struct {
		const char *ind, *terr, *per;
		double v;
		vg_status st;
	} want[] = {
		{ "gp_liberal_count", "dep:85", "2023", 521, VG_STATUS_OK },
		{ "gp_liberal_count", "dep:85", "2024", 509, VG_STATUS_OK },
		{ "gp_liberal_density_pub", "dep:85", "2024", 73.1,
		  VG_STATUS_OK },
		{ "gp_liberal_count", "dep:44", "2024", NAN,
		  VG_STATUS_SUPPRESSED }, /* NS */
		{ "gp_liberal_density_pub", "dep:2A", "2024", NAN,
		  VG_STATUS_SUPPRESSED }, /* empty */
		{ "gp_liberal_count", "reg:52", "2024", 3020, VG_STATUS_OK },
		{ "gp_liberal_count", "fr", "2024", 51000, VG_STATUS_OK },
		{ "gp_liberal_count", "dep:971", "2024", 280, VG_STATUS_OK },
		{ "ald_no_mt_share_pub", "dep:85", "2023", 3.4, VG_STATUS_OK },
		{ "ald_no_mt_share_pub", "dep:85", "2024", 3.1, VG_STATUS_OK },
		{ "ald_no_mt_share_pub", "dep:44", "2024", NAN,
		  VG_STATUS_SUPPRESSED }, /* NC */
		{ "ald_no_mt_share_pub", "reg:52", "2024", 2.8, VG_STATUS_OK },
		{ "ald_no_mt_share_pub", "fr", "2024", 3.6, VG_STATUS_OK },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		uint32_t ii, ti;
		vg_point pt;
		OK(vg_read_indicator_id(rd, want[i].ind, &ii, &E));
		OK(vg_read_territory_id(rd, want[i].terr, &ti, &E));
		cr_assert_eq(vg_read_point(rd, ii, ti, per(want[i].per),
					   VG_LATEST, &pt), 0, "%zu", i);
		st = pt.status;
		cr_assert_eq(st, want[i].st, "%s %s", want[i].ind,
			     want[i].terr);
		if (st == VG_STATUS_OK)
			cr_assert_float_eq(pt.value, want[i].v, 1e-12);
	}
	vg_read_end(rd);

	/* Liberal GP density = count / INSEE estimate x 1e5, at dep:85. */
	run_ok("insee_estimations", NULL, 0);
	run_ok("health_densities", NULL, 0);
	kv est[128];
	size_t ne = read_rows(ESTIM "2024.csv", 7, 6, est, 128);
	double d = 509 / find(est, ne, "85")->a * 1e5;
	vg_agg_value v = agg_value_of(S, "gp_density_liberal", "dep:85", "2024");
	cr_assert_float_eq(v.value, d, 1e-9);
	/* the fixture's published density is made up: no comparison */
}

Test(bundled, ameli_missing_field_is_named)
{
	const char *csv = "annee;profession_sante;region;departement;"
			  "effectif;densite\n2024;x;52;85;1;2\n";
	char path[512];
	snprintf(path, sizeof(path), "%s/export.csv", DIR_);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(csv, f);
	fclose(f);
	char cfg[1024];
	snprintf(cfg, sizeof(cfg), "{\"url\": \"%s\", \"ald_url\": \"\"}",
		 path);
	const char *roots[] = { DIR_ };
	vg_plugin_env env = { .lib_dir = root_path("plugins/lib"),
			      .roots = roots, .nroots = 1 };
	vg_plugin *p;
	OK(vg_plugin_load(root_path("plugins/ameli_open_data.lua"), &env, &p,
			  &E));
	vg_run_result res;
	cr_assert_eq(run_with(p, S, cfg, NULL, &res), VG_EPLUGIN);
	cr_assert(strstr(E.msg, "export.csv:2: field 'libelle_classe_age' "
				"missing"), "%s", E.msg);
	vg_run_result_clear(&res);
	vg_plugin_free(p);
}

/* ---- rpps_gp: one doctor, several sites -------------------------------- */

Test(bundled, rpps_multi_site_doctors_count_once)
{
	char cfg[1024];
	snprintf(cfg, sizeof(cfg), "{\"source\": \"%s\", \"period\": "
		 "\"2022\"}", root_path("tests/fixtures/plugins/rpps/"
				      "PS_LibreAcces_Personne_activite_"
				      "sample.txt"));
	const char *roots[] = { root_path("tests") };
	vg_plugin_env env = { .lib_dir = root_path("plugins/lib"),
			      .roots = roots, .nroots = 1 };
	vg_plugin *p;
	OK(vg_plugin_load(root_path("plugins/rpps_gp.lua"), &env, &p, &E));
	/* the populations légales first: the communes without GP get 0 */
	WITH_SHARED = true;
	run_ok("insee_population", NULL, 69920);
	WITH_SHARED = false;
	vg_run_result res;
	OK(run_with(p, S, cfg, NULL, &res));
	cr_assert_eq(res.rows_written, 34960, "4 with GPs, the others 0");
	cr_assert(strstr(LOGS, "34956 communes without GP"), "%s", LOGS);
	cr_assert_eq(res.rows_rejected, 1, "the GP with no commune");
	cr_assert(strstr(LOGS, "GP 810000000007 has no practice site"), "%s",
		  LOGS);
	vg_run_result_clear(&res);
	vg_plugin_free(p);

	/* ALPHA 1 at Montaigu; BRAVO 1/2 Montaigu + 1/2 Nantes; CHARLIE
	 * 3 sites (2 at La Roche-sur-Yon, 1 at Montaigu, repeated row
	 * counted once); FOXTROT Paris 8e; HOTEL Nantes (no structure id). */
	static const struct {
		const char *terr;
		double v;
	} want[] = {
		{ "com:85146", 1 + 0.5 + 1.0 / 3 },
		{ "com:85191", 2.0 / 3 },
		{ "com:44109", 1.5 },
		{ "arm:75108", 1 },
		{ "com:75056", 1 }, /* Paris = sum of its arrondissements */
		{ "dep:85", 2.5 },
		{ "dep:44", 1.5 },
		{ "reg:52", 4 },
		{ "fr", 5 }, /* five GPs, each counted once */
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		vg_agg_value v = agg_value_of(S, "gp_count_rpps", want[i].terr, "2022");
		cr_assert_float_eq(v.value, want[i].v, 1e-12, "%s: %.15g",
				   want[i].terr, v.value);
	}

	/* gp_density_rpps over the populations légales of the same period
	 * (the worked example's plugin on the shared INSEE file). */
	run_ok("health_densities", "{\"period\": \"2022\"}", 0);
	vg_agg_value pop = agg_value_of(S, "population", "com:85146", "2022");
	vg_agg_value d = agg_value_of(S, "gp_density_rpps", "com:85146", "2022");
	cr_assert_float_eq(d.value, (1 + 0.5 + 1.0 / 3) / pop.value * 1e5,
			   1e-9);
	vg_agg_value pop85 = agg_value_of(S, "population", "dep:85", "2022");
	vg_agg_value d85 = agg_value_of(S, "gp_density_rpps", "dep:85", "2022");
	cr_assert_float_eq(d85.value, 2.5 / pop85.value * 1e5, 1e-9,
			   "%.9f", d85.value);
	cr_assert(!d85.cov.partial);
	cr_assert_eq(d85.cov.with_data, d85.cov.members);
}
