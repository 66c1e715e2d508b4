/* Versioned perimeters (vg_territory versions, vg_read_perimeter_membership,
 * vg_membership_mode): a CLS across two départements on the real COG 2024
 * communes and their real 2022 populations, with 10 communes from 2019
 * and 13 from 2022. Values are checked against sums the test makes itself
 * from the fixture file; ratio and wmean over an older version; a
 * suppressed member; redefinition; refused definitions leave the store
 * as it was; the CSV `valid_from` column. */
#include <math.h>

#include "helpers.h"
#include "vigie/common.h"
#include "vigie/io.h"
#include "vigie/query.h"

static const char *real_fixture(const char *name)
{
	static char buf[2][1024];
	static int next;
	char *b = buf[next++ % 2];
	const char *root = getenv("VIGIE_ROOT");
	snprintf(b, sizeof(buf[0]), "%s/tests/fixtures/real/%s",
		 root && *root ? root : ".", name);
	return b;
}

static vg_import_report R;
#define T_DEFS ((int64_t)1000000000)

/* Version 1 (from 2019): five communes of Loire-Atlantique, five of
 * Vendée. Version 2 (from 2022): the same and three more. */
#define NV1 10
#define NV2 13
static const char *const CODES[NV2] = {
	"com:44001", "com:44002", "com:44003", "com:44005", "com:44006",
	"com:85001", "com:85003", "com:85004", "com:85005", "com:85006",
	"com:85008", "com:85010", "com:44007",
};

/* The 2022 population of each of CODES, read from the fixture by the test
 * itself (not through the store). */
static double POP[NV2];

static void read_populations(void)
{
	FILE *f = fopen(real_fixture("population_2022.csv"), "r");
	cr_assert_not_null(f);
	char line[256];
	int found = 0;
	while (fgets(line, sizeof(line), f)) {
		char ind[64], terr[32];
		double v;
		if (sscanf(line, "%63[^;];%31[^;];2022;%lf", ind, terr, &v) != 3 ||
		    strcmp(ind, "population"))
			continue;
		for (int i = 0; i < NV2; i++)
			if (!strcmp(terr, CODES[i])) {
				POP[i] = v;
				found++;
			}
	}
	fclose(f);
	cr_assert_eq(found, NV2, "populations found: %d", found);
}

/* 2021: invented from the real ones (no 2021 file in the fixtures) so the
 * two periods differ. */
static double pop2021(int i)
{
	return POP[i] - 10 * (i + 1);
}

static vg_store *open_store(const char *dir)
{
	vg_store *s = NULL;
	OK(vg_store_open(&s, dir, NULL, &E));
	return s;
}

static void define_cls(vg_store *s, const char *from, size_t n,
		       const char *const *codes, int expect)
{
	vg_batch *b;
	OK(vg_batch_new(s, &(vg_batch_opts){ .origin = "cls" }, &b, &E));
	vg_territory t = make_terr("cls:sud-loire", "CLS Sud-Loire", NULL, NULL);
	char(*m)[VG_CODE_MAX] = calloc(n, VG_CODE_MAX);
	for (size_t i = 0; i < n; i++)
		snprintf(m[i], VG_CODE_MAX, "%s", codes[i]);
	t.members = m;
	t.nmembers = n;
	if (from) {
		t.from = per(from);
		t.has_from = true;
	}
	int rc = vg_batch_territory(b, &t, &E);
	free(m);
	if (!rc)
		rc = vg_batch_commit(b, NULL, &E);
	else
		vg_batch_free(b);
	/* expect: 0, or a failure (the message is what the test checks) */
	if (expect)
		cr_assert_neq(rc, 0, "accepted");
	else
		cr_assert_eq(rc, 0, "define: %d (%s)", rc, E.msg);
}

/* Values for CODES: population, gp (sum), apl (wmean by pop_std). */
static void put_values(vg_store *s, const char *period, int suppress)
{
	vg_batch *b;
	OK(vg_batch_new(s, &(vg_batch_opts){ .origin = "v" }, &b, &E));
	bool y21 = !strcmp(period, "2021");
	for (int i = 0; i < NV2; i++) {
		double pop = y21 ? pop2021(i) : POP[i];
		if (y21)
			OK(vg_batch_point(b, "population", CODES[i], per(period),
					  pop, VG_STATUS_OK, &E));
		OK(vg_batch_point(b, "gp", CODES[i], per(period), i + 1,
				  i == suppress ? VG_STATUS_SUPPRESSED
						: VG_STATUS_OK,
				  &E));
		OK(vg_batch_point(b, "apl", CODES[i], per(period),
				  2.0 + 0.1 * i, VG_STATUS_OK, &E));
		OK(vg_batch_point(b, "pop_std", CODES[i], per(period), pop,
				  VG_STATUS_OK, &E));
	}
	OK(vg_batch_commit(b, NULL, &E));
}

