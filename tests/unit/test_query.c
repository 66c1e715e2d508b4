/* The aggregation engine (include/vigie/query.h): the real populations
 * aggregated to every département, région, EPCI and France against the
 * official INSEE totals; Paris from its arrondissements or as published;
 * a holder above the leaves; ratio of sums; wmean on the real APL file;
 * suppressed members, perimeters, min/max/none, statuses and as_of. */
#include <math.h>

#include "helpers.h"
#include "vigie/common.h"
#include "vigie/csv.h"
#include "vigie/io.h"
#include "vigie/query.h"

/* ---- helpers ---------------------------------------------------------- */

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

/* A file of tests/fixtures/real (VIGIE_ROOT is the repo root, else the
 * tests run from it). */
static const char *real_fixture(const char *name)
{
	static char buf[4][1024];
	static int next;
	char *b = buf[next++ % 4];
	snprintf(b, sizeof(buf[0]), "%s/tests/fixtures/real/%s",
		 env_or("VIGIE_ROOT", "."), name);
	return b;
}

static vg_store *open_store(const char *dir)
{
	vg_store *s = NULL;
	OK(vg_store_open(&s, dir, NULL, &E));
	return s;
}

/* The report is 16 KiB: static rather than on the stack. */
static vg_import_report R;

/* Definitions are dated early so later batches (time 0: now) are in
 * order. */
#define T_DEFS ((int64_t)1000000000) /* 2001-09-09 */

/* The COG 2024 territories (36 355: communes, arrondissements, EPCI,
 * départements, régions, France; plus 1 991 old commune codes), committed as a fixture so tests need
 * not run the conversion script. */
static void import_real_territories(vg_store *s)
{
	vg_import_opts o = { .published = T_DEFS };
	OK(vg_import_territories(s, real_fixture("territories_cog2024.csv"),
				 &o, &R, &E));
	cr_assert_eq(R.commit.territories, 38346);
}

/* ...plus `population` (sum) and `population_totale` (none), 2022. */
static void import_real_populations(vg_store *s)
{
	import_real_territories(s);
	vg_import_opts o = { .published = T_DEFS };
	OK(vg_import_indicators(s, real_fixture("indicators.json"), &o, &R,
				&E));
	o.published = T_DEFS + 86400;
	OK(vg_import_points(s, real_fixture("population_2022.csv"), &o, &R,
			    &E));
	cr_assert_eq(R.bad_rows, 0);
	/* 34 960 communes and arrondissements, both indicators */
	cr_assert_eq(R.commit.points_new, 2 * 34960);
}

/* One engine context over its own read transaction. */
typedef struct q {
	vg_read *r;
	vg_agg_ctx *c;
} q;

static void q_open(q *x, vg_store *s, const char *ind, const char *period,
		   int64_t as_of)
{
	uint32_t i;
	OK(vg_read_begin(s, &x->r, &E));
	OK(vg_read_indicator_id(x->r, ind, &i, &E));
	OK(vg_agg_ctx_new(x->r, i, per(period), as_of, &x->c, &E));
}

static uint32_t q_terr(q *x, const char *code)
{
	uint32_t t;
	OK(vg_read_territory_id(x->r, code, &t, &E));
	return t;
}

static vg_agg_value q_at(q *x, const char *code)
{
	vg_agg_value v;
	OK(vg_agg_value_at(x->c, q_terr(x, code), &v, &E));
	return v;
}

static void q_close(q *x)
{
	/* The context borrows the read: free it first. */
	vg_agg_ctx_free(x->c);
	vg_read_end(x->r);
}

/* The value of `ind` at `terr`, in one call. */
static vg_agg_value agg_at(vg_store *s, const char *ind, const char *period,
			   int64_t as_of, const char *terr)
{
	q x;
	q_open(&x, s, ind, period, as_of);
	vg_agg_value v = q_at(&x, terr);
	q_close(&x);
	return v;
}

static bool rel_close(double got, double want, double tol)
{
	return fabs(got - want) <= tol * fabs(want);
}

/* A computed value with full coverage. */
static void assert_complete(const vg_agg_value *v, const char *code)
{
	cr_assert_eq(v->source, VG_SOURCE_COMPUTED, "%s: source %s", code,
		     vg_value_source_name(v->source));
	cr_assert_eq(v->status, VG_STATUS_OK, "%s: status %s", code,
		     vg_status_name(v->status));
	cr_assert_not(v->cov.partial, "%s: partial", code);
	cr_assert_gt(v->cov.members, 0, "%s: no members", code);
	cr_assert_eq(v->cov.with_data, v->cov.members, "%s: %u/%u", code,
		     v->cov.with_data, v->cov.members);
	cr_assert_eq(v->cov.suppressed, 0, "%s", code);
}

/* ---- official totals (ensemble~Departements.csv, ~Regions.csv) -------- */

typedef struct official {
	char code[VG_CODE_MAX]; /* canonical: dep:2A, reg:84 */
	double pop;
} official;

/* Read `Population municipale` by `code_col` from a popref file into
 * out[max], with codes prefixed by `level`; returns the row count. */
static size_t read_official(const char *file, const char *code_col,
			    const char *level, official *out, size_t max)
{
	char path[256];
	snprintf(path, sizeof(path), "population/popref2025_rp2022/%s", file);
	vg_csv *c;
	OK(vg_csv_open_file(&c, shared_path(path),
			    &(vg_csv_opts){ .header = true }, &E));
	int ccode = vg_csv_field_index(c, code_col);
	int cpop = vg_csv_field_index(c, "Population municipale");
	cr_assert(ccode >= 0 && cpop >= 0, "%s: columns not found", file);
	vg_csv_row *row;
	size_t n = 0;
	int rc;
	while ((rc = vg_csv_next(c, &row, &E)) == 1) {
		cr_assert_lt(n, max, "%s: too many rows", file);
		snprintf(out[n].code, VG_CODE_MAX, "%s:%s", level,
			 row->fields[ccode].ptr);
		char *end;
		out[n].pop = strtod(row->fields[cpop].ptr, &end);
		cr_assert(*end == '\0' && end != row->fields[cpop].ptr,
			  "%s:%ld: population '%s'", file, row->line,
			  row->fields[cpop].ptr);
		n++;
	}
	cr_assert_eq(rc, 0, "%s", E.msg);
	vg_csv_close(c);
	return n;
}

/* ---- 1. real populations against the official totals ------------------ */

/* Every département and région computed from the communes' values equals
 * INSEE's own total of the same release, to the inhabitant. */
Test(real_population, departements_regions_france, .timeout = 120)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	import_real_populations(s);

	official deps[128], regs[32];
	size_t nd = read_official("ensemble~Departements.csv",
				  "Code département", "dep", deps, 128);
	size_t nr = read_official("ensemble~Regions.csv", "Code région", "reg",
				  regs, 32);
	/* Mayotte (976 / région 06) is not in this release */
	cr_assert_eq(nd, 100);
	cr_assert_eq(nr, 17);

	q x;
	q_open(&x, s, "population", "2022", VG_LATEST);
	double sum_regs = 0;
	for (size_t i = 0; i < nd; i++) {
		vg_agg_value v = q_at(&x, deps[i].code);
		assert_complete(&v, deps[i].code);
		cr_assert_eq(v.value, deps[i].pop, "%s: %.0f, official %.0f",
			     deps[i].code, v.value, deps[i].pop);
		/* sum: no weights */
		cr_assert(isnan(v.cov.weight_total) &&
				  isnan(v.cov.weight_covered),
			  "%s", deps[i].code);
	}
	for (size_t i = 0; i < nr; i++) {
		vg_agg_value v = q_at(&x, regs[i].code);
		assert_complete(&v, regs[i].code);
		cr_assert_eq(v.value, regs[i].pop, "%s: %.0f, official %.0f",
			     regs[i].code, v.value, regs[i].pop);
		sum_regs += regs[i].pop;
	}
	/* Spot checks with the numbers written out, in case both the file
	 * and the engine were wrong the same way. */
	cr_assert_eq(q_at(&x, "dep:75").value, 2113705);
	cr_assert_eq(q_at(&x, "dep:85").value, 706343);
	vg_agg_value paris = q_at(&x, "dep:75");
	cr_assert_eq(paris.cov.members, 20); /* the arrondissements */

	/* France: every leaf but Mayotte's 17 communes has a value. */
	vg_agg_value fr = q_at(&x, "fr");
	cr_assert_eq(fr.source, VG_SOURCE_COMPUTED);
	cr_assert_eq(fr.value, 67760573, "%.0f", fr.value);
	cr_assert_eq(fr.value, sum_regs);
	cr_assert_eq(fr.status, VG_STATUS_OK);
	cr_assert(fr.cov.partial);
	cr_assert_eq(fr.cov.members, 34977, "%u", fr.cov.members);
	cr_assert_eq(fr.cov.with_data, 34960, "%u", fr.cov.with_data);

	/* Mayotte: members but no value at all, and no silent zero. */
	const char *may[] = { "dep:976", "reg:06" };
	for (int i = 0; i < 2; i++) {
		vg_agg_value m = q_at(&x, may[i]);
		cr_assert(isnan(m.value), "%s: %g", may[i], m.value);
		cr_assert_eq(m.status, VG_STATUS_MISSING, "%s", may[i]);
		cr_assert_neq(m.source, VG_SOURCE_PUBLISHED, "%s", may[i]);
		cr_assert(m.cov.partial, "%s", may[i]);
		cr_assert_eq(m.cov.members, 17, "%s", may[i]);
		cr_assert_eq(m.cov.with_data, 0, "%s", may[i]);
	}
	q_close(&x);
	vg_store_close(s);
	rm_tree(dir);
}

