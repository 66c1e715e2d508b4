/* compare (a territory against what contains it) and rank (its position
 * among its peers), on top of the aggregation engine. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vigie/query.h"

#define MAX_ANCESTORS 32

int vg_compare(vg_agg_ctx *c, uint32_t target, vg_compare_cb cb, void *ud,
	       vg_error *err)
{
	vg_read *r = vg_agg_ctx_read(c);
	uint32_t list[MAX_ANCESTORS];
	int depth[MAX_ANCESTORS];
	size_t n = 0;
	list[n] = target;
	depth[n++] = 0;
	/* Breadth first: nearest containers first (EPCI, département, then
	 * région, then France), each territory once. */
	for (size_t i = 0; i < n; i++) {
		uint32_t ps[VG_MAX_PARENTS];
		size_t k = vg_read_territory_parents(r, list[i], ps);
		for (size_t j = 0; j < k && n < MAX_ANCESTORS; j++) {
			bool dup = false;
			for (size_t q = 0; q < n; q++)
				dup |= list[q] == ps[j];
			if (!dup) {
				list[n] = ps[j];
				depth[n++] = depth[i] + 1;
			}
		}
	}
	uint32_t fr;
	if (vg_read_territory_id(r, "fr", &fr, NULL) == 0 && n < MAX_ANCESTORS) {
		bool dup = false;
		for (size_t q = 0; q < n; q++)
			dup |= list[q] == fr;
		if (!dup) {
			list[n] = fr;
			depth[n] = n ? depth[n - 1] + 1 : 0;
			n++;
		}
	}
	for (size_t i = 0; i < n; i++) {
		vg_agg_value v;
		int rc = vg_agg_value_at(c, list[i], &v, err);
		if (!rc)
			rc = cb(ud, &v, depth[i]);
		if (rc)
			return rc;
	}
	return 0;
}

typedef struct peers {
	double *v;
	size_t n, cap;
	int rc;
} peers;

static int peer_cb(void *ud, const vg_agg_value *v)
{
	peers *p = ud;
	if (isnan(v->value))
		return 0;
	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 256;
		double *nv = realloc(p->v, ncap * sizeof(double));
		if (!nv)
			return VG_ENOMEM;
		p->v = nv;
		p->cap = ncap;
	}
	p->v[p->n++] = v->value;
	return 0;
}

int vg_rank_of(vg_agg_ctx *c, uint32_t target, uint32_t within, vg_rank *out,
	       vg_error *err)
{
	memset(out, 0, sizeof(*out));
	vg_read *r = vg_agg_ctx_read(c);
	uint16_t level;
	if (vg_read_territory_level(r, target, &level))
		return vg_error_set(err, VG_ENOTFOUND, "no territory #%u",
				    target);
	if (within && !vg_read_territory_within(r, target, within))
		return vg_error_set(err, VG_EINVAL,
				    "'%s' is not within '%s'",
				    vg_read_territory_code(r, target),
				    vg_read_territory_code(r, within));
	int rc = vg_agg_value_at(c, target, &out->value, err);
	if (rc)
		return rc;
	peers p = { 0 };
	rc = vg_aggregate_level(c, level, within, peer_cb, &p, err);
	if (rc) {
		free(p.v);
		return rc;
	}
	out->count = (uint32_t)p.n;
	if (!isnan(out->value.value)) {
		size_t higher = 0, lower = 0;
		for (size_t i = 0; i < p.n; i++) {
			higher += p.v[i] > out->value.value;
			lower += p.v[i] < out->value.value;
		}
		out->position = (uint32_t)higher + 1;
		out->percentile = p.n ? 100.0 * (double)lower / (double)p.n : 0;
	}
	free(p.v);
	return 0;
}
