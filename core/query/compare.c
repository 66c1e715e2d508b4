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
	if (vg_read_territory_id(r, "fr", &fr, NULL) == 0 &&
	    n < MAX_ANCESTORS) {
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

/* Is t within `within` at the context's period? For a perimeter whose
 * membership in force then is an older version, within one of that
 * version's members (the dictionaries' index holds the latest); as
 * vg_aggregate_level lists its peers. */
static bool within_at(vg_agg_ctx *c, uint32_t t, uint32_t within)
{
	vg_read *r = vg_agg_ctx_read(c);
	vg_membership_info mi;
	if (vg_agg_ctx_membership(c) != VG_MEMBERSHIP_IN_FORCE ||
	    vg_read_perimeter_membership(r, within, vg_agg_ctx_period(c), false,
					 &mi) != 0 ||
	    mi.latest)
		return vg_read_territory_within(r, t, within);
	for (uint32_t m = 0; m < mi.nmembers; m++)
		if (vg_read_territory_within(r, t, mi.members[m]))
			return true;
	return false;
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
	if (within && !within_at(c, target, within))
		return vg_error_set(err, VG_EINVAL, "'%s' is not within '%s'",
				    vg_read_territory_code(r, target),
				    vg_read_territory_code(r, within));
	int rc = vg_agg_value_at(c, target, &out->value, err);
	if (rc)
		return rc;
	peers p = {0};
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
		out->position_asc = (uint32_t)lower + 1;
		out->percentile = p.n ? 100.0 * (double)lower / (double)p.n : 0;
	}
	free(p.v);
	return 0;
}

#define MAX_ROWS 32

/* The compare rows of one indicator at one period, kept until we know
 * whether the period is the one to show. */
typedef struct rows_buf {
	vg_agg_value v[MAX_ROWS];
	int depth[MAX_ROWS];
	size_t n;
	bool any; /* some row has a value */
} rows_buf;

static int buf_row(void *ud, const vg_agg_value *v, int depth)
{
	rows_buf *b = ud;
	if (b->n < MAX_ROWS) {
		b->v[b->n] = *v;
		b->depth[b->n++] = depth;
	}
	b->any |= !isnan(v->value);
	return 0;
}

typedef struct ind_list {
	uint32_t *ids;
	size_t n, cap;
} ind_list;

static int collect_ind(void *ud, uint32_t id)
{
	ind_list *l = ud;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 32;
		uint32_t *nv = realloc(l->ids, ncap * sizeof(uint32_t));
		if (!nv)
			return VG_ENOMEM;
		l->ids = nv;
		l->cap = ncap;
	}
	l->ids[l->n++] = id;
	return 0;
}

/* The rows of `ind` at `period` into b. */
static int rows_at(vg_read *r, uint32_t ind, uint32_t target, vg_period period,
		   int64_t as_of, vg_membership_mode mode, bool target_only,
		   rows_buf *b, vg_error *err)
{
	vg_agg_ctx *c;
	b->n = 0;
	b->any = false;
	int rc = vg_agg_ctx_new(r, ind, period, as_of, &c, err);
	if (rc)
		return rc;
	vg_agg_ctx_set_membership(c, mode);
	if (target_only) {
		vg_agg_value v;
		rc = vg_agg_value_at(c, target, &v, err);
		if (!rc && !isnan(v.value))
			rc = vg_compare(c, target, buf_row, b, err);
	} else {
		rc = vg_compare(c, target, buf_row, b, err);
	}
	vg_agg_ctx_free(c);
	return rc;
}

/* Latest: the most recent period where the target has a value, else the
 * most recent where a container has one. */
static int latest_rows(vg_read *r, uint32_t ind, uint32_t target, int64_t as_of,
		       vg_membership_mode mode, rows_buf *b, vg_period *used,
		       vg_error *err)
{
	vg_period *ps;
	size_t n;
	*used = 0;
	int rc = vg_agg_periods(r, ind, &ps, &n, err);
	for (int pass = 0; pass < 2 && !rc && !*used; pass++)
		for (size_t i = 0; i < n && !rc; i++) {
			rc = rows_at(r, ind, target, ps[i], as_of, mode,
				     pass == 0, b, err);
			if (!rc && b->any) {
				*used = ps[i];
				break;
			}
		}
	free(ps);
	return rc;
}

