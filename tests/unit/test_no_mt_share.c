/* plugins/ameli_no_mt.lua (the counts of patients aged 17+ without a
 * médecin traitant and of all patients aged 17+) and the derived
 * no_mt_share of plugins/health_densities.lua, on a fixture in the exact
 * format of the data.ameli.fr CSV export (BOM, `;`, field names), on the
 * COG 2024 geography: the share of a région is the ratio of the sums of
 * its départements, never the mean of their shares, and a suppressed
 * département makes it partial. */
#include <math.h>

#include "plugin_helpers.h"
#include "vigie/io.h"
#include "vigie/query.h"

GEO_SUITE(nomt, 120);

#define FIXTURE                                                                \
	"tests/fixtures/plugins/ameli/patients-sans-medecin-traitant.csv"

static int run_plugin(const char *name, const char *config, vg_run_result *res)
{
	char path[256];
	snprintf(path, sizeof(path), "plugins/%s.lua", name);
	const char *roots[] = {root_path("tests/fixtures/plugins/ameli")};
	vg_plugin_env env = {
	    .lib_dir = root_path("plugins/lib"), .roots = roots, .nroots = 1};
	vg_plugin *p;
	OK(vg_plugin_load(root_path(path), &env, &p, &E));
	int rc = run_with(p, S, config, NULL, res);
	vg_plugin_free(p);
	return rc;
}

/* The fixture as the plugin's `url` (a local path under the root). */
static const char *CONFIG = "{\"url\": \"patients-sans-medecin-traitant.csv\"}";

static void load(void)
{
	vg_run_result res;
	int rc = run_plugin("ameli_no_mt", CONFIG, &res);
	cr_assert_eq(rc, 0, "%d %s\n%s", rc, E.msg, LOGS);
	/* 10 département rows x 2 indicators; the unknown territory is
	 * rejected, the région and France rows skipped. */
	cr_assert_eq(res.rows_written, 20, "%lu",
		     (unsigned long)res.rows_written);
	cr_assert_eq(res.rows_rejected, 1);
	cr_assert(strstr(LOGS, "15 records read, 10 départements-years "
			       "written, 4 région/France totals skipped"),
		  "%s", LOGS);
	vg_run_result_clear(&res);
	rc = run_plugin("health_densities", "{\"period\": \"2024\"}", &res);
	cr_assert_eq(rc, 0, "%d %s", rc, E.msg);
	vg_run_result_clear(&res);
}

/* The fixture's département rows of `year`, read here (not through the
 * plugin): sums of both counts over the départements where both are
 * published, the mean of their shares, and the number suppressed. */
typedef struct sums {
	double without, total, mean_share;
	int n, suppressed;
} sums;

static sums fixture_sums(const char *year)
{
	FILE *f = fopen(root_path(FIXTURE), "r");
	cr_assert_not_null(f);
	char line[512];
	sums s = {0};
	cr_assert_not_null(fgets(line, sizeof(line), f)); /* header */
	cr_assert(!strncmp(line,
			   "\xef\xbb\xbf"
			   "annee;",
			   9),
		  "no BOM");
	while (fgets(line, sizeof(line), f)) {
		char *fld[8] = {0};
		int k = 0;
		for (char *tok = line; tok && k < 8; k++) {
			fld[k] = tok;
			tok = strchr(tok, ';');
			if (tok)
				*tok++ = '\0';
		}
		cr_assert_eq(k, 7);
		fld[6][strcspn(fld[6], "\n")] = '\0';
		if (strcmp(fld[0], year) || strlen(fld[3]) != 2)
			continue; /* other year, totals, unknown */
		char *e1, *e2;
		double a = strtod(fld[5], &e1), b = strtod(fld[6], &e2);
		if (*e1 || *e2 || !*fld[5] || !*fld[6]) {
			s.suppressed++;
			continue;
		}
		s.without += a;
		s.total += b;
		s.mean_share += 100 * a / b;
		s.n++;
	}
	fclose(f);
	s.mean_share /= s.n;
	return s;
}

