/* period=latest: the most recent period with a value, per indicator and
 * territory (or level). Candidates come from the store's catalogue of
 * blocks (vg_read_indicator_blocks: the periods an indicator, or an input
 * of its rule, has stored points for), newest first; each is then tried
 * with the engine, so a period whose points are all missing, or newer
 * than `as_of`, is passed over. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query/query_int.h"
#include "vigie/query.h"

typedef struct pset {
	vg_period *v;
	size_t n, cap;
	vg_periodicity kind;
	bool oom;
} pset;

static int add_period_cb(void *ud, vg_period p, uint16_t level)
{
	pset *s = ud;
	(void)level;
	if (vg_period_kind(p) != s->kind)
		return 0;
	if (s->n && s->v[s->n - 1] == p)
		return 0; /* same period, another level */
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 16;
		vg_period *nv = realloc(s->v, nc * sizeof(*nv));
		if (!nv) {
			s->oom = true;
			return VG_ENOMEM;
		}
		s->v = nv;
		s->cap = nc;
	}
	s->v[s->n++] = p;
	return 0;
}

static int collect(vg_read *r, uint32_t ind, pset *s, int depth)
{
	vg_indicator m;
	if (depth > 4 || vg_read_indicator(r, ind, &m, NULL))
		return 0;
	int rc = vg_read_indicator_blocks(r, ind, add_period_cb, s);
	if (rc || (m.agg.kind != VG_AGG_RATIO && m.agg.kind != VG_AGG_WMEAN))
		return rc;
	const char *in[2] = {m.agg.a, m.agg.b};
	for (int x = 0; x < 2 && !rc; x++) {
		uint32_t id;
		if (!strcmp(in[x], m.code) ||
		    vg_read_indicator_id(r, in[x], &id, NULL))
			continue;
		rc = collect(r, id, s, depth + 1);
	}
	return rc;
}

static int cmp_desc(const void *a, const void *b)
{
	vg_period x = *(const vg_period *)a, y = *(const vg_period *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

int vg_agg_periods(vg_read *r, uint32_t ind, vg_period **out, size_t *n,
		   vg_error *err)
{
	*out = NULL;
	*n = 0;
	vg_indicator m;
	int rc = vg_read_indicator(r, ind, &m, err);
	if (rc)
		return rc;
	pset s = {.kind = m.periodicity};
	rc = collect(r, ind, &s, 0);
	if (rc) {
		free(s.v);
		return vg_error_set(err, rc, "cannot list the periods of %s",
				    m.code);
	}
	qsort(s.v, s.n, sizeof(*s.v), cmp_desc);
	size_t k = 0;
	for (size_t i = 0; i < s.n; i++)
		if (!k || s.v[k - 1] != s.v[i])
			s.v[k++] = s.v[i];
	*out = s.v;
	*n = k;
	return 0;
}

int vg_agg_latest(vg_read *r, uint32_t ind, uint32_t target, int64_t as_of,
		  vg_membership_mode mode, vg_period *out, vg_error *err)
{
	*out = 0;
	vg_period *ps;
	size_t n;
	int rc = vg_agg_periods(r, ind, &ps, &n, err);
	for (size_t i = 0; i < n && !rc && !*out; i++) {
		vg_agg_ctx *c;
		if ((rc = vg_agg_ctx_new(r, ind, ps[i], as_of, &c, err)))
			break;
		vg_agg_ctx_set_membership(c, mode);
		vg_agg_value v;
		rc = vg_agg_value_at(c, target, &v, err);
		if (!rc && !isnan(v.value))
			*out = ps[i];
		vg_agg_ctx_free(c);
	}
	free(ps);
	return rc;
}

enum { FOUND = 1 };

static int first_value_cb(void *ud, const vg_agg_value *v)
{
	(void)ud;
	return isnan(v->value) ? 0 : FOUND;
}

static int first_point_cb(void *ud, const vg_point *p)
{
	(void)ud;
	return isnan(p->value) ? 0 : FOUND;
}

int vg_agg_latest_level(vg_read *r, uint32_t ind, uint16_t level,
			uint32_t within, int64_t as_of, vg_membership_mode mode,
			vg_period *out, vg_error *err)
{
	*out = 0;
	vg_period *ps;
	size_t n;
	int rc = vg_agg_periods(r, ind, &ps, &n, err);
	for (size_t i = 0; i < n && !rc && !*out; i++) {
		/* A value stored at the level, or one computed there. */
		int f = vg_read_slice(r, ind, ps[i], level, within, as_of,
				      first_point_cb, NULL);
		if (f == FOUND) {
			*out = ps[i];
			break;
		}
		if (f) {
			rc = vg_error_set(err, f, "cannot read a slice");
			break;
		}
		vg_agg_ctx *c;
		if ((rc = vg_agg_ctx_new(r, ind, ps[i], as_of, &c, err)))
			break;
		vg_agg_ctx_set_membership(c, mode);
		f = vg_aggregate_level(c, level, within, first_value_cb, NULL,
				       err);
		vg_agg_ctx_free(c);
		if (f == FOUND)
			*out = ps[i];
		else if (f)
			rc = f;
	}
	free(ps);
	return rc;
}
