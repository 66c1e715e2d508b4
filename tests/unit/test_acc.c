/* The aggregation accumulator (vigie/acc.h): the arithmetic of every
 * rule, shares, statuses and coverage counts, without a store. */
#include <criterion/criterion.h>
#include <math.h>

#include "vigie/acc.h"

#define OKS    VG_STATUS_OK
#define PROV   VG_STATUS_PROVISIONAL
#define EST    VG_STATUS_ESTIMATED
#define SUPP   VG_STATUS_SUPPRESSED
#define MISS   VG_STATUS_MISSING
#define ABSENT 0xFF /* the engine's "nothing stored" */

static void invariant(const vg_acc *a)
{
	cr_assert_eq(a->cov.members,
		     a->cov.with_data + a->cov.suppressed + a->cov.missing,
		     "members %u != %u + %u + %u", a->cov.members,
		     a->cov.with_data, a->cov.suppressed, a->cov.missing);
	cr_assert_eq(a->cov.partial, a->cov.suppressed + a->cov.missing > 0);
}

Test(acc, sum_with_shares_and_worst_status)
{
	vg_acc a;
	vg_acc_init(&a, VG_AGG_SUM);
	cr_assert(isnan(a.cov.weight_total));
	vg_acc_member(&a, vg_acc_add(&a, 100, OKS, NAN, ABSENT, 1), false);
	vg_acc_member(&a, vg_acc_add(&a, 50, PROV, NAN, ABSENT, 0.4), true);
	vg_acc_member(&a, vg_acc_add(&a, 7, EST, NAN, ABSENT, 1), false);
	vg_status st;
	double v = vg_acc_result(&a, 1, &st);
	cr_assert_float_eq(v, 127, 1e-12, "%.17g", v);
	cr_assert_eq(st, EST);
	cr_assert_eq(a.cov.members, 3);
	cr_assert_eq(a.cov.with_data, 3);
	cr_assert_eq(a.cov.via_passage, 1);
	cr_assert_not(a.cov.partial);
	invariant(&a);
}

/* A suppressed value is never read as zero, and is told apart from a
 * missing one (nothing stored, or stored as missing). */
Test(acc, suppressed_and_missing_counted_apart)
{
	vg_acc a;
	vg_acc_init(&a, VG_AGG_SUM);
	cr_assert_eq(vg_acc_add(&a, NAN, SUPP, NAN, ABSENT, 1),
		     VG_ACC_SUPPRESSED);
	vg_acc_member(&a, VG_ACC_SUPPRESSED, false);
	cr_assert_eq(vg_acc_add(&a, NAN, MISS, NAN, ABSENT, 1), VG_ACC_MISSING);
	vg_acc_member(&a, VG_ACC_MISSING, false);
	cr_assert_eq(vg_acc_add(&a, NAN, ABSENT, NAN, ABSENT, 1),
		     VG_ACC_MISSING);
	vg_acc_member(&a, VG_ACC_MISSING, false);
	vg_status st;
	cr_assert(isnan(vg_acc_result(&a, 1, &st)));
	cr_assert_eq(st, MISS);
	cr_assert_eq(a.cov.suppressed, 1);
	cr_assert_eq(a.cov.missing, 2);
	invariant(&a);
	/* One value and the rest partial: the value stands, partial. */
	vg_acc_member(&a, vg_acc_add(&a, 5, OKS, NAN, ABSENT, 1), false);
	cr_assert_eq(vg_acc_result(&a, 1, &st), 5);
	cr_assert_eq(st, OKS);
	cr_assert(a.cov.partial);
	invariant(&a);
}

/* min/max take no share of an extreme (a split commune's 40 %). */
Test(acc, min_max_whole_units_only)
{
	vg_acc mn, mx;
	vg_acc_init(&mn, VG_AGG_MIN);
	vg_acc_init(&mx, VG_AGG_MAX);
	double vals[] = {12, -3, 40, 7};
	for (int i = 0; i < 4; i++) {
		vg_acc_add(&mn, vals[i], OKS, NAN, ABSENT, 1);
		vg_acc_add(&mx, vals[i], OKS, NAN, ABSENT, 1);
	}
	cr_assert_eq(vg_acc_add(&mx, 99, OKS, NAN, ABSENT, 0.4),
		     VG_ACC_MISSING);
	cr_assert_eq(vg_acc_add(&mn, -50, SUPP, NAN, ABSENT, 1),
		     VG_ACC_SUPPRESSED);
	cr_assert_eq(vg_acc_result(&mn, 1, NULL), -3);
	cr_assert_eq(vg_acc_result(&mx, 1, NULL), 40);
	/* The first value entered is the extreme, whatever x held. */
	vg_acc one;
	vg_acc_init(&one, VG_AGG_MAX);
	vg_acc_add(&one, -8, OKS, NAN, ABSENT, 1);
	cr_assert_eq(vg_acc_result(&one, 1, NULL), -8);
}