int vg_profile(vg_read *r, uint32_t target, vg_period period, int64_t as_of,
	       vg_membership_mode mode, vg_profile_cb cb, void *ud,
	       vg_error *err)
{
	ind_list l = {0};
	int rc = vg_read_indicators(r, collect_ind, &l);
	rows_buf *b = malloc(sizeof(*b));
	if (!b)
		rc = vg_error_set(err, VG_ENOMEM, "out of memory");
	for (size_t i = 0; i < l.n && !rc; i++) {
		vg_indicator meta;
		if (vg_read_indicator(r, l.ids[i], &meta, NULL) ||
		    (period && meta.periodicity != vg_period_kind(period)))
			continue;
		vg_period used = period;
		if (period)
			rc = rows_at(r, l.ids[i], target, period, as_of, mode,
				     false, b, err);
		else
			rc = latest_rows(r, l.ids[i], target, as_of, mode, b,
					 &used, err);
		if (rc)
			break;
		if (!used) {
			vg_agg_value v;
			memset(&v, 0, sizeof(v));
			v.terr = target;
			v.value = NAN;
			v.status = VG_STATUS_MISSING;
			v.cov.weight_total = v.cov.weight_covered = NAN;
			v.inputs[0].level = v.inputs[1].level = -1;
			v.why = VG_WHY_NO_PERIOD;
			if (meta.agg.kind == VG_AGG_RATIO ||
			    meta.agg.kind == VG_AGG_WMEAN) {
				const char *in[2] = {meta.agg.a, meta.agg.b};
				for (int x = 1; x >= 0; x--) {
					uint32_t id;
					if (vg_read_indicator_id(r, in[x], &id,
								 NULL)) {
						v.why = VG_WHY_UNDEFINED_INPUT;
						v.why_input = (uint8_t)x;
					}
				}
			}
			rc = cb(ud, l.ids[i], 0, &v, 0);
			continue;
		}
		for (size_t k = 0; k < b->n && !rc; k++)
			rc = cb(ud, l.ids[i], used, &b->v[k], b->depth[k]);
	}
	free(b);
	free(l.ids);
	return rc;
}

typedef struct disp_ctx {
	double *v;
	uint32_t *t;
	size_t n, cap;
	uint32_t count;
} disp_ctx;

static int disp_cb(void *ud, const vg_agg_value *v)
{
	disp_ctx *d = ud;
	d->count++;
	if (isnan(v->value))
		return 0;
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 256;
		double *nv = realloc(d->v, ncap * sizeof(double));
		if (!nv)
			return VG_ENOMEM;
		d->v = nv;
		uint32_t *nt = realloc(d->t, ncap * sizeof(uint32_t));
		if (!nt)
			return VG_ENOMEM;
		d->t = nt;
		d->cap = ncap;
	}
	d->v[d->n] = v->value;
	d->t[d->n++] = v->terr;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* R type 7: h = (n-1)p, interpolate between floor(h) and ceil(h). */
static double quantile(const double *s, size_t n, double p)
{
	double h = (double)(n - 1) * p;
	size_t lo = (size_t)floor(h), hi = (size_t)ceil(h);
	return s[lo] + (h - (double)lo) * (s[hi] - s[lo]);
}

int vg_disparity_of(vg_agg_ctx *c, uint32_t target, uint16_t level,
		    vg_disparity *out, vg_error *err)
{
	memset(out, 0, sizeof(*out));
	out->min = out->q1 = out->median = out->q3 = out->max = NAN;
	out->max_min_ratio = NAN;
	disp_ctx d = {0};
	int rc = vg_aggregate_level(c, level, target, disp_cb, &d, err);
	out->count = d.count;
	out->with_data = (uint32_t)d.n;
	if (!rc && d.n) {
		size_t imin = 0, imax = 0;
		for (size_t i = 1; i < d.n; i++) {
			if (d.v[i] < d.v[imin])
				imin = i;
			if (d.v[i] > d.v[imax])
				imax = i;
		}
		out->min_terr = d.t[imin];
		out->max_terr = d.t[imax];
		qsort(d.v, d.n, sizeof(double), cmp_double);
		out->min = d.v[0];
		out->max = d.v[d.n - 1];
		out->q1 = quantile(d.v, d.n, 0.25);
		out->median = quantile(d.v, d.n, 0.5);
		out->q3 = quantile(d.v, d.n, 0.75);
		if (out->min > 0)
			out->max_min_ratio = out->max / out->min;
	}
	free(d.v);
	free(d.t);
	return rc;
}