typedef struct epci_acc {
	size_t n, nan;
	double sum;
	uint32_t members;
} epci_acc;

static int epci_cb(void *ud, const vg_agg_value *v)
{
	epci_acc *a = ud;
	a->n++;
	a->members += v->cov.members;
	cr_assert_eq(v->source, VG_SOURCE_COMPUTED);
	if (isnan(v->value)) {
		a->nan++;
		cr_assert_eq(v->status, VG_STATUS_MISSING);
		cr_assert(v->cov.partial);
	} else {
		cr_assert_not(v->cov.partial);
		a->sum += v->value;
	}
	return 0;
}

typedef struct no_epci {
	vg_read *r;
	uint32_t pop;
	size_t n;
	double sum;
} no_epci;

/* Communes with no EPCI among their parents (islands): their population. */
static int no_epci_cb(void *ud, uint32_t id)
{
	no_epci *a = ud;
	vg_territory t;
	OK(vg_read_territory(a->r, id, &t, &E));
	bool in_epci = t.nsuccessors > 0; /* old codes: not communes now */
	for (size_t i = 0; i < t.nparents; i++)
		in_epci |= strncmp(t.parents[i], "epci:", 5) == 0;
	vg_territory_clear(&t);
	if (in_epci)
		return 0;
	vg_point p;
	OK(vg_read_point(a->r, a->pop, id, per("2022"), VG_LATEST, &p));
	a->n++;
	a->sum += p.value;
	return 0;
}

/* The EPCI partition France but for four island communes: the sum over
 * every EPCI plus those communes is France's total. */
Test(real_population, every_epci, .timeout = 120)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	import_real_populations(s);
	q x;
	q_open(&x, s, "population", "2022", VG_LATEST);
	uint16_t lepci;
	OK(vg_read_level_id(x.r, "epci", &lepci, &E));
	epci_acc a = { 0 };
	OK(vg_aggregate_level(x.c, lepci, 0, epci_cb, &a, &E));
	cr_assert_eq(a.n, 1255);
	cr_assert_eq(a.nan, 5, "Mayotte has 5 EPCI, %zu without value",
		     a.nan);
	no_epci ne = { .r = x.r };
	OK(vg_read_indicator_id(x.r, "population", &ne.pop, &E));
	OK(vg_read_territories(x.r, "com", no_epci_cb, &ne));
	cr_assert_eq(ne.n, 4); /* Bréhat, Sein, Ouessant, Yeu */
	cr_assert_eq(a.members + ne.n, 34977, "%u", a.members);
	cr_assert_eq(a.sum + ne.sum, 67760573, "%.0f + %.0f", a.sum, ne.sum);

	/* within: the EPCI of one département only */
	epci_acc b = { 0 };
	OK(vg_aggregate_level(x.c, lepci, q_terr(&x, "dep:976"), epci_cb, &b,
			      &E));
	cr_assert_eq(b.n, 5);
	cr_assert_eq(b.nan, 5);
	q_close(&x);
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- 2. Paris: computed from its arrondissements, or published -------- */

Test(real_population, paris, .timeout = 120)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	import_real_populations(s);
	official deps[128];
	size_t nd = read_official("ensemble~Departements.csv",
				  "Code département", "dep", deps, 128);
	double off75 = NAN;
	for (size_t i = 0; i < nd; i++)
		if (!strcmp(deps[i].code, "dep:75"))
			off75 = deps[i].pop;
	cr_assert_eq(off75, 2113705);

	/* The source gives Paris by arrondissement only. */
	vg_agg_value v = agg_at(s, "population", "2022", VG_LATEST,
				"com:75056");
	assert_complete(&v, "com:75056");
	cr_assert_eq(v.value, off75, "%.0f", v.value);
	cr_assert_eq(v.cov.members, 20);

	/* Publish a value for the commune itself (not the census one, so
	 * which one is answered shows). */
	vg_batch *b;
	OK(vg_batch_new(s, &(vg_batch_opts){ .origin = "paris" }, &b, &E));
	OK(vg_batch_point(b, "population", "com:75056", per("2022"), 2100000,
			  VG_STATUS_PROVISIONAL, &E));
	OK(vg_batch_commit(b, NULL, &E));

	q x;
	q_open(&x, s, "population", "2022", VG_LATEST);
	v = q_at(&x, "com:75056");
	cr_assert_eq(v.source, VG_SOURCE_PUBLISHED);
	cr_assert_eq(v.value, 2100000);
	cr_assert_eq(v.status, VG_STATUS_PROVISIONAL);
	cr_assert_eq(v.cov.members, 0); /* zero for published values */
	/* The arrondissements keep their own values: the commune's must not
	 * be added on top of them. */
	v = q_at(&x, "dep:75");
	assert_complete(&v, "dep:75");
	cr_assert_eq(v.value, off75, "%.0f", v.value);
	cr_assert_eq(q_at(&x, "fr").value, 67760573);
	q_close(&x);
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- a small synthetic geography ------------------------------------- */

/* France > reg:52 > dep:85 (2 communes, one in an EPCI), dep:44 (1);
 * reg:11 > dep:75 > com:75056 > 20 arrondissements; a perimeter crossing
 * dep:85 and dep:44. Dated early so tests can add dated vintages. */
static void define_geo(vg_store *s)
{
	vg_batch *b;
	OK(vg_batch_new(s, &(vg_batch_opts){ .origin = "geo", .time = 1e9 },
			&b, &E));
	vg_territory t[] = {
		make_terr("fr", "France", NULL, NULL),
		make_terr("reg:52", "Pays de la Loire", "fr", NULL),
		make_terr("dep:85", "Vendée", "reg:52", NULL),
		make_terr("dep:44", "Loire-Atlantique", "reg:52", NULL),
		make_terr("epci:248500589", "CC Terres de Montaigu", "dep:85",
			  NULL),
		make_terr("com:85146", "Montaigu-Vendée", "epci:248500589",
			  "dep:85"),
		make_terr("com:85194", "Les Sables-d'Olonne", "dep:85", NULL),
		make_terr("com:44109", "Nantes", "dep:44", NULL),
		make_terr("reg:11", "Île-de-France", "fr", NULL),
		make_terr("dep:75", "Paris", "reg:11", NULL),
		make_terr("com:75056", "Paris", "dep:75", NULL),
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++)
		OK(vg_batch_territory(b, &t[i], &E));
	for (int a = 1; a <= 20; a++) {
		char code[VG_CODE_MAX], name[64];
		snprintf(code, sizeof(code), "arm:751%02d", a);
		snprintf(name, sizeof(name), "Paris %d", a);
		vg_territory arm = make_terr(code, name, "com:75056", "dep:75");
		OK(vg_batch_territory(b, &arm, &E));
	}
	vg_territory cls = make_terr("cls:estuaire", "CLS de l'estuaire", NULL,
				     NULL);
	char members[2][VG_CODE_MAX] = { "com:85146", "com:44109" };
	cls.members = members;
	cls.nmembers = 2;
	OK(vg_batch_territory(b, &cls, &E));
	vg_indicator ind[] = {
		make_ind("population", "sum"),
		make_ind("gp_count", "sum"),
		make_ind("gp_density", "ratio(gp_count, population, 1e5)"),
		make_ind("temp_min", "min"),
		make_ind("temp_max", "max"),
		make_ind("population_totale", "none"),
	};
	for (size_t i = 0; i < sizeof(ind) / sizeof(*ind); i++)
		OK(vg_batch_indicator(b, &ind[i], &E));
	OK(vg_batch_commit(b, NULL, &E));
}

typedef struct pt {
	const char *ind, *terr;
	double v;
	vg_status st;
} pt;

/* Write points for 2022 in one batch published at `time` (0: now). */
static void put(vg_store *s, int64_t time, const pt *p, size_t n)
{
	vg_batch *b;
	OK(vg_batch_new(s, &(vg_batch_opts){ .origin = "t", .time = time }, &b,
			&E));
	for (size_t i = 0; i < n; i++)
		OK(vg_batch_point(b, p[i].ind, p[i].terr, per("2022"), p[i].v,
				  p[i].st, &E));
	OK(vg_batch_commit(b, NULL, &E));
}

#define PUT(s, time, ...)                                             \
	do {                                                          \
		const pt pts_[] = { __VA_ARGS__ };                    \
		put(s, time, pts_, sizeof(pts_) / sizeof(*pts_));     \
	} while (0)