static vg_agg_value value(vg_store *s, const char *ind, const char *period,
			  vg_membership_mode mode, vg_membership_info *mi)
{
	vg_read *r;
	vg_agg_ctx *c;
	uint32_t i, t;
	vg_agg_value v;
	OK(vg_read_begin(s, &r, &E));
	OK(vg_read_indicator_id(r, ind, &i, &E));
	OK(vg_read_territory_id(r, "cls:sud-loire", &t, &E));
	OK(vg_agg_ctx_new(r, i, per(period), VG_LATEST, &c, &E));
	vg_agg_ctx_set_membership(c, mode);
	OK(vg_agg_value_at(c, t, &v, &E));
	if (mi)
		OK(vg_read_perimeter_membership(r, t, per(period),
						mode == VG_MEMBERSHIP_LATEST,
						mi));
	vg_agg_ctx_free(c);
	vg_read_end(r);
	return v;
}

static double sum_pop(int n, bool y21)
{
	double x = 0;
	for (int i = 0; i < n; i++)
		x += y21 ? pop2021(i) : POP[i];
	return x;
}

static void read_cls(vg_store *s, vg_territory *t)
{
	vg_read *r;
	uint32_t id;
	OK(vg_read_begin(s, &r, &E));
	OK(vg_read_territory_id(r, "cls:sud-loire", &id, &E));
	OK(vg_read_territory(r, id, t, &E));
	vg_read_end(r);
}

static uint64_t vintages(vg_store *s)
{
	vg_store_stat st;
	OK(vg_store_stat_get(s, &st, &E));
	return st.vintages;
}

/* The real geography and 2022 populations, four more indicators, the CLS
 * in two versions (10 communes from 2019, 13 from 2022), and values for
 * 2021 and 2022. */
static vg_store *setup_cls(char **dirp)
{
	read_populations();
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	*dirp = dir;
	vg_import_opts o = { .published = T_DEFS };
	OK(vg_import_territories(s, real_fixture("territories_cog2024.csv"),
				 &o, &R, &E));
	OK(vg_import_indicators(s, real_fixture("indicators.json"), &o, &R,
				&E));
	o.published = T_DEFS + 86400;
	OK(vg_import_points(s, real_fixture("population_2022.csv"), &o, &R,
			    &E));
	vg_batch *b;
	OK(vg_batch_new(s, &(vg_batch_opts){ .origin = "i" }, &b, &E));
	vg_indicator inds[] = {
		make_ind("gp", "sum"),
		make_ind("gp_density", "ratio(gp, population, 1e5)"),
		make_ind("pop_std", "sum"),
		make_ind("apl", "wmean(apl, pop_std)"),
	};
	for (size_t i = 0; i < 4; i++)
		OK(vg_batch_indicator(b, &inds[i], &E));
	OK(vg_batch_commit(b, NULL, &E));

	define_cls(s, "2019", NV1, CODES, 0);
	define_cls(s, "2022", NV2, CODES, 0);
	put_values(s, "2021", -1);
	put_values(s, "2022", -1);
	return s;
}