/* A ratio of sums, never a mean of the members' ratios: 1/10 and 99/100
 * give 100/110, not (0.1 + 0.99) / 2. */
Test(acc, ratio_of_sums)
{
	vg_acc a;
	vg_acc_init(&a, VG_AGG_RATIO);
	cr_assert_eq(a.cov.weight_total, 0);
	vg_acc_member(&a, vg_acc_add(&a, 1, OKS, 10, OKS, 1), false);
	vg_acc_member(&a, vg_acc_add(&a, 99, OKS, 100, PROV, 1), false);
	vg_status st;
	double v = vg_acc_result(&a, 100, &st);
	cr_assert_float_eq(v, 100.0 / 110 * 100, 1e-12, "%.17g", v);
	cr_assert_eq(st, PROV);
	/* Numerator suppressed: the unit is out, its denominator still in
	 * the total, so the covered share says what is behind the value. */
	cr_assert_eq(vg_acc_add(&a, NAN, SUPP, 890, OKS, 1), VG_ACC_SUPPRESSED);
	vg_acc_member(&a, VG_ACC_SUPPRESSED, false);
	cr_assert_float_eq(a.cov.weight_total, 1000, 1e-12);
	cr_assert_float_eq(a.cov.weight_covered, 110, 1e-12);
	cr_assert_float_eq(vg_acc_result(&a, 100, NULL), v, 1e-12);
	/* Denominator missing: out, nothing added to the total. */
	cr_assert_eq(vg_acc_add(&a, 3, OKS, NAN, MISS, 1), VG_ACC_MISSING);
	cr_assert_float_eq(a.cov.weight_total, 1000, 1e-12);
	/* A share multiplies both. */
	vg_acc_add(&a, 10, OKS, 100, OKS, 0.5);
	cr_assert_float_eq(a.x, 105, 1e-12);
	cr_assert_float_eq(a.y, 160, 1e-12);
	vg_acc_member(&a, VG_ACC_MISSING, false);
	invariant(&a);
}

/* wmean: the value is a mean (a share does not scale it), the weight is
 * scaled. */
Test(acc, wmean_scales_the_weight_not_the_value)
{
	vg_acc a;
	vg_acc_init(&a, VG_AGG_WMEAN);
	vg_acc_add(&a, 2.0, OKS, 1000, OKS, 1);
	vg_acc_add(&a, 4.0, OKS, 3000, OKS, 0.5);
	double v = vg_acc_result(&a, 1, NULL);
	cr_assert_float_eq(v, (2.0 * 1000 + 4.0 * 1500) / 2500, 1e-12, "%.17g",
			   v);
	cr_assert_float_eq(a.cov.weight_covered, 2500, 1e-12);
}

Test(acc, zero_denominator_and_rule_none)
{
	vg_acc a;
	vg_acc_init(&a, VG_AGG_RATIO);
	vg_acc_add(&a, 5, OKS, 0, OKS, 1);
	vg_status st;
	cr_assert(isnan(vg_acc_result(&a, 100, &st)));
	cr_assert_eq(st, MISS);
	vg_acc n;
	vg_acc_init(&n, VG_AGG_NONE);
	cr_assert_eq(vg_acc_add(&n, 5, OKS, NAN, ABSENT, 1), VG_ACC_MISSING);
	cr_assert(isnan(vg_acc_result(&n, 1, NULL)));
}

Test(acc, weight_only_and_merged_coverage)
{
	vg_acc a;
	vg_acc_init(&a, VG_AGG_WMEAN);
	vg_acc_add_weight(&a, 400, OKS, 0.5);
	vg_acc_add_weight(&a, 400, SUPP, 1); /* not a usable weight */
	cr_assert_float_eq(a.cov.weight_total, 200, 1e-12);
	cr_assert_eq(a.entered, 0);
	vg_coverage c = {.members = 10,
			 .with_data = 7,
			 .suppressed = 2,
			 .missing = 1,
			 .via_passage = 3,
			 .partial = true};
	vg_acc_merge_coverage(&a, &c);
	vg_acc_member(&a, VG_ACC_ENTERED, false);
	cr_assert_eq(a.cov.members, 11);
	cr_assert_eq(a.cov.with_data, 8);
	cr_assert_eq(a.cov.via_passage, 3);
	invariant(&a);
	vg_acc s;
	vg_acc_init(&s, VG_AGG_SUM);
	vg_acc_add_weight(&s, 400, OKS, 1); /* no weight in a sum */
	cr_assert(isnan(s.cov.weight_total));
}