/* ---- 3. a holder above the leaves ------------------------------------ */

/* Paris published only as commune 75056: its 20 arrondissements are the
 * leaves of dep:75 and all are covered by it, counted once. */
Test(synthetic, holder_above_leaves)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_geo(s);
	PUT(s, 0, { "population", "com:75056", 2113705, VG_STATUS_OK },
	    { "population", "com:85146", 20754, VG_STATUS_OK },
	    { "population", "com:85194", 45000, VG_STATUS_OK },
	    { "population", "com:44109", 320000, VG_STATUS_OK });
	q x;
	q_open(&x, s, "population", "2022", VG_LATEST);
	const char *up[] = { "dep:75", "reg:11" };
	for (int i = 0; i < 2; i++) {
		vg_agg_value v = q_at(&x, up[i]);
		assert_complete(&v, up[i]);
		cr_assert_eq(v.value, 2113705, "%s: %.0f", up[i], v.value);
		cr_assert_eq(v.cov.members, 20, "%s", up[i]);
		cr_assert_eq(v.cov.with_data, 20, "%s", up[i]);
	}
	vg_agg_value fr = q_at(&x, "fr");
	assert_complete(&fr, "fr");
	cr_assert_eq(fr.value, 2113705 + 20754 + 45000 + 320000);
	cr_assert_eq(fr.cov.members, 23);
	/* The commune itself: published. An arrondissement has nothing of
	 * its own and nothing below it. */
	cr_assert_eq(q_at(&x, "com:75056").source, VG_SOURCE_PUBLISHED);
	vg_agg_value a1 = q_at(&x, "arm:75101");
	cr_assert(isnan(a1.value));
	cr_assert_eq(a1.status, VG_STATUS_MISSING);
	cr_assert(a1.cov.partial);
	q_close(&x);
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- 4. ratio of sums ------------------------------------------------ */

/* gp 9 and 1 for 1 000 and 9 000 inhabitants: 10 / 10 000 * 1e5 = 100,
 * whereas the mean of the communes' densities (900 and 11.1) is 455.6. */
Test(synthetic, ratio_of_sums)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_geo(s);
	PUT(s, 0, { "gp_count", "com:85146", 9, VG_STATUS_OK },
	    { "population", "com:85146", 1000, VG_STATUS_OK },
	    { "gp_count", "com:85194", 1, VG_STATUS_OK },
	    { "population", "com:85194", 9000, VG_STATUS_OK },
	    /* Nantes: inhabitants, but its GP count is secret */
	    { "gp_count", "com:44109", 0, VG_STATUS_SUPPRESSED },
	    { "population", "com:44109", 5000, VG_STATUS_OK });
	q x;
	q_open(&x, s, "gp_density", "2022", VG_LATEST);
	vg_agg_value v = q_at(&x, "dep:85");
	assert_complete(&v, "dep:85");
	cr_assert_eq(v.value, 100.0, "%.17g", v.value);
	cr_assert_neq(v.value, (9.0 / 1000 * 1e5 + 1.0 / 9000 * 1e5) / 2);
	cr_assert_eq(v.cov.weight_total, 10000);
	cr_assert_eq(v.cov.weight_covered, 10000);

	/* The région: Nantes's inhabitants are in the denominator's total
	 * but not behind the result, which stays 10 / 10 000. */
	v = q_at(&x, "reg:52");
	cr_assert_eq(v.source, VG_SOURCE_COMPUTED);
	cr_assert_eq(v.value, 100.0, "%.17g", v.value);
	cr_assert(v.cov.partial);
	cr_assert_eq(v.cov.members, 3);
	cr_assert_eq(v.cov.with_data, 2);
	cr_assert_eq(v.cov.suppressed, 1);
	cr_assert_eq(v.cov.weight_total, 15000);
	cr_assert_eq(v.cov.weight_covered, 10000);

	/* A single commune's own inputs give its ratio. */
	v = q_at(&x, "com:85194");
	cr_assert_eq(v.source, VG_SOURCE_COMPUTED);
	cr_assert(rel_close(v.value, 1.0 / 9000 * 1e5, 1e-12), "%.17g",
		  v.value);
	q_close(&x);
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- 5. wmean on the real APL file ----------------------------------- */

/* What the test computes itself from the CSV rows of one département. */
typedef struct dep_apl {
	char code[8];
	double num, den; /* sum(apl * pop_std), sum(pop_std) */
	uint32_t valued, empty;
} dep_apl;

typedef struct apl_ctx {
	vg_read *r;
	dep_apl *deps;
	size_t ndeps;
	size_t checked;
} apl_ctx;

static dep_apl *dep_of(dep_apl *deps, size_t *n, const char *commune)
{
	/* DOM codes are 3 digits (971..976), others 2 (01, 2A, 75...) */
	char code[8];
	snprintf(code, sizeof(code), "%.*s",
		 strncmp(commune, "97", 2) == 0 ? 3 : 2, commune);
	for (size_t i = 0; i < *n; i++)
		if (!strcmp(deps[i].code, code))
			return &deps[i];
	cr_assert_lt(*n, 128);
	dep_apl *d = &deps[(*n)++];
	memset(d, 0, sizeof(*d));
	snprintf(d->code, sizeof(d->code), "%s", code);
	return d;
}

static int apl_dep_cb(void *ud, const vg_agg_value *v)
{
	apl_ctx *a = ud;
	const char *code = vg_read_territory_code(a->r, v->terr);
	cr_assert_not_null(code);
	cr_assert(strncmp(code, "dep:", 4) == 0, "%s", code);
	dep_apl *d = NULL;
	for (size_t i = 0; i < a->ndeps; i++)
		if (!strcmp(a->deps[i].code, code + 4))
			d = &a->deps[i];
	cr_assert_not_null(d, "%s: no APL row", code);
	a->checked++;
	cr_assert_eq(v->source, VG_SOURCE_COMPUTED, "%s", code);
	cr_assert_eq(v->cov.with_data, d->valued, "%s: %u, expected %u", code,
		     v->cov.with_data, d->valued);
	cr_assert_eq(v->cov.suppressed, d->empty, "%s: %u, expected %u", code,
		     v->cov.suppressed, d->empty);
	cr_assert_geq(v->cov.members, d->valued + d->empty, "%s", code);
	/* Leaves without a row (communes created since 2021) or with empty
	 * cells make it partial; they never count as zero. */
	cr_assert_eq(v->cov.partial, v->cov.members > d->valued, "%s", code);
	if (d->valued == 0) {
		cr_assert(isnan(v->value), "%s: %g", code, v->value);
		cr_assert_eq(v->status, VG_STATUS_MISSING, "%s", code);
		return 0;
	}
	double want = d->num / d->den;
	cr_assert(rel_close(v->value, want, 1e-9), "%s: %.17g, expected %.17g",
		  code, v->value, want);
	cr_assert_eq(v->status, VG_STATUS_OK, "%s", code);
	cr_assert(rel_close(v->cov.weight_total, d->den, 1e-9), "%s", code);
	cr_assert(rel_close(v->cov.weight_covered, d->den, 1e-9), "%s", code);
	return 0;
}

/* Parse one APL cell: a decimal with `.`, or empty (no value). */
static bool apl_cell(const vg_csv_row *row, int col, double *out)
{
	const char *s = row->fields[col].ptr;
	if (!*s)
		return false;
	char *end;
	*out = strtod(s, &end);
	cr_assert(*end == '\0' && isfinite(*out), "line %ld: '%s'", row->line,
		  s);
	return true;
}

