/* Aggregation over an explicit list of territories (an ad hoc set of
 * communes that is not stored as a perimeter): each member is computed
 * on its own with the engine, then the members are combined with the
 * indicator's rule — sums of sums, a ratio of the summed numerators and
 * denominators, a weighted mean weighted by the summed weights — never a
 * mean of the members' rates. Members must not overlap (one inside
 * another would be counted twice): such a list is refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query/query_int.h"
#include "vigie/query.h"

/* Count one member of the list in the accumulator. A member that is
 * itself computed (an EPCI of the list) brings its own members and their
 * coverage; when its pair of inputs could not enter (a ratio whose
 * denominator is missing there), its members that had data are counted
 * with that outcome instead. */
static void count_member(vg_acc *acc, const vg_agg_value *va, vg_acc_outcome o)
{
	if (va->source != VG_SOURCE_COMPUTED || va->cov.members == 0) {
		vg_acc_member(acc, o, false);
		return;
	}
	vg_coverage c = va->cov;
	if (o != VG_ACC_ENTERED && c.with_data) {
		if (o == VG_ACC_SUPPRESSED)
			c.suppressed += c.with_data;
		else
			c.missing += c.with_data;
		c.with_data = c.via_passage = 0;
		c.partial = true;
	}
	vg_acc_merge_coverage(acc, &c);
}

static int ctx_for(vg_read *r, const char *code, vg_period period,
		   int64_t as_of, vg_agg_ctx **out, vg_error *err)
{
	uint32_t id;
	if (vg_read_indicator_id(r, code, &id, err))
		return VG_ENOTFOUND;
	return vg_agg_ctx_new(r, id, period, as_of, out, err);
}

int vg_agg_value_list(vg_read *r, uint32_t ind, vg_period period, int64_t as_of,
		      const uint32_t *ids, size_t n, vg_agg_value *out,
		      vg_error *err)
{
	memset(out, 0, sizeof(*out));
	out->value = NAN;
	out->source = VG_SOURCE_COMPUTED;
	out->cov.weight_total = out->cov.weight_covered = NAN;
	if (!n)
		return vg_error_set(err, VG_EINVAL,
				    "the list of territories is "
				    "empty");
	if (n > VG_AGG_LIST_MAX)
		return vg_error_set(
		    err, VG_ETOOBIG,
		    "a list of %zu territories: at most %d (store "
		    "a perimeter instead)",
		    n, VG_AGG_LIST_MAX);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			if (i != j &&
			    vg_read_territory_within(r, ids[i], ids[j]))
				return vg_error_set(
				    err, VG_EINVAL,
				    "%s is listed and lies within %s, also "
				    "listed: it would be counted twice",
				    vg_read_territory_code(r, ids[i]),
				    vg_read_territory_code(r, ids[j]));
	return vg__agg_value_members(r, ind, period, as_of, ids, n, out, err);
}

int vg__agg_value_members(vg_read *r, uint32_t ind, vg_period period,
			  int64_t as_of, const uint32_t *ids, size_t n,
			  vg_agg_value *out, vg_error *err)
{
	memset(out, 0, sizeof(*out));
	out->value = NAN;
	out->status = VG_STATUS_MISSING;
	out->source = n ? VG_SOURCE_COMPUTED : VG_SOURCE_NONE;
	out->cov.weight_total = out->cov.weight_covered = NAN;
	vg_indicator m;
	int rc = vg_read_indicator(r, ind, &m, err);
	if (rc)
		return rc;
	vg_agg_ctx *ca = NULL, *cb = NULL;
	const vg_agg_rule *rule = &m.agg;
	switch (rule->kind) {
	case VG_AGG_NONE:
		return vg_error_set(err, VG_EINVAL,
				    "%s has the rule none (published values "
				    "only): it cannot be computed over a list",
				    m.code);
	case VG_AGG_SUM:
	case VG_AGG_MIN:
	case VG_AGG_MAX:
		rc = vg_agg_ctx_new(r, ind, period, as_of, &ca, err);
		break;
	case VG_AGG_RATIO:
	case VG_AGG_WMEAN:
		rc = ctx_for(r, rule->a, period, as_of, &ca, err);
		if (!rc)
			rc = ctx_for(r, rule->b, period, as_of, &cb, err);
		break;
	}
	vg_acc acc;
	vg_acc_init(&acc, rule->kind);
	for (size_t i = 0; !rc && i < n; i++) {
		vg_agg_value va,
		    vb = {.value = NAN, .status = VG_STATUS_MISSING};
		if ((rc = vg_agg_value_at(ca, ids[i], &va, err)))
			break;
		if (cb && (rc = vg_agg_value_at(cb, ids[i], &vb, err)))
			break;
		/* b is the denominator or the weight (ignored by sum, min,
		 * max). Computed values that have none carry NaN and the
		 * status missing: they do not enter. */
		vg_acc_outcome o = vg_acc_add(&acc, va.value, va.status,
					      vb.value, vb.status, 1.0);
		count_member(&acc, &va, o);
	}
	vg_agg_ctx_free(ca);
	vg_agg_ctx_free(cb);
	if (rc)
		return rc;
	out->cov = acc.cov;
	out->value = vg_acc_result(&acc, rule->scale, &out->status);
	return 0;
}
