/* The aggregation accumulator: how the values of a target's members are
 * combined with an indicator's rule, and how what entered is counted.
 *
 * One place for the arithmetic of every rule, used by the engine for each
 * holder of a value (core/query/aggregate.c), for the old codes of the
 * passage table (with a share), and by the explicit-list aggregator for
 * each member (core/query/list.c):
 *
 *   sum           x += w * a
 *   min / max     x = extreme(x, a)           (whole units only: w == 1)
 *   ratio         x += w * a;  y += w * b     value = x / y * scale
 *   wmean         x += a * (w * b); y += w * b  value = x / y
 *
 * `a` is the value (sum, min, max), the numerator (ratio) or the value
 * (wmean); `b` the denominator (ratio) or the weight (wmean), ignored by
 * the other rules. `w` is the share of a unit that counts (1, or a split
 * commune's share through the passage table): counts, numerators,
 * denominators and weights are multiplied by it, a wmean's value is not
 * (it is a mean). A rate is never averaged: it is a ratio of sums.
 *
 * Only ok, provisional and estimated values enter; a suppressed or missing
 * input keeps its unit out (never read as zero) and the result partial.
 * The computed status is the worst status that entered (ok < provisional <
 * estimated).
 *
 * Coverage counts *members* (the leaves of the target, or the members of
 * a list): each is counted once by vg_acc_member with the outcome of the
 * unit it belongs to, so that members == with_data + suppressed + missing.
 *
 * Everything here is plain arithmetic on the caller's struct: no
 * allocation, no store access; vg_acc_add is inline so that a loop over a
 * dense block can keep the rule's branch out of its body. */
#ifndef VIGIE_ACC_H
#define VIGIE_ACC_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "vigie/store.h"

typedef struct vg_coverage {
	uint32_t members;     /* leaves within the target */
	uint32_t with_data;   /* members whose value entered the result */
	uint32_t suppressed;  /* members whose value (or an input of it) is
				 suppressed: secret statistique */
	uint32_t missing;     /* members with no value: stored as missing,
				 or nothing stored for them at all */
	uint32_t via_passage; /* members (among with_data) whose value came
				 through the passage table: the values of
				 the old codes they replaced */
	/* ratio: the denominator; wmean: the weight. Total over the members
	 * that have it, and the part behind members that entered the result.
	 * NaN for the other rules. */
	double weight_total, weight_covered;
	bool partial; /* some member has no usable value */
} vg_coverage;

/* What became of one unit's inputs. */
typedef enum vg_acc_outcome {
	VG_ACC_ENTERED = 0, /* they entered the result */
	VG_ACC_SUPPRESSED,  /* an input is suppressed (secret statistique) */
	VG_ACC_MISSING,	    /* an input is missing or absent */
} vg_acc_outcome;

typedef struct vg_acc {
	vg_agg_kind kind;
	double x;	  /* sum, extreme, numerators, or sum of v * w */
	double y;	  /* ratio: denominators; wmean: weights */
	uint32_t entered; /* units whose inputs entered */
	vg_status worst;  /* worst status entered */
	vg_coverage cov;
} vg_acc;

/* Start an empty accumulation for `kind`. Weight totals start at 0 for
 * ratio and wmean, NaN for the other rules. */
void vg_acc_init(vg_acc *a, vg_agg_kind kind);

/* A status that enters a result: ok, provisional or estimated. The
 * engine's "nothing stored" marker (any value above VG_STATUS_MISSING)
 * does not. */
static inline bool vg_acc_status_usable(unsigned st)
{
	return st <= VG_STATUS_ESTIMATED;
}

/* Why a unit with statuses sa (and sb, for ratio and wmean) cannot enter
 * with share w, or VG_ACC_ENTERED when it can. min and max take no share
 * of an extreme: only a whole unit (w == 1) enters. */
static inline vg_acc_outcome vg_acc_check(vg_agg_kind kind, unsigned sa,
					  unsigned sb, double w)
{
	bool two = kind == VG_AGG_RATIO || kind == VG_AGG_WMEAN;
	if (kind == VG_AGG_NONE)
		return VG_ACC_MISSING;
	if (sa == VG_STATUS_SUPPRESSED || (two && sb == VG_STATUS_SUPPRESSED))
		return VG_ACC_SUPPRESSED;
	if (!vg_acc_status_usable(sa) || (two && !vg_acc_status_usable(sb)))
		return VG_ACC_MISSING;
	if ((kind == VG_AGG_MIN || kind == VG_AGG_MAX) && fabs(w - 1) > 1e-9)
		return VG_ACC_MISSING;
	return VG_ACC_ENTERED;
}

/* Add one unit's inputs with share w. For ratio and wmean, a usable `b`
 * counts in weight_total even when `a` does not enter (the coverage then
 * says which part of the denominator is behind the result). Returns the
 * outcome; the unit's members are counted by the caller (vg_acc_member),
 * since one unit (a département holding a value) may stand for many. */
static inline vg_acc_outcome vg_acc_add(vg_acc *acc, double a, unsigned sa,
					double b, unsigned sb, double w)
{
	vg_agg_kind k = acc->kind;
	bool two = k == VG_AGG_RATIO || k == VG_AGG_WMEAN;
	if (two && vg_acc_status_usable(sb))
		acc->cov.weight_total += w * b;
	vg_acc_outcome o = vg_acc_check(k, sa, sb, w);
	if (o != VG_ACC_ENTERED)
		return o;
	switch (k) {
	case VG_AGG_SUM: acc->x += w * a; break;
	case VG_AGG_MIN:
		if (!acc->entered || a < acc->x)
			acc->x = a;
		break;
	case VG_AGG_MAX:
		if (!acc->entered || a > acc->x)
			acc->x = a;
		break;
	case VG_AGG_RATIO:
		acc->x += w * a;
		acc->y += w * b;
		acc->cov.weight_covered += w * b;
		break;
	case VG_AGG_WMEAN:
		acc->x += a * (w * b);
		acc->y += w * b;
		acc->cov.weight_covered += w * b;
		break;
	case VG_AGG_NONE: break;
	}
	acc->entered++;
	if (sa > (unsigned)acc->worst)
		acc->worst = (vg_status)sa;
	if (two && sb > (unsigned)acc->worst)
		acc->worst = (vg_status)sb;
	return VG_ACC_ENTERED;
}

/* Count only the denominator / weight of a unit that cannot enter (an old
 * code of a leaf whose other old codes are suppressed: the leaf is out,
 * but its weight still belongs to the total). */
void vg_acc_add_weight(vg_acc *acc, double b, unsigned sb, double w);

/* Count one member with the outcome of the unit that holds its value;
 * `passage`: its value came through the passage table. */
void vg_acc_member(vg_acc *acc, vg_acc_outcome o, bool passage);

/* Fold the coverage of a value computed elsewhere (a member of a list
 * that is itself an aggregate): its members, counts and partial flag.
 * Weight totals are not touched (vg_acc_add counts them). */
void vg_acc_merge_coverage(vg_acc *acc, const vg_coverage *c);

/* The result: the value (NaN when nothing entered, or a ratio or wmean
 * whose denominator is not positive) and its status (the worst entered,
 * or missing when there is no value). `scale` multiplies a ratio. */
double vg_acc_result(const vg_acc *acc, double scale, vg_status *st);

#endif