Test(real_apl, wmean_by_departement, .timeout = 120)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	import_real_territories(s);
	vg_batch *b;
	OK(vg_batch_new(s, &(vg_batch_opts){ .origin = "apl" }, &b, &E));
	vg_indicator apl = make_ind("apl", "wmean(apl, pop_std)");
	vg_indicator w = make_ind("pop_std", "sum");
	cr_assert_eq(apl.agg.kind, VG_AGG_WMEAN);
	OK(vg_batch_indicator(b, &apl, &E));
	OK(vg_batch_indicator(b, &w, &E));

	vg_csv *c;
	OK(vg_csv_open_file(&c, shared_path("health/APL_mg_2021~Sheet1.csv"),
			    &(vg_csv_opts){ .header = true, .sep = ';' }, &E));
	int ccode = vg_csv_field_index(c, "Code commune");
	int capl = vg_csv_field_index(
		c, "APL aux médecins généralistes (sans borne d'âge)");
	int cw = vg_csv_field_index(c, "Population standardisée par la "
				       "consommation de soins par tranche "
				       "d'âge");
	cr_assert(ccode >= 0 && capl >= 0 && cw >= 0, "APL columns");

	/* The APL file is in the 2021 geography: the codes of communes merged
	 * since are old codes of the COG 2024 (passage table), stored as
	 * published and counted in the commune that replaced them; 3 codes
	 * are in neither and are skipped. Paris, Lyon and Marseille come by
	 * arrondissement. */
	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	static dep_apl deps[128];
	size_t ndeps = 0, rows = 0, skipped = 0, empty = 0, olds = 0;
	uint32_t ngrp = vg_read_territory_max(r);
	struct apl_grp {
		double num, den;
		unsigned rows;
		bool bad;
	} *grp = calloc(ngrp, sizeof(*grp));
	cr_assert_not_null(grp);
	vg_period p2021 = per("2021");
	vg_csv_row *row;
	int rc;
	while ((rc = vg_csv_next(c, &row, &E)) == 1) {
		rows++;
		const char *insee = row->fields[ccode].ptr;
		char code[VG_CODE_MAX];
		uint32_t id;
		snprintf(code, sizeof(code), "com:%s", insee);
		if (vg_read_territory_id(r, code, &id, NULL)) {
			snprintf(code, sizeof(code), "arm:%s", insee);
			if (vg_read_territory_id(r, code, &id, NULL)) {
				skipped++;
				continue;
			}
		}
		double va = 0, vw = 0;
		bool ha = apl_cell(row, capl, &va), hw = apl_cell(row, cw, &vw);
		OK(vg_batch_point(b, "apl", code, p2021, va,
				  ha ? VG_STATUS_OK : VG_STATUS_SUPPRESSED,
				  &E));
		OK(vg_batch_point(b, "pop_std", code, p2021, vw,
				  hw ? VG_STATUS_OK : VG_STATUS_SUPPRESSED,
				  &E));
		/* An old code (merged since 2021) belongs with the commune
		 * that replaced it: one member, all its rows or none. */
		const vg_passage *sp;
		uint32_t g = id;
		if (vg_read_territory_successors(r, id, &sp)) {
			cr_assert_eq(sp[0].weight, 1.0, "%s", code);
			g = sp[0].terr;
			olds++;
		}
		grp[g].rows++;
		if (ha && hw) {
			grp[g].num += va * vw;
			grp[g].den += vw;
		} else {
			grp[g].bad = true;
		}
	}
	cr_assert_eq(rc, 0, "%s", E.msg);
	vg_csv_close(c);
	for (uint32_t g = 1; g < ngrp; g++) {
		if (!grp[g].rows)
			continue;
		const char *gc = vg_read_territory_code(r, g);
		dep_apl *d = dep_of(deps, &ndeps, strchr(gc, ':') + 1);
		if (!grp[g].bad) {
			d->num += grp[g].num;
			d->den += grp[g].den;
			d->valued++;
		} else {
			d->empty++;
			empty++;
		}
	}
	free(grp);
	vg_read_end(r);
	cr_assert_eq(olds, 21);
	cr_assert_eq(rows, 34997);
	/* 24 codes are not communes of the COG 2024; 21 of them are old
	 * codes (passage table), stored as published. */
	cr_assert_eq(skipped, 3, "%zu codes not in the COG 2024", skipped);
	cr_assert_eq(empty, 23); /* 6 in the Meuse, Mayotte's 17 */
	OK(vg_batch_commit(b, NULL, &E));

	q x;
	q_open(&x, s, "apl", "2021", VG_LATEST);
	uint16_t ldep;
	OK(vg_read_level_id(x.r, "dep", &ldep, &E));
	apl_ctx a = { x.r, deps, ndeps, 0 };
	OK(vg_aggregate_level(x.c, ldep, 0, apl_dep_cb, &a, &E));
	cr_assert_eq(a.checked, 101);

	/* The same, with the numbers written out (computed separately). */
	vg_agg_value v = q_at(&x, "dep:55");
	cr_assert(rel_close(v.value, 3.4772853816589575, 1e-9), "%.17g",
		  v.value);
	cr_assert(v.cov.partial); /* the six villages détruits of Verdun */
	cr_assert_eq(v.cov.members, 499);
	cr_assert_eq(v.cov.with_data, 493);
	cr_assert_eq(v.cov.suppressed, 6);
	v = q_at(&x, "dep:75");
	cr_assert(rel_close(v.value, 4.545935096261893, 1e-9), "%.17g",
		  v.value);
	cr_assert_not(v.cov.partial);
	cr_assert_eq(v.cov.with_data, 20);
	/* Oullins-Pierre-Bénite (2024): Oullins 3.328 for 26 054.499 and
	 * Pierre-Bénite (old code 69152) 7.647 for 10 025.193, as published
	 * in 2021; not Oullins' 3.328 alone. */
	v = q_at(&x, "com:69149");
	cr_assert_eq(v.source, VG_SOURCE_COMPUTED);
	cr_assert(rel_close(v.value, 4.52808808742048, 1e-9), "%.17g",
		  v.value);
	cr_assert_eq(v.cov.via_passage, 1);
	cr_assert_eq(v.cov.members, 1);
	cr_assert(rel_close(v.cov.weight_total, 36079.692, 1e-9));
	v = q_at(&x, "dep:976");
	cr_assert(isnan(v.value));
	cr_assert_eq(v.status, VG_STATUS_MISSING);
	cr_assert(v.cov.partial);
	cr_assert_eq(v.cov.suppressed, 17);
	cr_assert_eq(v.cov.weight_total, 0);
	q_close(&x);
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- 6. a suppressed member ------------------------------------------ */

Test(synthetic, suppressed_member_partial)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_geo(s);
	PUT(s, 0, { "population", "com:85146", 100, VG_STATUS_OK },
	    { "population", "com:85194", 200, VG_STATUS_OK },
	    { "population", "com:44109", 0, VG_STATUS_SUPPRESSED });
	q x;
	q_open(&x, s, "population", "2022", VG_LATEST);
	vg_agg_value v = q_at(&x, "reg:52");
	cr_assert_eq(v.source, VG_SOURCE_COMPUTED);
	cr_assert_eq(v.value, 300);
	cr_assert_eq(v.status, VG_STATUS_OK);
	cr_assert(v.cov.partial);
	cr_assert_eq(v.cov.members, 3);
	cr_assert_eq(v.cov.with_data, 2);
	cr_assert_eq(v.cov.suppressed, 1);
	/* Only the suppressed commune below: no value, never zero. */
	v = q_at(&x, "dep:44");
	cr_assert(isnan(v.value), "%g", v.value);
	cr_assert_eq(v.status, VG_STATUS_MISSING);
	cr_assert(v.cov.partial);
	cr_assert_eq(v.cov.members, 1);
	cr_assert_eq(v.cov.with_data, 0);
	cr_assert_eq(v.cov.suppressed, 1);
	/* The suppressed point itself is published, as suppressed. */
	v = q_at(&x, "com:44109");
	cr_assert_eq(v.source, VG_SOURCE_PUBLISHED);
	cr_assert_eq(v.status, VG_STATUS_SUPPRESSED);
	cr_assert(isnan(v.value));
	q_close(&x);
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- 7. a custom perimeter ------------------------------------------- */

Test(synthetic, perimeter_across_departements)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_geo(s);
	PUT(s, 0, { "population", "com:85146", 20754, VG_STATUS_OK },
	    { "population", "com:85194", 45000, VG_STATUS_OK },
	    { "population", "com:44109", 320000, VG_STATUS_OK },
	    { "gp_count", "com:85146", 12, VG_STATUS_OK },
	    { "gp_count", "com:44109", 400, VG_STATUS_OK });
	q x;
	q_open(&x, s, "population", "2022", VG_LATEST);
	vg_agg_value v = q_at(&x, "cls:estuaire");
	assert_complete(&v, "cls:estuaire");
	cr_assert_eq(v.value, 20754 + 320000, "%.0f", v.value);
	cr_assert_eq(v.cov.members, 2);
	q_close(&x);
	v = agg_at(s, "gp_density", "2022", VG_LATEST, "cls:estuaire");
	assert_complete(&v, "cls:estuaire");
	cr_assert(rel_close(v.value, 412.0 / 340754 * 1e5, 1e-12), "%.17g",
		  v.value);
	cr_assert_eq(v.cov.weight_total, 340754);
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- 8. min, max, none and the computed status ------------------------ */