Test(nomt, region_share_is_the_ratio_of_sums)
{
	load();
	sums s = fixture_sums("2024");
	cr_assert_eq(s.n, 5);
	cr_assert_eq(s.suppressed, 0);
	vg_agg_value num =
	    agg_value_of(S, "patients_17p_without_mt", "reg:52", "2024");
	vg_agg_value den = agg_value_of(S, "patients_17p", "reg:52", "2024");
	vg_agg_value share = agg_value_of(S, "no_mt_share", "reg:52", "2024");
	cr_assert_eq(num.value, s.without);
	cr_assert_eq(den.value, s.total);
	cr_assert_eq(num.source, VG_SOURCE_COMPUTED);
	cr_assert(!share.cov.partial);
	cr_assert_float_eq(share.value, 100 * s.without / s.total, 1e-9);
	/* 8.65 %, not the mean of the shares (8.80 %). */
	cr_assert_gt(fabs(share.value - s.mean_share), 0.1);
	/* A département: its own counts. */
	vg_agg_value vendee = agg_value_of(S, "no_mt_share", "dep:85", "2024");
	cr_assert_float_eq(vendee.value, 100.0 * 35000 / 570000, 1e-9);
}

Test(nomt, suppressed_departement_makes_the_region_partial)
{
	load();
	sums s = fixture_sums("2023");
	cr_assert_eq(s.suppressed, 1); /* Mayenne's numerator is NS */
	/* Mayenne: the numerator is suppressed, the denominator published. */
	vg_read *rd;
	uint32_t ii, ti;
	vg_point pt;
	OK(vg_read_begin(S, &rd, &E));
	OK(vg_read_indicator_id(rd, "patients_17p_without_mt", &ii, &E));
	OK(vg_read_territory_id(rd, "dep:53", &ti, &E));
	OK(vg_read_point(rd, ii, ti, per("2023"), VG_LATEST, &pt));
	vg_read_end(rd);
	cr_assert_eq(pt.status, VG_STATUS_SUPPRESSED);
	cr_assert(isnan(pt.value));

	vg_agg_value num =
	    agg_value_of(S, "patients_17p_without_mt", "reg:52", "2023");
	cr_assert(num.cov.partial);
	cr_assert_eq(num.value, s.without); /* never a silent zero: partial */
	vg_agg_value share = agg_value_of(S, "no_mt_share", "reg:52", "2023");
	cr_assert(share.cov.partial);
	/* The share covers the départements with both counts only; the
	 * coverage says how much of the denominator that is. */
	cr_assert_float_eq(share.value, 100 * s.without / s.total, 1e-9, "%f",
			   share.value);
	cr_assert_lt(share.cov.weight_covered, share.cov.weight_total);
	cr_assert_eq(share.cov.weight_covered, s.total);
	/* France: only Pays de la Loire has data, partial too. */
	cr_assert(agg_value_of(S, "no_mt_share", "fr", "2024").cov.partial);
}

Test(nomt, wrong_field_name_is_named)
{
	vg_run_result res;
	int rc = run_plugin("ameli_no_mt",
			    "{\"url\": \"patients-sans-medecin-traitant.csv\","
			    " \"field_total\": \"nb_patients_17_ans_et_plus\"}",
			    &res);
	cr_assert_neq(rc, 0);
	cr_assert(strstr(E.msg, "patients-sans-medecin-traitant.csv:2: field "
				"'nb_patients_17_ans_et_plus' missing from the "
				"export"),
		  "%s", E.msg);
	vg_run_result_clear(&res);
	cr_assert_eq(store_points(S), 0);
}

Test(nomt, age_filter_reads_only_the_chosen_class)
{
	/* With an age field, rows of other classes are ignored: here the
	 * field exists (libelle_region) and no row has the value. */
	vg_run_result res;
	int rc = run_plugin("ameli_no_mt",
			    "{\"url\": \"patients-sans-medecin-traitant.csv\","
			    " \"age_field\": \"libelle_region\","
			    " \"age_value\": \"Bretagne\"}",
			    &res);
	cr_assert_eq(rc, 0, "%s", E.msg);
	cr_assert_eq(res.rows_written, 0);
	vg_run_result_clear(&res);
}
