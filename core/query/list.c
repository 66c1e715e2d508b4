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

static vg_status worse(vg_status a, vg_status b)
{
	return a > b ? a : b;
}

/* Fold one member's coverage into the list's. */
static void add_cov(vg_coverage *c, const vg_agg_value *v)
{
	if (v->source == VG_SOURCE_COMPUTED) {
		c->members += v->cov.members;
		c->with_data += v->cov.with_data;
		c->suppressed += v->cov.suppressed;
		c->via_passage += v->cov.via_passage;
		c->partial |= v->cov.partial;
	} else {
		c->members++;
		if (isnan(v->value))
			c->suppressed++;
		else
			c->with_data++;
	}
	if (isnan(v->value))
		c->partial = true;
}

static int ctx_for(vg_read *r, const char *code, vg_period period,
		   int64_t as_of, vg_agg_ctx **out, vg_error *err)
{
	uint32_t id;
	if (vg_read_indicator_id(r, code, &id, err))
		return VG_ENOTFOUND;
	return vg_agg_ctx_new(r, id, period, as_of, out, err);
}

int vg_agg_value_list(vg_read *r, uint32_t ind, vg_period period,
		      int64_t as_of, const uint32_t *ids, size_t n,
		      vg_agg_value *out, vg_error *err)
{
	memset(out, 0, sizeof(*out));
	out->value = NAN;
	out->source = VG_SOURCE_COMPUTED;
	out->cov.weight_total = out->cov.weight_covered = NAN;
	if (!n)
		return vg_error_set(err, VG_EINVAL, "the list of territories is "
				    "empty");
	if (n > VG_AGG_LIST_MAX)
		return vg_error_set(err, VG_ETOOBIG,
				    "a list of %zu territories: at most %d (store "
				    "a perimeter instead)",
				    n, VG_AGG_LIST_MAX);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			if (i != j && vg_read_territory_within(r, ids[i], ids[j]))
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
	double acc = 0, wsum = 0, wtot = 0, wcov = 0;
	bool any = false;
	vg_status st = VG_STATUS_OK;
	for (size_t i = 0; !rc && i < n; i++) {
		vg_agg_value va, vb;
		if ((rc = vg_agg_value_at(ca, ids[i], &va, err)))
			break;
		if (cb && (rc = vg_agg_value_at(cb, ids[i], &vb, err)))
			break;
		add_cov(&out->cov, &va);
		if (cb && isnan(vb.value))
			out->cov.partial = true;
		switch (rule->kind) {
		case VG_AGG_SUM:
			if (!isnan(va.value)) {
				acc += va.value;
				any = true;
				st = worse(st, va.status);
			}
			break;
		case VG_AGG_MIN:
		case VG_AGG_MAX:
			if (!isnan(va.value)) {
				bool better = rule->kind == VG_AGG_MIN
						      ? va.value < acc
						      : va.value > acc;
				if (!any || better)
					acc = va.value;
				any = true;
				st = worse(st, va.status);
			}
			break;
		case VG_AGG_RATIO:
		case VG_AGG_WMEAN:
			/* b is the denominator or the weight. */
			if (!isnan(vb.value))
				wtot += vb.value;
			if (!isnan(va.value) && !isnan(vb.value)) {
				acc += rule->kind == VG_AGG_RATIO
					       ? va.value
					       : va.value * vb.value;
				wsum += vb.value;
				wcov += vb.value;
				any = true;
				st = worse(worse(st, va.status), vb.status);
			}
			break;
		case VG_AGG_NONE:
			break;
		}
	}
	vg_agg_ctx_free(ca);
	vg_agg_ctx_free(cb);
	if (rc)
		return rc;
	out->status = any ? st : VG_STATUS_MISSING;
	if (!any)
		return 0;
	if (rule->kind == VG_AGG_RATIO || rule->kind == VG_AGG_WMEAN) {
		out->cov.weight_total = wtot;
		out->cov.weight_covered = wcov;
		if (wsum == 0) {
			out->status = VG_STATUS_MISSING;
			return 0;
		}
		out->value = rule->kind == VG_AGG_RATIO
				     ? acc / wsum * rule->scale
				     : acc / wsum;
	} else {
		out->value = acc;
	}
	return 0;
}