Test(synthetic, min_max_none_status)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_geo(s);
	PUT(s, 0, { "temp_min", "com:85146", 10, VG_STATUS_OK },
	    { "temp_min", "com:85194", 5, VG_STATUS_PROVISIONAL },
	    { "temp_min", "com:44109", 20, VG_STATUS_ESTIMATED },
	    { "temp_max", "com:85146", 10, VG_STATUS_OK },
	    { "temp_max", "com:85194", 5, VG_STATUS_PROVISIONAL },
	    { "temp_max", "com:44109", 20, VG_STATUS_OK },
	    { "population_totale", "com:85146", 21000, VG_STATUS_OK },
	    { "population_totale", "com:85194", 46000, VG_STATUS_OK });

	/* The provisional commune is not the extreme, yet the computed
	 * value depends on it: the status is the worst member's. */
	vg_agg_value v = agg_at(s, "temp_min", "2022", VG_LATEST, "dep:85");
	cr_assert_eq(v.value, 5);
	cr_assert_eq(v.status, VG_STATUS_PROVISIONAL);
	v = agg_at(s, "temp_max", "2022", VG_LATEST, "dep:85");
	cr_assert_eq(v.source, VG_SOURCE_COMPUTED);
	cr_assert_eq(v.value, 10);
	cr_assert_eq(v.status, VG_STATUS_PROVISIONAL);
	cr_assert_not(v.cov.partial);
	v = agg_at(s, "temp_max", "2022", VG_LATEST, "reg:52");
	cr_assert_eq(v.value, 20);
	cr_assert_eq(v.status, VG_STATUS_PROVISIONAL);
	/* estimated is worse than provisional */
	v = agg_at(s, "temp_min", "2022", VG_LATEST, "reg:52");
	cr_assert_eq(v.value, 5);
	cr_assert_eq(v.status, VG_STATUS_ESTIMATED);
	v = agg_at(s, "temp_min", "2022", VG_LATEST, "dep:44");
	cr_assert_eq(v.value, 20);
	cr_assert_eq(v.status, VG_STATUS_ESTIMATED);
	/* Nothing within dep:75 for min: members, no value, and the
	 * answer says that nothing is stored there. */
	v = agg_at(s, "temp_min", "2022", VG_LATEST, "dep:75");
	cr_assert(isnan(v.value));
	cr_assert_eq(v.cov.members, 20);
	cr_assert_eq(v.cov.missing, 20);
	cr_assert(v.cov.partial);
	cr_assert_eq(v.why, VG_WHY_NO_DATA);

	/* `none`: published values only, nothing computed. */
	v = agg_at(s, "population_totale", "2022", VG_LATEST, "dep:85");
	cr_assert_eq(v.source, VG_SOURCE_NONE);
	cr_assert(isnan(v.value), "%g", v.value);
	cr_assert_eq(v.status, VG_STATUS_MISSING);
	cr_assert_eq(v.cov.members, 0);
	v = agg_at(s, "population_totale", "2022", VG_LATEST, "com:85194");
	cr_assert_eq(v.source, VG_SOURCE_PUBLISHED);
	cr_assert_eq(v.value, 46000);
	vg_store_close(s);
	rm_tree(dir);
}

/* A suppressed member is not an extreme: min and max skip it. */
Test(synthetic, min_max_skip_suppressed)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_geo(s);
	PUT(s, 0, { "temp_min", "com:85146", 10, VG_STATUS_OK },
	    { "temp_min", "com:85194", 0, VG_STATUS_SUPPRESSED },
	    { "temp_min", "com:44109", 20, VG_STATUS_OK });
	vg_agg_value v = agg_at(s, "temp_min", "2022", VG_LATEST, "reg:52");
	cr_assert_eq(v.value, 10);
	cr_assert_eq(v.status, VG_STATUS_OK);
	cr_assert(v.cov.partial);
	cr_assert_eq(v.cov.suppressed, 1);
	cr_assert_eq(v.cov.with_data, 2);
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- 9. as_of --------------------------------------------------------- */

Test(synthetic, as_of_before_revision)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_geo(s);
	int64_t t1, t2, before, between;
	vg_time_parse("2023-01-10T00:00:00Z", &t1);
	vg_time_parse("2024-01-10T00:00:00Z", &t2);
	vg_time_parse("2022-06-01", &before);
	vg_time_parse("2023-06-01", &between);
	PUT(s, t1, { "population", "com:85146", 20000, VG_STATUS_PROVISIONAL },
	    { "population", "com:85194", 45000, VG_STATUS_OK });
	PUT(s, t2, { "population", "com:85146", 20754, VG_STATUS_OK });

	vg_agg_value v = agg_at(s, "population", "2022", VG_LATEST, "dep:85");
	assert_complete(&v, "dep:85");
	cr_assert_eq(v.value, 20754 + 45000);
	v = agg_at(s, "population", "2022", between, "dep:85");
	cr_assert_eq(v.value, 20000 + 45000, "%.0f", v.value);
	cr_assert_eq(v.status, VG_STATUS_PROVISIONAL);
	cr_assert_not(v.cov.partial);
	/* Before anything was published: members, no value. */
	v = agg_at(s, "population", "2022", before, "dep:85");
	cr_assert(isnan(v.value));
	cr_assert_eq(v.status, VG_STATUS_MISSING);
	cr_assert_eq(v.cov.members, 2);
	cr_assert_eq(v.cov.with_data, 0);
	cr_assert(v.cov.partial);
	cr_assert_eq(v.why, VG_WHY_NO_DATA);
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- errors ----------------------------------------------------------- */

Test(synthetic, context_errors)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_geo(s);
	/* Rules may name indicators defined later (by a plugin that has not
	 * run yet): the store accepts this one, and the engine answers
	 * without a value, naming the missing input. */
	vg_batch *b;
	OK(vg_batch_new(s, NULL, &b, &E));
	vg_indicator bad = make_ind("bad_density", "ratio(nope, population)");
	OK(vg_batch_indicator(b, &bad, &E));
	OK(vg_batch_commit(b, NULL, &E));
	PUT(s, 0, { "population", "com:85146", 20000, VG_STATUS_OK });
	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	uint32_t pop, bid;
	OK(vg_read_indicator_id(r, "population", &pop, &E));
	OK(vg_read_indicator_id(r, "bad_density", &bid, &E));
	vg_agg_ctx *c = NULL;
	OK(vg_agg_ctx_new(r, bid, per("2022"), VG_LATEST, &c, &E));
	uint32_t dep85;
	OK(vg_read_territory_id(r, "dep:85", &dep85, &E));
	vg_agg_value u;
	OK(vg_agg_value_at(c, dep85, &u, &E));
	cr_assert(isnan(u.value));
	cr_assert_eq(u.why, VG_WHY_UNDEFINED_INPUT);
	cr_assert_eq(u.why_input, 0);
	char why[300];
	vg_agg_explain(r, bid, &u, why, sizeof(why));
	cr_assert(strstr(why, "'nope'") && strstr(why, "not defined"), "%s",
		  why);
	vg_agg_ctx_free(c);
	c = NULL;
	/* A yearly indicator asked for a month */
	cr_assert_eq(vg_agg_ctx_new(r, pop, per("2022-03"), VG_LATEST, &c, &E),
		     VG_EPERIOD);
	cr_assert_null(c);
	OK(vg_agg_ctx_new(r, pop, per("2022"), VG_LATEST, &c, &E));
	vg_agg_value v;
	cr_assert_eq(vg_agg_value_at(c, 0, &v, &E), VG_ENOTFOUND);
	cr_assert_eq(vg_agg_value_at(c, 1u << 30, &v, &E), VG_ENOTFOUND);
	cr_assert_eq(vg_aggregate_level(c, 999, 0, NULL, NULL, &E),
		     VG_ENOTFOUND);
	vg_agg_ctx_free(c);
	vg_read_end(r);
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- fixes found by review ------------------------------------------- */

/* A value above some leaves must not be added on top of other leaves'
 * own values: Paris given as a commune and one arrondissement given too
 * would count the 1er twice. Those leaves stay uncovered (partial). */
Test(synthetic, no_double_count_with_holder)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_geo(s);
	PUT(s, 0, { "population", "com:75056", 2100000, VG_STATUS_OK },
	    { "population", "arm:75101", 15000, VG_STATUS_OK });
	vg_agg_value v = agg_at(s, "population", "2022", VG_LATEST, "dep:75");
	cr_assert_eq(v.source, VG_SOURCE_COMPUTED);
	cr_assert_eq(v.value, 15000, "%.0f", v.value);
	cr_assert(v.cov.partial);
	cr_assert_eq(v.cov.members, 20);
	cr_assert_eq(v.cov.with_data, 1);
	vg_store_close(s);
	rm_tree(dir);
}

/* A ratio whose numerator and denominator are published at the target
 * itself is computed from them, as it is one level up. */
Test(synthetic, ratio_from_target_inputs)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_geo(s);
	PUT(s, 0, { "gp_count", "dep:44", 400, VG_STATUS_OK },
	    { "population", "dep:44", 1000000, VG_STATUS_OK });
	vg_agg_value v =
		agg_at(s, "gp_density", "2022", VG_LATEST, "dep:44");
	cr_assert_eq(v.source, VG_SOURCE_COMPUTED);
	cr_assert_eq(v.value, 40.0, "%.17g", v.value);
	cr_assert_eq(v.status, VG_STATUS_OK);
	cr_assert_not(v.cov.partial);
	cr_assert_eq(v.cov.weight_total, 1000000);
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- 5. the passage table: commune mergers and splits ------------------- */

static vg_territory make_old(const char *code, const char *name,
			     const char *s1, double w1, const char *s2,
			     double w2)
{
	vg_territory t = make_terr(code, name, NULL, NULL);
	snprintf(t.successors[0].code, VG_CODE_MAX, "%s", s1);
	t.successors[0].weight = w1;
	t.nsuccessors = 1;
	if (s2) {
		snprintf(t.successors[1].code, VG_CODE_MAX, "%s", s2);
		t.successors[1].weight = w2;
		t.nsuccessors = 2;
	}
	return t;
}

