/* The aggregation accumulator: see include/vigie/acc.h. */
#include <math.h>
#include <string.h>

#include "vigie/acc.h"

void vg_acc_init(vg_acc *a, vg_agg_kind kind)
{
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->worst = VG_STATUS_OK;
	if (kind != VG_AGG_RATIO && kind != VG_AGG_WMEAN)
		a->cov.weight_total = a->cov.weight_covered = NAN;
}

void vg_acc_add_weight(vg_acc *acc, double b, unsigned sb, double w)
{
	if ((acc->kind == VG_AGG_RATIO || acc->kind == VG_AGG_WMEAN) &&
	    vg_acc_status_usable(sb))
		acc->cov.weight_total += w * b;
}

void vg_acc_member(vg_acc *acc, vg_acc_outcome o, bool passage)
{
	acc->cov.members++;
	switch (o) {
	case VG_ACC_ENTERED:
		acc->cov.with_data++;
		acc->cov.via_passage += passage;
		break;
	case VG_ACC_SUPPRESSED:
		acc->cov.suppressed++;
		acc->cov.partial = true;
		break;
	case VG_ACC_MISSING:
		acc->cov.missing++;
		acc->cov.partial = true;
		break;
	}
}

void vg_acc_merge_coverage(vg_acc *acc, const vg_coverage *c)
{
	acc->cov.members += c->members;
	acc->cov.with_data += c->with_data;
	acc->cov.suppressed += c->suppressed;
	acc->cov.missing += c->missing;
	acc->cov.via_passage += c->via_passage;
	acc->cov.partial |= c->partial;
}

double vg_acc_result(const vg_acc *acc, double scale, vg_status *st)
{
	double v = NAN;
	if (acc->entered) {
		switch (acc->kind) {
		case VG_AGG_SUM:
		case VG_AGG_MIN:
		case VG_AGG_MAX: v = acc->x; break;
		case VG_AGG_RATIO:
			v = acc->y > 0 ? acc->x / acc->y * scale : NAN;
			break;
		case VG_AGG_WMEAN:
			v = acc->y > 0 ? acc->x / acc->y : NAN;
			break;
		case VG_AGG_NONE: break;
		}
	}
	if (st)
		*st = isnan(v) ? VG_STATUS_MISSING : acc->worst;
	return v;
}