Test(perimeter, real_cls_two_versions, .timeout = 240)
{
	char *dir;
	vg_store *s = setup_cls(&dir);
	vg_territory t;
	read_cls(s, &t);
	cr_assert_eq(t.nversions, 2);
	cr_assert(t.versions[0].has_from && t.versions[0].from == per("2019"));
	cr_assert_eq(t.versions[0].nmembers, NV1);
	cr_assert_eq(t.versions[1].from, per("2022"));
	cr_assert_eq(t.nmembers, NV2, "members are the latest version's");
	vg_territory_clear(&t);

	/* 2021: the 2019 membership, 10 communes. */
	vg_membership_info mi;
	vg_agg_value v = value(s, "population", "2021",
			       VG_MEMBERSHIP_IN_FORCE, &mi);
	cr_assert_eq(v.source, VG_SOURCE_COMPUTED);
	cr_assert_eq(v.value, sum_pop(NV1, true), "%.17g vs %.17g", v.value,
		     sum_pop(NV1, true));
	cr_assert_eq(v.cov.members, NV1);
	cr_assert_eq(v.cov.with_data, NV1);
	cr_assert(!v.cov.partial);
	cr_assert(mi.has_from && mi.from == per("2019") && !mi.latest &&
		  !mi.before_first && mi.nmembers == NV1);
	/* 2022 and later: the 2022 membership. */
	v = value(s, "population", "2022", VG_MEMBERSHIP_IN_FORCE, &mi);
	cr_assert_eq(v.value, sum_pop(NV2, false), "%.17g", v.value);
	cr_assert_eq(v.cov.members, NV2);
	cr_assert(mi.latest && mi.nmembers == NV2);
	/* Constant perimeter: 2021 on the 13 communes of 2022. */
	v = value(s, "population", "2021", VG_MEMBERSHIP_LATEST, &mi);
	cr_assert_eq(v.value, sum_pop(NV2, true), "%.17g", v.value);
	cr_assert(mi.latest && mi.from == per("2022"));
	/* Before the first version: the first applies, and says so. Only
	 * its communes have 2018 values: none here, so no value. */
	v = value(s, "population", "2018", VG_MEMBERSHIP_IN_FORCE, &mi);
	cr_assert(mi.before_first && mi.version == 0 && mi.nmembers == NV1);
	cr_assert(isnan(v.value));

	/* Ratio of sums over the 2019 version, never a mean of rates. */
	double gp = 0, gp13 = 0;
	for (int i = 0; i < NV2; i++)
		*(i < NV1 ? &gp : &gp13) += i + 1;
	v = value(s, "gp_density", "2021", VG_MEMBERSHIP_IN_FORCE, NULL);
	double want = gp / sum_pop(NV1, true) * 1e5;
	cr_assert(fabs(v.value - want) <= 1e-9 * want, "%.17g vs %.17g",
		  v.value, want);
	cr_assert_eq(v.cov.weight_total, sum_pop(NV1, true));
	v = value(s, "gp_density", "2021", VG_MEMBERSHIP_LATEST, NULL);
	want = (gp + gp13) / sum_pop(NV2, true) * 1e5;
	cr_assert(fabs(v.value - want) <= 1e-9 * want, "%.17g", v.value);
	/* wmean over the 2019 version, weighted by pop_std. */
	double num = 0;
	for (int i = 0; i < NV1; i++)
		num += (2.0 + 0.1 * i) * pop2021(i);
	v = value(s, "apl", "2021", VG_MEMBERSHIP_IN_FORCE, NULL);
	want = num / sum_pop(NV1, true);
	cr_assert(fabs(v.value - want) <= 1e-12 * want, "%.17g vs %.17g",
		  v.value, want);

	/* A suppressed member of the old version: partial. */
	put_values(s, "2021", 3);
	v = value(s, "gp", "2021", VG_MEMBERSHIP_IN_FORCE, NULL);
	cr_assert(v.cov.partial);
	cr_assert_eq(v.cov.suppressed, 1);
	cr_assert_eq(v.cov.with_data, NV1 - 1);
	cr_assert_eq(v.value, gp - 4);
	v = value(s, "gp_density", "2021", VG_MEMBERSHIP_IN_FORCE, NULL);
	cr_assert(v.cov.partial);
	want = (gp - 4) / (sum_pop(NV1, true) - pop2021(3)) * 1e5;
	cr_assert(fabs(v.value - want) <= 1e-9 * want, "%.17g", v.value);

	/* Published at the CLS itself for 2021: a figure of its 2019
	 * membership. As it was, it comes first; on the constant perimeter
	 * it is not the 13 communes' and the engine computes them. */
	vg_batch *b;
	OK(vg_batch_new(s, &(vg_batch_opts){ .origin = "p" }, &b, &E));
	OK(vg_batch_point(b, "population", "cls:sud-loire", per("2021"), 12345,
			  VG_STATUS_OK, &E));
	OK(vg_batch_commit(b, NULL, &E));
	v = value(s, "population", "2021", VG_MEMBERSHIP_IN_FORCE, NULL);
	cr_assert_eq(v.source, VG_SOURCE_PUBLISHED);
	cr_assert_eq(v.value, 12345);
	v = value(s, "population", "2021", VG_MEMBERSHIP_LATEST, NULL);
	cr_assert_eq(v.source, VG_SOURCE_COMPUTED);
	cr_assert_eq(v.value, sum_pop(NV2, true), "%.17g", v.value);

	/* Redefining the same start replaces that version (2022-01 starts
	 * the day 2022 does); the other stays. */
	define_cls(s, "2022-01", 12, CODES, 0);
	read_cls(s, &t);
	cr_assert_eq(t.nversions, 2);
	cr_assert_eq(t.versions[1].nmembers, 12);
	cr_assert_eq(t.nmembers, 12);
	cr_assert_eq(t.versions[0].nmembers, NV1);
	vg_territory_clear(&t);
	v = value(s, "population", "2022", VG_MEMBERSHIP_IN_FORCE, NULL);
	cr_assert_eq(v.value, sum_pop(12, false));

	/* Refused definitions name the member; nothing is written. */
	uint64_t nv = vintages(s);
	const char *unknown[] = { "com:44001", "com:99999" };
	define_cls(s, "2023", 2, unknown, -1);
	cr_assert(strstr(E.msg, "com:99999"), "%s", E.msg);
	const char *twice[] = { "com:44001", "com:44002", "com:44001" };
	define_cls(s, "2023", 3, twice, -1);
	cr_assert(strstr(E.msg, "'com:44001' is listed twice"), "%s", E.msg);
	const char *within[] = { "com:44001", "dep:44" };
	define_cls(s, "2023", 2, within, -1);
	cr_assert(strstr(E.msg, "'com:44001' lies within member 'dep:44'"),
		  "%s", E.msg);
	const char *nested[] = { "com:44001", "cls:sud-loire" };
	define_cls(s, "2023", 2, nested, -1);
	cr_assert(strstr(E.msg, "'cls:sud-loire' is a perimeter"), "%s",
		  E.msg);
	define_cls(s, "2023", 0, NULL, VG_EINVAL);
	cr_assert(strstr(E.msg, "needs members"), "%s", E.msg);
	cr_assert_eq(vintages(s), nv, "a refused definition wrote a vintage");
	read_cls(s, &t);
	cr_assert_eq(t.nversions, 2);
	vg_territory_clear(&t);

	/* Without `from`: one version from the beginning (as before
	 * versions), whatever the period. */
	define_cls(s, NULL, NV1, CODES, 0);
	read_cls(s, &t);
	cr_assert_eq(t.nversions, 1);
	cr_assert(!t.versions[0].has_from);
	vg_territory_clear(&t);
	v = value(s, "population", "2022", VG_MEMBERSHIP_IN_FORCE, &mi);
	cr_assert_eq(v.value, sum_pop(NV1, false));
	cr_assert(!mi.has_from && mi.latest && !mi.before_first);

	vg_store_close(s);
	rm_tree(dir);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* The territories CSV: one row per version (valid_from); a bad period is
 * located; the whole file is refused. */
Test(perimeter, csv_valid_from)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir);
	char path[600];
	snprintf(path, sizeof(path), "%s/t.csv", dir);
	write_file(path,
		   "code;level;name;parent_codes;members;valid_from\n"
		   "dep:44;dep;Loire-Atlantique;;;\n"
		   "com:44001;com;Abbaretz;dep:44;;\n"
		   "com:44002;com;Aigrefeuille;dep:44;;\n"
		   "com:44003;com;Ancenis;dep:44;;\n"
		   "cls:x;cls;CLS X;;com:44001,com:44002;2019\n"
		   "cls:x;cls;CLS X;;com:44001,com:44002,com:44003;2024-Q1\n");
	vg_import_opts o = { 0 };
	OK(vg_import_territories(s, path, &o, &R, &E));
	vg_read *r;
	uint32_t id;
	vg_territory t;
	OK(vg_read_begin(s, &r, &E));
	OK(vg_read_territory_id(r, "cls:x", &id, &E));
	OK(vg_read_territory(r, id, &t, &E));
	cr_assert_eq(t.nversions, 2);
	cr_assert_eq(t.versions[0].from, per("2019"));
	cr_assert_eq(t.versions[1].from, per("2024-Q1"));
	cr_assert_eq(t.nmembers, 3);
	vg_territory_clear(&t);
	vg_membership_info mi;
	OK(vg_read_perimeter_membership(r, id, per("2023-12"), false, &mi));
	cr_assert_eq(mi.nmembers, 2);
	OK(vg_read_perimeter_membership(r, id, per("2024-01-01"), false, &mi));
	cr_assert_eq(mi.nmembers, 3);
	uint32_t dep;
	OK(vg_read_territory_id(r, "dep:44", &dep, &E));
	cr_assert_eq(vg_read_perimeter_membership(r, dep, per("2024"), false,
						  &mi),
		     VG_ENOTFOUND);
	vg_read_end(r);

	write_file(path,
		   "code;level;name;parent_codes;members;valid_from\n"
		   "cls:y;cls;CLS Y;;com:44001;2024-13\n");
	cr_assert_eq(vg_import_territories(s, path, &o, &R, &E), VG_EBADROWS);
	cr_assert_eq(R.nerrors, 1);
	cr_assert_eq(R.errors[0].line, 2);
	cr_assert(strstr(R.errors[0].msg, "valid_from '2024-13'"), "%s",
		  R.errors[0].msg);
	write_file(path,
		   "code;level;name;parent_codes;members;valid_from\n"
		   "cls:y;cls;CLS Y;;com:44001,com:44001;2024\n");
	cr_assert_neq(vg_import_territories(s, path, &o, &R, &E), 0);
	cr_assert(strstr(E.msg, "listed twice"), "%s", E.msg);
	OK(vg_read_begin(s, &r, &E));
	cr_assert_neq(vg_read_territory_id(r, "cls:y", &id, NULL), 0,
		      "nothing written");
	vg_read_end(r);
	vg_store_close(s);
	rm_tree(dir);
}