/* define_geo, plus old codes: 85027 and 85107 merged into 85146; a chain
 * 85900 -> 85901 -> 85146; 85800 split 60/40 between 85146 and 85194. */
static void define_passages(vg_store *s)
{
	define_geo(s);
	vg_batch *b;
	OK(vg_batch_new(s, &(vg_batch_opts){ .origin = "old", .time = 1e9 },
			&b, &E));
	vg_territory t[] = {
		make_old("com:85027", "Boufféré", "com:85146", 1, NULL, 0),
		make_old("com:85107", "La Guyonnière", "com:85146", 1, NULL, 0),
		make_old("com:85900", "Ancienne A", "com:85901", 1, NULL, 0),
		make_old("com:85901", "Ancienne B", "com:85146", 1, NULL, 0),
		make_old("com:85800", "Scindée", "com:85146", 0.6,
			 "com:85194", 0.4),
	};
	for (size_t i = 0; i < VG_ARRAY_LEN(t); i++)
		OK(vg_batch_territory(b, &t[i], &E));
	OK(vg_batch_commit(b, NULL, &E));
}

static void put_at(vg_store *s, const char *period, const pt *p, size_t n)
{
	vg_batch *b;
	OK(vg_batch_new(s, &(vg_batch_opts){ .origin = "t" }, &b, &E));
	for (size_t i = 0; i < n; i++)
		OK(vg_batch_point(b, p[i].ind, p[i].terr, per(period), p[i].v,
				  p[i].st, &E));
	OK(vg_batch_commit(b, NULL, &E));
}

#define PUT_AT(s, period, ...)                                        \
	do {                                                          \
		const pt pts_[] = { __VA_ARGS__ };                    \
		put_at(s, period, pts_, VG_ARRAY_LEN(pts_));          \
	} while (0)

/* 2015: Boufféré and La Guyonnière published under their own codes,
 * Montaigu-Vendée did not exist: it gets their sum, and so do its EPCI
 * and département, saying the value came through the passage table. */
Test(passage, merger_counted_in_successor)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_passages(s);
	PUT_AT(s, "2015", { "population", "com:85027", 3000, VG_STATUS_OK },
	       { "population", "com:85107", 2000, VG_STATUS_OK },
	       { "population", "com:85194", 45000, VG_STATUS_OK },
	       { "population", "com:44109", 300000, VG_STATUS_OK });
	q x;
	q_open(&x, s, "population", "2015", VG_LATEST);
	vg_agg_value m = q_at(&x, "com:85146");
	assert_complete(&m, "com:85146");
	cr_assert_eq(m.value, 5000, "%.17g", m.value);
	cr_assert_eq(m.cov.via_passage, 1);
	vg_agg_value e = q_at(&x, "epci:248500589");
	assert_complete(&e, "epci");
	cr_assert_eq(e.value, 5000);
	cr_assert_eq(e.cov.members, 1);
	cr_assert_eq(e.cov.via_passage, 1);
	vg_agg_value d = q_at(&x, "dep:85");
	assert_complete(&d, "dep:85");
	cr_assert_eq(d.value, 50000, "%.17g", d.value);
	cr_assert_eq(d.cov.members, 2);
	cr_assert_eq(d.cov.with_data, 2);
	cr_assert_eq(d.cov.via_passage, 1);
	/* The old codes themselves: published, never members of anything. */
	vg_agg_value o = q_at(&x, "com:85027");
	cr_assert_eq(o.source, VG_SOURCE_PUBLISHED);
	cr_assert_eq(o.value, 3000);
	vg_agg_value fr = q_at(&x, "fr");
	cr_assert_eq(fr.value, 350000, "%.17g", fr.value);
	cr_assert_eq(fr.cov.members, 23, "%u", fr.cov.members);
	q_close(&x);
	vg_store_close(s);
	rm_tree(dir);
}

typedef struct lv_ctx {
	vg_read *r;
	int n, old;
} lv_ctx;

static int level_count_cb(void *ud, const vg_agg_value *v)
{
	lv_ctx *x = ud;
	const vg_passage *p;
	x->n++;
	x->old += vg_read_territory_successors(x->r, v->terr, &p) > 0;
	return 0;
}

/* Old codes with values for a period mean the period is in an older
 * geography: the value under the commune's own code is the old commune
 * that kept it (Montaigu in Montaigu-Vendée), added to the others', once.
 * Without old codes' values, the commune's value is used as published.
 * A level lists current territories only. */
Test(passage, own_value_with_old_codes_and_level_lists)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_passages(s);
	PUT_AT(s, "2015", { "population", "com:85027", 3000, VG_STATUS_OK },
	       { "population", "com:85107", 2000, VG_STATUS_OK },
	       { "population", "com:85146", 20000, VG_STATUS_OK },
	       { "population", "com:85194", 45000, VG_STATUS_OK });
	q x;
	q_open(&x, s, "population", "2015", VG_LATEST);
	vg_agg_value d = q_at(&x, "dep:85");
	assert_complete(&d, "dep:85");
	cr_assert_eq(d.value, 70000, "%.17g", d.value);
	cr_assert_eq(d.cov.members, 2);
	cr_assert_eq(d.cov.via_passage, 1);
	vg_agg_value m = q_at(&x, "com:85146");
	assert_complete(&m, "com:85146");
	cr_assert_eq(m.value, 25000, "%.17g", m.value);
	cr_assert_eq(m.cov.members, 1);
	/* 2022, in the current geography: no old code has a value. */
	PUT_AT(s, "2022", { "population", "com:85146", 21000, VG_STATUS_OK });
	vg_agg_value n = agg_at(s, "population", "2022", VG_LATEST,
				"com:85146");
	cr_assert_eq(n.source, VG_SOURCE_PUBLISHED);
	cr_assert_eq(n.value, 21000);
	uint16_t com;
	OK(vg_read_level_id(x.r, "com", &com, &E));
	lv_ctx lc = { x.r, 0, 0 };
	OK(vg_aggregate_level(x.c, com, 0, level_count_cb, &lc, &E));
	cr_assert_eq(lc.n, 4, "%d communes listed", lc.n);
	cr_assert_eq(lc.old, 0);
	q_close(&x);
	vg_store_close(s);
	rm_tree(dir);
}

/* A -> B -> C: C counts A's value (and B's, when B published too), the
 * way it was before and after B absorbed A. */
Test(passage, chain_followed)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_passages(s);
	/* 2010: A and B separate; 2016: B (with A) only. */
	PUT_AT(s, "2010", { "population", "com:85900", 100, VG_STATUS_OK },
	       { "population", "com:85901", 200, VG_STATUS_OK });
	PUT_AT(s, "2016", { "population", "com:85901", 310, VG_STATUS_OK });
	vg_agg_value v = agg_at(s, "population", "2010", VG_LATEST,
				"epci:248500589");
	assert_complete(&v, "2010");
	cr_assert_eq(v.value, 300, "%.17g", v.value);
	cr_assert_eq(v.cov.via_passage, 1);
	v = agg_at(s, "population", "2016", VG_LATEST, "com:85146");
	assert_complete(&v, "2016");
	cr_assert_eq(v.value, 310, "%.17g", v.value);
	vg_store_close(s);
	rm_tree(dir);
}

/* A split: 60 % to 85146, 40 % to 85194; each gets its share, the
 * département the whole, once. Ratio inputs are each weighted; min/max
 * cannot take a share of an extreme. */
Test(passage, split_with_weights)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_passages(s);
	PUT_AT(s, "2015", { "population", "com:85800", 1000, VG_STATUS_OK },
	       { "gp_count", "com:85800", 3, VG_STATUS_OK },
	       { "temp_max", "com:85800", 31, VG_STATUS_OK },
	       { "temp_max", "com:85027", 29, VG_STATUS_OK },
	       { "population", "com:44109", 9000, VG_STATUS_OK },
	       { "gp_count", "com:44109", 7, VG_STATUS_OK });
	q x;
	q_open(&x, s, "population", "2015", VG_LATEST);
	vg_agg_value a = q_at(&x, "com:85146"), b = q_at(&x, "com:85194");
	cr_assert_eq(a.value, 600, "%.17g", a.value);
	cr_assert_eq(b.value, 400, "%.17g", b.value);
	cr_assert_eq(a.cov.via_passage, 1);
	vg_agg_value d = q_at(&x, "dep:85");
	assert_complete(&d, "dep:85");
	cr_assert_eq(d.value, 1000, "%.17g", d.value);
	cr_assert_eq(d.cov.via_passage, 2);
	q_close(&x);
	/* density = sum(gp) / sum(pop): (0.6*3 + 0.4*3 + 7) / 10000 * 1e5 */
	q_open(&x, s, "gp_density", "2015", VG_LATEST);
	vg_agg_value r = q_at(&x, "reg:52");
	cr_assert_float_eq(r.value, 100.0, 1e-9, "%.17g", r.value);
	cr_assert_float_eq(r.cov.weight_total, 10000, 1e-9);
	vg_agg_value ra = q_at(&x, "com:85146");
	cr_assert_float_eq(ra.value, 1.8 / 600 * 1e5, 1e-9, "%.17g",
			   ra.value);
	q_close(&x);
	/* max: 85194 has only a 40 % share of 85800: no value (partial);
	 * 85146 has Boufféré whole (29) and 60 % of 85800: partial too. */
	q_open(&x, s, "temp_max", "2015", VG_LATEST);
	vg_agg_value mb = q_at(&x, "com:85194");
	cr_assert(isnan(mb.value));
	cr_assert(mb.cov.partial);
	/* Not secret statistique: a share of an extreme does not exist. */
	cr_assert_eq(mb.cov.suppressed, 0);
	cr_assert_eq(mb.cov.missing, 1);
	vg_agg_value ma = q_at(&x, "com:85146");
	cr_assert(ma.cov.partial);
	q_close(&x);
	vg_store_close(s);
	rm_tree(dir);
}

/* A suppressed old code: its successor is partial, and none of its other
 * old codes' values enters (a part would be a silent undercount). */
Test(passage, suppressed_old_code_partial)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_passages(s);
	PUT_AT(s, "2015", { "population", "com:85027", 3000, VG_STATUS_OK },
	       { "population", "com:85107", 0, VG_STATUS_SUPPRESSED },
	       { "population", "com:85194", 45000, VG_STATUS_PROVISIONAL });
	vg_agg_value d = agg_at(s, "population", "2015", VG_LATEST, "dep:85");
	cr_assert(d.cov.partial);
	cr_assert_eq(d.value, 45000, "%.17g", d.value);
	cr_assert_eq(d.status, VG_STATUS_PROVISIONAL);
	cr_assert_eq(d.cov.members, 2);
	cr_assert_eq(d.cov.with_data, 1);
	cr_assert_eq(d.cov.suppressed, 1);
	cr_assert_eq(d.cov.via_passage, 0);
	vg_store_close(s);
	rm_tree(dir);
}

/* Bad passage records are refused with a message naming them. */
Test(passage, bad_successors_refused)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_geo(s);
	vg_batch *b;
	OK(vg_batch_new(s, NULL, &b, &E));
	vg_territory t = make_old("com:1", "X", "com:85146", 0.6, "com:85194",
				  0.3);
	cr_assert_eq(vg_batch_territory(b, &t, &E), VG_EINVAL);
	cr_assert(strstr(E.msg, "add up to 0.9"), "%s", E.msg);
	t = make_old("com:1", "X", "com:85146", 1.5, NULL, 0);
	cr_assert_eq(vg_batch_territory(b, &t, &E), VG_EINVAL);
	t = make_old("com:1", "X", "com:1", 1, NULL, 0);
	cr_assert_eq(vg_batch_territory(b, &t, &E), VG_EINVAL);
	cr_assert(strstr(E.msg, "own successor"), "%s", E.msg);
	t = make_old("com:1", "X", "com:85146", 1, NULL, 0);
	snprintf(t.parents[0], VG_CODE_MAX, "dep:85");
	t.nparents = 1;
	cr_assert_eq(vg_batch_territory(b, &t, &E), VG_EINVAL);
	cr_assert(strstr(E.msg, "counted twice"), "%s", E.msg);
	t = make_old("com:1", "X", "com:99999", 1, NULL, 0);
	OK(vg_batch_territory(b, &t, &E));
	cr_assert_eq(vg_batch_commit(b, NULL, &E), VG_ENOTFOUND);
	cr_assert(strstr(E.msg, "com:99999"), "%s", E.msg);
	vg_store_close(s);
	rm_tree(dir);
}

/* On the real COG 2024: Boufféré (com:85027) and the three other old
 * communes of Montaigu-Vendée carry 2015-style points (values made up
 * for the test: no 2015 file in the fixtures); they are counted in
 * com:85146, its EPCI (CA Terres de Montaigu) and the Vendée. The value
 * for the EPCI is partial: its nine other communes have no point. */
Test(passage, real_montaigu_vendee, .timeout = 120)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	import_real_territories(s);
	vg_import_opts o = { .published = T_DEFS };
	OK(vg_import_indicators(s, real_fixture("indicators.json"), &o, &R,
				&E));
	PUT_AT(s, "2015", { "population", "com:85027", 1000, VG_STATUS_OK },
	       { "population", "com:85107", 200, VG_STATUS_OK },
	       { "population", "com:85217", 30, VG_STATUS_OK },
	       { "population", "com:85224", 4, VG_STATUS_OK });
	const char *up[] = { "com:85146", "epci:200070233", "dep:85",
			     "reg:52" };
	for (size_t i = 0; i < VG_ARRAY_LEN(up); i++) {
		vg_agg_value v = agg_at(s, "population", "2015", VG_LATEST,
					up[i]);
		cr_assert_eq(v.source, VG_SOURCE_COMPUTED, "%s", up[i]);
		cr_assert_eq(v.value, 1234, "%s: %.17g", up[i], v.value);
		cr_assert_eq(v.cov.via_passage, 1, "%s", up[i]);
		cr_assert_eq(v.cov.with_data, 1, "%s", up[i]);
		cr_assert_eq(v.cov.partial, i > 0, "%s", up[i]);
	}
	/* Loaded whole (France) or lazily (one EPCI): the same numbers. */
	q x;
	q_open(&x, s, "population", "2015", VG_LATEST);
	vg_agg_value fr = q_at(&x, "fr"), e = q_at(&x, "epci:200070233");
	cr_assert_eq(fr.value, 1234);
	/* 34 935 communes less Paris, Lyon, Marseille, plus their 45
	 * arrondissements */
	cr_assert_eq(fr.cov.members, 34977, "%u", fr.cov.members);
	cr_assert_eq(e.value, 1234);
	q_close(&x);
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- an ad hoc list of territories ------------------------------------- */

static uint32_t tid(vg_read *r, const char *code)
{
	uint32_t id;
	OK(vg_read_territory_id(r, code, &id, &E));
	return id;
}

/* A list picked on a map: a ratio over it is the summed numerators over
 * the summed denominators (never the mean of the communes' densities);
 * a suppressed member makes it partial; overlapping members and the rule
 * `none` are refused. */
Test(synthetic, explicit_list_ratio_of_sums)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_geo(s);
	PUT(s, 0, { "gp_count", "com:85146", 9, VG_STATUS_OK },
	    { "population", "com:85146", 1000, VG_STATUS_OK },
	    { "gp_count", "com:85194", 1, VG_STATUS_OK },
	    { "population", "com:85194", 9000, VG_STATUS_OK },
	    { "gp_count", "com:44109", 0, VG_STATUS_SUPPRESSED },
	    { "population", "com:44109", 5000, VG_STATUS_OK },
	    { "population_totale", "com:44109", 5100, VG_STATUS_OK });
	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	uint32_t dens, pop, tot;
	OK(vg_read_indicator_id(r, "gp_density", &dens, &E));
	OK(vg_read_indicator_id(r, "population", &pop, &E));
	OK(vg_read_indicator_id(r, "population_totale", &tot, &E));
	uint32_t two[] = { tid(r, "com:85146"), tid(r, "com:85194") };
	vg_agg_value v;
	OK(vg_agg_value_list(r, dens, per("2022"), VG_LATEST, two, 2, &v, &E));
	cr_assert_eq(v.value, 100.0, "%.17g", v.value); /* 10 / 10 000 */
	cr_assert_neq(v.value, (900.0 + 1e5 / 9000) / 2);
	cr_assert(!v.cov.partial);
	cr_assert_eq(v.cov.weight_total, 10000);
	uint32_t three[] = { two[0], two[1], tid(r, "com:44109") };
	OK(vg_agg_value_list(r, dens, per("2022"), VG_LATEST, three, 3, &v,
			     &E));
	cr_assert_eq(v.value, 100.0, "%.17g", v.value);
	cr_assert(v.cov.partial);
	cr_assert_eq(v.cov.weight_total, 15000);
	cr_assert_eq(v.cov.weight_covered, 10000);
	/* A sum, and a list mixing a département and a commune elsewhere. */
	uint32_t mixed[] = { tid(r, "dep:85"), tid(r, "com:44109") };
	OK(vg_agg_value_list(r, pop, per("2022"), VG_LATEST, mixed, 2, &v, &E));
	cr_assert_eq(v.value, 15000);
	cr_assert_eq(v.cov.members, 3);
	/* Refused: a member within another; the rule none; empty. */
	uint32_t overlap[] = { tid(r, "dep:85"), tid(r, "com:85146") };
	cr_assert_eq(vg_agg_value_list(r, pop, per("2022"), VG_LATEST, overlap,
				       2, &v, &E),
		     VG_EINVAL);
	cr_assert(strstr(E.msg, "counted twice"), "%s", E.msg);
	cr_assert_eq(vg_agg_value_list(r, tot, per("2022"), VG_LATEST, three, 3,
				       &v, &E),
		     VG_EINVAL);
	cr_assert_eq(vg_agg_value_list(r, pop, per("2022"), VG_LATEST, three, 0,
				       &v, &E),
		     VG_EINVAL);
	vg_read_end(r);
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- reused context arrays ---------------------------------------------- */