/* The communes *within* the CLS (a level aggregation, rank, disparities)
 * follow the membership in force too: in 2021 the 10 communes of 2019,
 * in 2022 the 13; a commune that joined in 2022 is not within it in
 * 2021; the constant perimeter lists the 13 for both years. */
static int count_cb(void *ud, const vg_agg_value *v)
{
	double *x = ud;
	x[0] += 1;
	x[1] += v->value;
	return 0;
}

Test(perimeter, within_follows_the_version_in_force, .timeout = 240)
{
	char *dir;
	vg_store *s = setup_cls(&dir);
	static const struct {
		const char *period;
		vg_membership_mode mode;
		int n;
		bool y21;
	} cases[] = {
		{ "2021", VG_MEMBERSHIP_IN_FORCE, NV1, true },
		{ "2022", VG_MEMBERSHIP_IN_FORCE, NV2, false },
		{ "2021", VG_MEMBERSHIP_LATEST, NV2, true },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(*cases); k++) {
		vg_read *r;
		vg_agg_ctx *c;
		uint32_t ind, cls, late, early;
		uint16_t com;
		OK(vg_read_begin(s, &r, &E));
		OK(vg_read_indicator_id(r, "population", &ind, &E));
		OK(vg_read_territory_id(r, "cls:sud-loire", &cls, &E));
		OK(vg_read_territory_id(r, CODES[NV2 - 1], &late, &E));
		OK(vg_read_territory_id(r, CODES[0], &early, &E));
		OK(vg_read_level_id(r, "com", &com, &E));
		OK(vg_agg_ctx_new(r, ind, per(cases[k].period), VG_LATEST, &c,
				  &E));
		vg_agg_ctx_set_membership(c, cases[k].mode);
		double x[2] = { 0, 0 };
		OK(vg_aggregate_level(c, com, cls, count_cb, x, &E));
		cr_assert_eq(x[0], cases[k].n, "case %zu: %.0f communes", k,
			     x[0]);
		cr_assert_eq(x[1], sum_pop(cases[k].n, cases[k].y21),
			     "case %zu: %.17g", k, x[1]);
		vg_disparity d;
		OK(vg_disparity_of(c, cls, com, &d, &E));
		cr_assert_eq(d.count, (uint32_t)cases[k].n, "case %zu", k);
		vg_rank rk;
		OK(vg_rank_of(c, early, cls, &rk, &E));
		cr_assert_eq(rk.count, (uint32_t)cases[k].n, "case %zu", k);
		int rc = vg_rank_of(c, late, cls, &rk, &E);
		if (cases[k].n == NV1)
			cr_assert_eq(rc, VG_EINVAL, "case %zu: %s joined in "
				     "2022, within in 2021?", k, CODES[NV2 - 1]);
		else
			cr_assert_eq(rc, 0, "case %zu: %s", k, E.msg);
		vg_agg_ctx_free(c);
		vg_read_end(r);
	}
	vg_store_close(s);
	rm_tree(dir);
}