/* Contexts reuse their per-territory arrays (a pool): what one query
 * loaded must never be seen by the next. A partial load (one
 * département), then a whole-level load, then partial loads of an
 * indicator and a period without values: each must find nothing, and the
 * values of the first must come back unchanged afterwards. */
Test(synthetic, reused_arrays_hold_nothing_stale)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_geo(s);
	PUT(s, 0, { "population", "com:85146", 20754, VG_STATUS_OK },
	    { "population", "com:85194", 45000, VG_STATUS_OK },
	    { "population", "com:44109", 320000, VG_STATUS_OK },
	    { "gp_count", "com:44109", 0, VG_STATUS_SUPPRESSED });
	for (int round = 0; round < 3; round++) {
		/* Partial loads straight after one another (the pool hands
		 * back the same arrays), then a whole load, then again. */
		vg_agg_value v =
		    agg_at(s, "population", "2022", VG_LATEST, "dep:85");
		cr_assert_eq(v.value, 65754, "round %d: %.0f", round, v.value);
		/* gp_count exists only (suppressed) in Nantes: nothing in
		 * Vendée, whatever the previous context loaded there. */
		v = agg_at(s, "gp_count", "2022", VG_LATEST, "dep:85");
		cr_assert(isnan(v.value), "round %d: stale %.0f", round,
			  v.value);
		cr_assert_eq(v.cov.with_data, 0);
		v = agg_at(s, "population", "2022", VG_LATEST, "cls:estuaire");
		cr_assert_eq(v.value, 340754, "round %d: %.0f", round, v.value);
		v = agg_at(s, "population", "2021", VG_LATEST, "cls:estuaire");
		cr_assert(isnan(v.value), "round %d: 2021 stale", round);
		cr_assert_eq(v.cov.with_data, 0);
		v = agg_at(s, "gp_count", "2022", VG_LATEST, "cls:estuaire");
		cr_assert(isnan(v.value));
		cr_assert_eq(v.cov.suppressed, 1);
		v = agg_at(s, "population", "2022", VG_LATEST, "fr");
		cr_assert_eq(v.value, 385754, "round %d: %.0f", round, v.value);
		v = agg_at(s, "gp_count", "2022", VG_LATEST, "com:85194");
		cr_assert(isnan(v.value), "round %d: stale after a whole load",
			  round);
	}
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- inputs stored at different levels ------------------------------------ */

static void define_cross(vg_store *s)
{
	vg_batch *b;
	OK(vg_batch_new(s, &(vg_batch_opts){ .origin = "x", .time = 1e9 + 1 },
			&b, &E));
	vg_indicator ind[] = {
		make_ind("pharm", "sum"),
		make_ind("pharm_density", "ratio(pharm, population, 1e5)"),
		make_ind("wpop", "sum"),
		make_ind("apl", "wmean(apl, wpop)"),
	};
	for (size_t i = 0; i < sizeof(ind) / sizeof(*ind); i++)
		OK(vg_batch_indicator(b, &ind[i], &E));
	OK(vg_batch_commit(b, NULL, &E));
}

/* A count published by département over populations by commune: each
 * input aggregated to the département with its own rule (the population
 * summed over the communes), then the ratio; the région pairs them by
 * département; a commune lies below the count's level and is told so. */
Test(cross_level, count_by_departement_population_by_commune)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_geo(s);
	define_cross(s);
	PUT(s, 0, { "pharm", "dep:85", 30, VG_STATUS_OK },
	    { "pharm", "dep:44", 20, VG_STATUS_PROVISIONAL },
	    { "population", "com:85146", 1000, VG_STATUS_OK },
	    { "population", "com:85194", 9000, VG_STATUS_OK },
	    { "population", "com:44109", 5000, VG_STATUS_OK });
	q x;
	q_open(&x, s, "pharm_density", "2022", VG_LATEST);
	vg_agg_value v = q_at(&x, "dep:85");
	assert_complete(&v, "dep:85");
	cr_assert_float_eq(v.value, 30.0 / 10000 * 1e5, 1e-9, "%.17g",
			   v.value);
	cr_assert_eq(v.cov.members, 2);
	cr_assert_eq(v.inputs[0].stored, 1);
	cr_assert_eq(v.inputs[0].computed, 0);
	cr_assert_eq(v.inputs[1].stored, 0);
	cr_assert_eq(v.inputs[1].computed, 1);
	uint16_t ldep;
	OK(vg_read_level_id(x.r, "dep", &ldep, &E));
	cr_assert_eq(v.inputs[0].level, ldep);
	cr_assert_eq(v.inputs[1].level, ldep);

	/* The région: summed by département, never a mean of densities. */
	v = q_at(&x, "reg:52");
	cr_assert_not(v.cov.partial);
	cr_assert_eq(v.cov.with_data, 3);
	cr_assert_float_eq(v.value, 50.0 / 15000 * 1e5, 1e-9, "%.17g",
			   v.value);
	cr_assert_eq(v.status, VG_STATUS_PROVISIONAL);
	cr_assert_eq(v.cov.members, 3);
	cr_assert_eq(v.inputs[1].computed, 2);
	cr_assert_float_eq(v.cov.weight_total, 15000, 1e-9);

	/* Below the count's level: no value, and the reason. */
	const char *below[] = { "com:85146", "epci:248500589" };
	for (int i = 0; i < 2; i++) {
		v = q_at(&x, below[i]);
		cr_assert(isnan(v.value), "%s", below[i]);
		cr_assert_eq(v.why, VG_WHY_ABOVE, "%s: why %d", below[i],
			     v.why);
		cr_assert_eq(v.why_input, 0);
		cr_assert_eq(v.why_terr, q_terr(&x, "dep:85"));
		uint32_t id;
		OK(vg_read_indicator_id(x.r, "pharm_density", &id, &E));
		char why[300];
		vg_agg_explain(x.r, id, &v, why, sizeof(why));
		cr_assert(strstr(why, "pharm is stored for dep:85 (level dep)"),
			  "%s", why);
	}
	/* France: Paris has neither: partial, the value over the others. */
	v = q_at(&x, "fr");
	cr_assert(v.cov.partial);
	cr_assert_eq(v.cov.missing, 20);
	cr_assert_float_eq(v.value, 50.0 / 15000 * 1e5, 1e-9);
	q_close(&x);

	/* A list of départements: the same numbers. */
	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	uint32_t ids[2], dens;
	OK(vg_read_territory_id(r, "dep:85", &ids[0], &E));
	OK(vg_read_territory_id(r, "dep:44", &ids[1], &E));
	OK(vg_read_indicator_id(r, "pharm_density", &dens, &E));
	OK(vg_agg_value_list(r, dens, per("2022"), VG_LATEST, ids, 2, &v, &E));
	cr_assert_float_eq(v.value, 50.0 / 15000 * 1e5, 1e-9, "%.17g",
			   v.value);
	vg_read_end(r);
	vg_store_close(s);
	rm_tree(dir);
}

/* The population of one commune of the département is missing: the
 * département's denominator is computed partial, and the value says so
 * (never passed off as complete). */
Test(cross_level, partial_input_makes_the_value_partial)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_geo(s);
	define_cross(s);
	PUT(s, 0, { "pharm", "dep:85", 30, VG_STATUS_OK },
	    { "population", "com:85146", 1000, VG_STATUS_OK },
	    { "population", "com:85194", 0, VG_STATUS_MISSING });
	vg_agg_value v = agg_at(s, "pharm_density", "2022", VG_LATEST,
				"dep:85");
	cr_assert_eq(v.source, VG_SOURCE_COMPUTED);
	cr_assert(v.cov.partial);
	cr_assert_eq(v.inputs[1].computed_partial, 1);
	cr_assert_float_eq(v.value, 30.0 / 1000 * 1e5, 1e-9);
	vg_store_close(s);
	rm_tree(dir);
}

/* wmean with its weight by département and its value by commune: the
 * value, a mean, has no other rule than this one to be brought to the
 * département: no value (and no endless recursion); with both by
 * commune, the usual weighted mean. */
Test(cross_level, wmean_weight_above_value)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	define_geo(s);
	define_cross(s);
	PUT(s, 0, { "apl", "com:85146", 3, VG_STATUS_OK },
	    { "apl", "com:85194", 4, VG_STATUS_OK },
	    { "wpop", "dep:85", 500, VG_STATUS_OK },
	    { "apl", "com:44109", 2, VG_STATUS_OK },
	    { "wpop", "com:44109", 100, VG_STATUS_OK });
	vg_agg_value v = agg_at(s, "apl", "2022", VG_LATEST, "dep:85");
	cr_assert(isnan(v.value), "%g", v.value);
	cr_assert(v.cov.partial);
	v = agg_at(s, "apl", "2022", VG_LATEST, "dep:44");
	cr_assert_eq(v.value, 2);
	vg_store_close(s);
	rm_tree(dir);
}
