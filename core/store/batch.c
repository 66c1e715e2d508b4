/* Writing: a batch buffers definitions and points in memory, and commit
 * applies them in one LMDB write transaction. Buffering first is what
 * makes "all or nothing" compatible with growing the map: when LMDB says
 * MDB_MAP_FULL the transaction is aborted, the map doubled and the same
 * buffer applied again. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_int.h"
#include "vigie/common.h"

#define PENDING 0x80000000u /* id field holds an index into the batch */

typedef struct pend_point {
	uint32_t ind, terr; /* id, or PENDING | index */
	uint32_t period;
	uint32_t seq; /* order of the put: the last one wins */
	double value;
	uint8_t status;
} pend_point;

struct vg_batch {
	vg_store *s;
	int64_t time;
	char origin[256];
	char checksum[96];
	vg_indicator *inds;
	size_t ninds, cap_inds;
	vg_strmap ind_pending;
	vg_territory *terrs;
	size_t nterrs, cap_terrs;
	vg_strmap terr_pending;
	pend_point *pts;
	size_t npts, cap_pts;
};

static double canonical_nan(void)
{
	return NAN;
}

int vg_batch_new(vg_store *s, const vg_batch_opts *opts, vg_batch **out,
		 vg_error *err)
{
	*out = NULL;
	if (s->read_only)
		return vg_error_at(err, VG_EREADONLY, s->dir, 0, 0,
				   "the store is open read-only");
	vg_batch *b = calloc(1, sizeof(*b));
	if (!b)
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	b->s = s;
	if (opts) {
		b->time = opts->time;
		if (opts->origin)
			snprintf(b->origin, sizeof(b->origin), "%s",
				 opts->origin);
		if (opts->checksum)
			snprintf(b->checksum, sizeof(b->checksum), "%s",
				 opts->checksum);
	}
	vg_strmap_init(&b->ind_pending);
	vg_strmap_init(&b->terr_pending);
	*out = b;
	return 0;
}

int vg_batch_describe(vg_batch *b, const char *origin, const char *checksum)
{
	if (origin)
		snprintf(b->origin, sizeof(b->origin), "%s", origin);
	if (checksum)
		snprintf(b->checksum, sizeof(b->checksum), "%s", checksum);
	return 0;
}

void vg_batch_free(vg_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nterrs; i++)
		vg_territory_clear(&b->terrs[i]);
	free(b->terrs);
	free(b->inds);
	free(b->pts);
	vg_strmap_free(&b->ind_pending);
	vg_strmap_free(&b->terr_pending);
	free(b);
}

size_t vg_batch_size(const vg_batch *b)
{
	return b->npts;
}

static int grow_array(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 64;
	while (ncap < need)
		ncap *= 2;
	void *np = realloc(*p, ncap * elem);
	if (!np)
		return VG_ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

int vg_batch_indicator(vg_batch *b, const vg_indicator *ind, vg_error *err)
{
	int rc = vg_indicator_code_check(ind->code, err);
	if (rc)
		return rc;
	if (ind->periodicity < VG_YEAR || ind->periodicity > VG_DAY)
		return vg_error_set(err, VG_EINVAL,
				    "indicator '%s' has no valid periodicity",
				    ind->code);
	uint32_t idx;
	if (vg_strmap_get(&b->ind_pending, ind->code, &idx)) {
		b->inds[idx] = *ind; /* redefined in the same batch */
		return 0;
	}
	if (grow_array((void **)&b->inds, &b->cap_inds, b->ninds + 1,
		       sizeof(*b->inds)) ||
	    vg_strmap_put(&b->ind_pending, ind->code, (uint32_t)b->ninds))
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	b->inds[b->ninds++] = *ind;
	return 0;
}

int vg_batch_territory(vg_batch *b, const vg_territory *t, vg_error *err)
{
	char canon[VG_CODE_MAX], level[VG_LEVEL_MAX];
	int rc = vg_territory_code_canon(t->level, t->code, canon, level, err);
	if (rc)
		return rc;
	if (!t->name[0])
		return vg_error_set(err, VG_EINVAL, "territory '%s' has no name",
				    canon);
	vg_territory copy = *t;
	strcpy(copy.code, canon);
	strcpy(copy.level, level);
	copy.members = NULL;
	copy.nmembers = 0;
	for (size_t i = 0; i < t->nparents; i++) {
		rc = vg_territory_code_canon(NULL, t->parents[i],
					     copy.parents[i], NULL, err);
		if (rc)
			return rc;
		if (strcmp(copy.parents[i], canon) == 0)
			return vg_error_set(err, VG_EINVAL,
					    "territory '%s' is its own parent",
					    canon);
	}
	if (t->nsuccessors && (t->nparents || t->nmembers))
		return vg_error_set(err, VG_EINVAL,
				    "territory '%s' has successors (an old "
				    "code) and also parents or members: an old "
				    "code lies within nothing, or it would be "
				    "counted twice", canon);
	if (t->nsuccessors > VG_MAX_SUCCESSORS)
		return vg_error_set(err, VG_EINVAL,
				    "territory '%s': more than %d successors",
				    canon, VG_MAX_SUCCESSORS);
	double wsum = 0;
	for (size_t i = 0; i < t->nsuccessors; i++) {
		double w = t->successors[i].weight;
		rc = vg_territory_code_canon(NULL, t->successors[i].code,
					     copy.successors[i].code, NULL,
					     err);
		if (rc)
			return rc;
		if (strcmp(copy.successors[i].code, canon) == 0)
			return vg_error_set(err, VG_EINVAL,
					    "territory '%s' is its own "
					    "successor", canon);
		if (!(w > 0 && w <= 1))
			return vg_error_set(err, VG_EINVAL,
					    "territory '%s': weight %g of "
					    "successor '%s' is not in (0, 1]",
					    canon, w, copy.successors[i].code);
		wsum += w;
	}
	/* The shares of an old territory must account for all of it, once:
	 * more would count people twice, less would lose them. */
	if (t->nsuccessors && fabs(wsum - 1) > 1e-6)
		return vg_error_set(err, VG_EINVAL,
				    "territory '%s': the weights of its "
				    "successors add up to %g, not 1", canon,
				    wsum);
	if (t->has_from && !t->nmembers)
		return vg_error_set(err, VG_EINVAL,
				    "perimeter '%s': a membership from a "
				    "period needs members", canon);
	if (t->has_from && vg_period_kind(t->from) == VG_PERIODICITY_NONE)
		return vg_error_set(err, VG_EINVAL,
				    "perimeter '%s': bad 'from' period",
				    canon);
	/* The batch's copy holds the definition as versions (members are
	 * filled from the latest one at commit); has_from on it means
	 * "merge these versions into the stored ones". */
	copy.versions = NULL;
	copy.nversions = 0;
	vg_membership v = { .has_from = t->has_from, .from = t->from };
	if (t->nmembers) {
		v.members = malloc(t->nmembers * VG_CODE_MAX);
		if (!v.members)
			return vg_error_set(err, VG_ENOMEM, "out of memory");
		for (size_t i = 0; i < t->nmembers; i++) {
			rc = vg_territory_code_canon(NULL, t->members[i],
						     v.members[i], NULL, err);
			if (rc) {
				free(v.members);
				return rc;
			}
		}
		v.nmembers = t->nmembers;
	}
	uint32_t idx;
	vg_territory *dst;
	if (vg_strmap_get(&b->terr_pending, canon, &idx)) {
		/* Defined again in this batch: a dated definition adds a
		 * version to the earlier ones (a CSV with one row per
		 * version), an undated one replaces them all. */
		dst = &b->terrs[idx];
		if (t->has_from) {
			copy.versions = dst->versions;
			copy.nversions = dst->nversions;
			copy.has_from = dst->has_from || !dst->nversions;
			dst->versions = NULL;
			dst->nversions = 0;
		}
		vg_territory_clear(dst);
		*dst = copy;
	} else {
		if (grow_array((void **)&b->terrs, &b->cap_terrs,
			       b->nterrs + 1, sizeof(*b->terrs)) ||
		    vg_strmap_put(&b->terr_pending, canon,
				  (uint32_t)b->nterrs)) {
			free(v.members);
			return vg_error_set(err, VG_ENOMEM, "out of memory");
		}
		dst = &b->terrs[b->nterrs++];
		*dst = copy;
	}
	if (v.nmembers && vg__versions_put(&dst->versions, &dst->nversions,
					   &v)) {
		free(v.members);
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	}
	return 0;
}

/* Resolve codes against the batch first (a redefinition in this batch
 * wins), then the store's dictionaries. */
static int resolve(vg_batch *b, const char *ind, const char *terr,
		   uint32_t *ind_ref, uint32_t *terr_ref, vg_periodicity *per)
{
	uint32_t v;
	int found = 0;
	if (vg_strmap_get(&b->ind_pending, ind, &v)) {
		*ind_ref = PENDING | v;
		*per = b->inds[v].periodicity;
		found |= 1;
	}
	if (vg_strmap_get(&b->terr_pending, terr, &v)) {
		*terr_ref = PENDING | v;
		found |= 2;
	}
	if (found == 3)
		return 3;
	vg_store *s = b->s;
	pthread_rwlock_rdlock(&s->lock);
	if (!(found & 1) && vg_strmap_get(&s->dict.ind_map, ind, &v)) {
		*ind_ref = v;
		*per = s->dict.inds[v].periodicity;
		found |= 1;
	}
	if (!(found & 2) && vg_strmap_get(&s->dict.terr_map, terr, &v)) {
		*terr_ref = v;
		found |= 2;
	}
	pthread_rwlock_unlock(&s->lock);
	return found;
}

int vg_batch_point(vg_batch *b, const char *ind, const char *terr,
		   vg_period period, double value, vg_status st, vg_error *err)
{
	uint32_t iref = 0, tref = 0;
	vg_periodicity per = VG_PERIODICITY_NONE;
	int found = resolve(b, ind, terr, &iref, &tref, &per);
	if (found != 3) {
		/* Maybe another process defined it since we loaded. */
		vg__dict_refresh(b->s, NULL);
		found = resolve(b, ind, terr, &iref, &tref, &per);
	}
	if (!(found & 1))
		return vg_error_set(err, VG_ENOTFOUND,
				    "unknown indicator '%s' (define it first, "
				    "e.g. with 'vigie import indicators')",
				    ind);
	if (!(found & 2))
		return vg_error_set(err, VG_ENOTFOUND,
				    "unknown territory '%s' (define it first, "
				    "e.g. with 'vigie import territories')",
				    terr);
	if (vg_period_kind(period) != per) {
		char ps[VG_PERIOD_STRLEN];
		if (vg_period_format(period, ps, sizeof(ps)))
			strcpy(ps, "?");
		return vg_error_set(err, VG_EPERIOD,
				    "period '%s' is a %s but indicator '%s' "
				    "is %s (a series mixes no periodicities)",
				    ps, vg_periodicity_name(vg_period_kind(period)),
				    ind, vg_periodicity_name(per));
	}
	if ((unsigned)st > VG_STATUS_MISSING)
		return vg_error_set(err, VG_EINVAL, "invalid status %d",
				    (int)st);
	if (st == VG_STATUS_SUPPRESSED || st == VG_STATUS_MISSING)
		value = canonical_nan();
	else if (!isfinite(value))
		return vg_error_set(err, VG_EINVAL,
				    "value for %s %s is not a finite number "
				    "(use status suppressed or missing)", ind,
				    terr);
	if (b->npts >= UINT32_MAX - 1)
		return vg_error_set(err, VG_ETOOBIG, "batch too large");
	if (grow_array((void **)&b->pts, &b->cap_pts, b->npts + 1,
		       sizeof(*b->pts)))
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	b->pts[b->npts] = (pend_point){ iref, tref, period, (uint32_t)b->npts,
					value, (uint8_t)st };
	b->npts++;
	return 0;
}

/* ---- applying -------------------------------------------------------- */

/* Everything resolved during one attempt at applying the batch. Rebuilt
 * from scratch on every attempt, so a retry after growing the map starts
 * clean. */
typedef struct apply_ctx {
	vg_batch *b;
	vg_store *s;
	MDB_txn *txn;
	vg__dict dict; /* the dictionaries as of this transaction */
	bool own_dict;
	uint32_t *ind_ids;  /* pending index -> id */
	uint32_t *terr_ids; /* pending index -> id */
	uint16_t *terr_level;
	uint32_t *terr_rank;
	uint32_t vintage;
	bool defs_changed;
	/* Indicators with a new or revised point, in id order (the points
	 * are sorted by indicator): recorded in the vintage so a daemon can
	 * tell its subscribers what changed. */
	uint32_t *touched;
	size_t ntouched;
	const struct res_point *dup; /* a point put twice, differently */
	vg_commit_info info;
} apply_ctx;

static int mdb_get_u32key(MDB_txn *txn, MDB_dbi dbi, const char *code,
			  uint32_t *id)
{
	MDB_val k = { strlen(code), (void *)code }, v;
	int rc = mdb_get(txn, dbi, &k, &v);
	if (rc)
		return rc;
	if (v.mv_size != 4)
		return MDB_CORRUPTED;
	*id = vg__get_be32(v.mv_data);
	return 0;
}

/* Write a record if it differs from the stored one. */
static int put_record(apply_ctx *a, MDB_dbi dbi, uint32_t id, const char *json,
		      bool *changed)
{
	uint8_t kb[4];
	vg__put_be32(kb, id);
	MDB_val k = { 4, kb }, v;
	size_t n = strlen(json);
	int rc = mdb_get(a->txn, dbi, &k, &v);
	if (rc == 0 && v.mv_size == n && memcmp(v.mv_data, json, n) == 0) {
		*changed = false;
		return 0;
	}
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	*changed = true;
	v.mv_size = n;
	v.mv_data = (void *)json;
	return mdb_put(a->txn, dbi, &k, &v, 0);
}

static int new_code(apply_ctx *a, MDB_dbi code_dbi, const char *code,
		    const char *counter, uint32_t *id)
{
	uint64_t next;
	int rc = vg__meta_get_u64(a->txn, a->s, counter, &next);
	if (rc)
		return rc;
	if (next == 0)
		next = 1;
	*id = (uint32_t)next;
	uint8_t vb[4];
	vg__put_be32(vb, *id);
	MDB_val k = { strlen(code), (void *)code }, v = { 4, vb };
	rc = mdb_put(a->txn, code_dbi, &k, &v, MDB_NOOVERWRITE);
	if (!rc)
		rc = vg__meta_put_u64(a->txn, a->s, counter, next + 1);
	return rc;
}

static int apply_indicators(apply_ctx *a, vg_error *err)
{
	vg_batch *b = a->b;
	for (size_t i = 0; i < b->ninds; i++) {
		uint32_t id;
		int rc = mdb_get_u32key(a->txn, a->s->ind_code, b->inds[i].code,
					&id);
		if (rc == MDB_NOTFOUND)
			rc = new_code(a, a->s->ind_code, b->inds[i].code,
				      "next_ind", &id);
		if (rc)
			return rc;
		a->ind_ids[i] = id;
		if (id < a->dict.ninds && a->dict.inds[id].code[0] &&
		    a->dict.inds[id].periodicity != b->inds[i].periodicity) {
			/* Changing it would leave stored points with
			 * periods of another kind. */
			vg_error_set(err, VG_EPERIOD,
				     "indicator '%s' is %s in the store; it "
				     "cannot become %s", b->inds[i].code,
				     vg_periodicity_name(
					     a->dict.inds[id].periodicity),
				     vg_periodicity_name(
					     b->inds[i].periodicity));
			return -1;
		}
		char *json = vg__indicator_json(&b->inds[i]);
		if (!json)
			return ENOMEM;
		bool changed;
		rc = put_record(a, a->s->ind, id, json, &changed);
		free(json);
		if (rc)
			return rc;
		if (changed) {
			a->info.indicators++;
			a->defs_changed = true;
		}
	}
	return 0;
}

static int level_id(apply_ctx *a, const char *level, uint16_t *id)
{
	MDB_val k = { strlen(level), (void *)level }, v;
	int rc = mdb_get(a->txn, a->s->level, &k, &v);
	if (rc == 0) {
		memcpy(id, v.mv_data, 2);
		return 0;
	}
	if (rc != MDB_NOTFOUND)
		return rc;
	MDB_stat st;
	if ((rc = mdb_stat(a->txn, a->s->level, &st)))
		return rc;
	if (st.ms_entries >= 65535)
		return MDB_CORRUPTED;
	*id = (uint16_t)st.ms_entries;
	v.mv_size = 2;
	v.mv_data = id;
	return mdb_put(a->txn, a->s->level, &k, &v, 0);
}

/* Is `code` a territory of the store or of this batch? */
static bool terr_known(apply_ctx *a, const char *code)
{
	uint32_t id;
	if (vg_strmap_get(&a->b->terr_pending, code, &id))
		return true;
	return mdb_get_u32key(a->txn, a->s->terr_code, code, &id) == 0;
}

static int write_territory(apply_ctx *a, size_t i, const vg_territory *t,
			   vg_error *err);

/* The batch's record of territory `i` of the batch for `pending` code. */
static const vg_territory *pending(apply_ctx *a, const char *code)
{
	uint32_t idx;
	return vg_strmap_get(&a->b->terr_pending, code, &idx)
		       ? &a->b->terrs[idx]
		       : NULL;
}

/* Is `code` a perimeter (in this batch, or else in the store)? */
static bool is_perimeter(apply_ctx *a, const char *code)
{
	const vg_territory *p = pending(a, code);
	if (p)
		return p->nversions > 0;
	uint32_t id;
	return vg_strmap_get(&a->dict.terr_map, code, &id) &&
	       id < a->dict.nterrs && a->dict.terrs[id].nmembers > 0;
}

/* Does `code` lie below (through parents) a territory of `set`? Parents
 * are this batch's when it defines the territory, else the store's. The
 * one found goes to `found`. */
static bool below_one_of(apply_ctx *a, const char *code, const vg_strmap *set,
			 char *found, int depth)
{
	if (depth > 16)
		return false;
	const vg_territory *p = pending(a, code);
	uint32_t id, x;
	size_t np = 0;
	const char *par[VG_MAX_PARENTS];
	if (p) {
		for (size_t k = 0; k < p->nparents; k++)
			par[np++] = p->parents[k];
	} else if (vg_strmap_get(&a->dict.terr_map, code, &id) &&
		   id < a->dict.nterrs) {
		const vg__terr_entry *e = &a->dict.terrs[id];
		for (size_t k = 0; k < e->nparents; k++)
			if (e->parents[k] < a->dict.nterrs)
				par[np++] = a->dict.terrs[e->parents[k]].code;
	}
	for (size_t k = 0; k < np; k++) {
		if (vg_strmap_get(set, par[k], &x)) {
			snprintf(found, VG_CODE_MAX, "%s", par[k]);
			return true;
		}
		if (below_one_of(a, par[k], set, found, depth + 1))
			return true;
	}
	return false;
}

/* One membership version: every member defined, none a perimeter (a
 * perimeter's figures come from leaves; nesting would make its members'
 * own versions ambiguous), none listed twice or lying within another
 * member (it would be counted twice). Errors name the member. */
static int check_version(apply_ctx *a, const vg_territory *t,
			 const vg_membership *v, vg_error *err)
{
	char from[VG_PERIOD_STRLEN + 16] = "", found[VG_CODE_MAX];
	if (v->has_from) {
		char ps[VG_PERIOD_STRLEN];
		if (vg_period_format(v->from, ps, sizeof(ps)))
			strcpy(ps, "?");
		snprintf(from, sizeof(from), " (from %s)", ps);
	}
	vg_strmap set;
	vg_strmap_init(&set);
	int rc = 0;
	for (size_t m = 0; m < v->nmembers && !rc; m++) {
		const char *c = v->members[m];
		uint32_t x;
		if (!terr_known(a, c))
			rc = vg_error_set(err, VG_ENOTFOUND,
					  "perimeter '%s'%s: member '%s' is "
					  "not defined", t->code, from, c);
		else if (!strcmp(c, t->code) || is_perimeter(a, c))
			rc = vg_error_set(err, VG_EINVAL,
					  "perimeter '%s'%s: member '%s' is a "
					  "perimeter; list its members instead",
					  t->code, from, c);
		else if (vg_strmap_get(&set, c, &x))
			rc = vg_error_set(err, VG_EINVAL,
					  "perimeter '%s'%s: member '%s' is "
					  "listed twice", t->code, from, c);
		else if (vg_strmap_put(&set, c, (uint32_t)m))
			rc = vg_error_set(err, VG_ENOMEM, "out of memory");
	}
	for (size_t m = 0; m < v->nmembers && !rc; m++)
		if (below_one_of(a, v->members[m], &set, found, 0))
			rc = vg_error_set(err, VG_EINVAL,
					  "perimeter '%s'%s: member '%s' lies "
					  "within member '%s': it would be "
					  "counted twice", t->code, from,
					  v->members[m], found);
	vg_strmap_free(&set);
	return rc ? -1 : 0;
}

/* What territory `i` of the batch will be once written: a dated
 * definition merged into the stored versions (the version with the same
 * start replaced, the others kept), members = the latest version's.
 * Built aside: the batch stays as it was in case the transaction is
 * retried. */
static int effective(apply_ctx *a, size_t i, vg_territory *w, vg_error *err)
{
	const vg_territory *t = &a->b->terrs[i];
	*w = *t;
	w->members = NULL;
	w->nmembers = 0;
	w->versions = NULL;
	w->nversions = 0;
	w->has_from = false;
	if (t->has_from) {
		uint8_t kb[4];
		vg__put_be32(kb, a->terr_ids[i]);
		MDB_val k = { 4, kb }, v;
		int rc = mdb_get(a->txn, a->s->terr, &k, &v);
		if (rc == 0) {
			vg_territory old;
			if (vg__territory_parse(v.mv_data, v.mv_size, &old,
						NULL, err))
				return -1;
			w->versions = old.versions;
			w->nversions = old.nversions;
			old.versions = NULL;
			old.nversions = 0;
			vg_territory_clear(&old);
		} else if (rc != MDB_NOTFOUND) {
			return rc;
		}
	}
	for (size_t k = 0; k < t->nversions; k++) {
		vg_membership v = t->versions[k];
		size_t sz = v.nmembers * VG_CODE_MAX;
		v.members = malloc(sz);
		if (!v.members)
			return ENOMEM;
		memcpy(v.members, t->versions[k].members, sz);
		if (vg__versions_put(&w->versions, &w->nversions, &v)) {
			free(v.members);
			return ENOMEM;
		}
	}
	if (w->nversions) {
		const vg_membership *l = &w->versions[w->nversions - 1];
		w->members = malloc(l->nmembers * VG_CODE_MAX);
		if (!w->members)
			return ENOMEM;
		memcpy(w->members, l->members, l->nmembers * VG_CODE_MAX);
		w->nmembers = l->nmembers;
	}
	return 0;
}

static int apply_territories(apply_ctx *a, vg_error *err)
{
	vg_batch *b = a->b;
	/* Pass 1: ids, levels and ranks, so pass 2 can check references to
	 * territories defined anywhere in the batch. */
	for (size_t i = 0; i < b->nterrs; i++) {
		vg_territory *t = &b->terrs[i];
		uint32_t id;
		uint16_t lid;
		int rc = level_id(a, t->level, &lid);
		if (rc)
			return rc;
		rc = mdb_get_u32key(a->txn, a->s->terr_code, t->code, &id);
		if (rc == 0) {
			if (id >= a->dict.nterrs) {
				return MDB_CORRUPTED;
			}
			const vg__terr_entry *e = &a->dict.terrs[id];
			if (e->level != lid) {
				vg_error_set(err, VG_EINVAL,
					     "territory '%s' exists with level "
					     "'%s'; its level cannot change",
					     t->code, a->dict.levels[e->level]);
				return -1;
			}
			a->terr_rank[i] = e->rank;
		} else if (rc == MDB_NOTFOUND) {
			rc = new_code(a, a->s->terr_code, t->code, "next_terr",
				      &id);
			if (rc)
				return rc;
			/* Rank = the level's next free slot in blocks. */
			char key[32];
			uint64_t rank;
			snprintf(key, sizeof(key), "rank:%u", lid);
			if ((rc = vg__meta_get_u64(a->txn, a->s, key, &rank)) ||
			    (rc = vg__meta_put_u64(a->txn, a->s, key,
						   rank + 1)))
				return rc;
			a->terr_rank[i] = (uint32_t)rank;
		} else {
			return rc;
		}
		a->terr_ids[i] = id;
		a->terr_level[i] = lid;
	}
	for (size_t i = 0; i < b->nterrs; i++) {
		vg_territory w;
		int rc = effective(a, i, &w, err);
		if (!rc)
			rc = write_territory(a, i, &w, err);
		vg_territory_clear(&w);
		if (rc)
			return rc;
	}
	return 0;
}

static int write_territory(apply_ctx *a, size_t i, const vg_territory *t,
			   vg_error *err)
{
	{ /* kept as one block: the checks read like the record they check */
		for (size_t p = 0; p < t->nparents; p++)
			if (!terr_known(a, t->parents[p])) {
				vg_error_set(err, VG_ENOTFOUND,
					     "territory '%s': parent '%s' is "
					     "not defined (neither in the store "
					     "nor in this import)", t->code,
					     t->parents[p]);
				return -1;
			}
		for (size_t k = 0; k < t->nversions; k++) {
			int rc = check_version(a, t, &t->versions[k], err);
			if (rc)
				return rc;
		}
		for (size_t k = 0; k < t->nsuccessors; k++)
			if (!terr_known(a, t->successors[k].code)) {
				vg_error_set(err, VG_ENOTFOUND,
					     "old territory '%s': successor "
					     "'%s' is not defined", t->code,
					     t->successors[k].code);
				return -1;
			}
		char *json = vg__territory_json(t, a->terr_rank[i]);
		if (!json)
			return ENOMEM;
		bool changed;
		int rc = put_record(a, a->s->terr, a->terr_ids[i], json,
				    &changed);
		free(json);
		if (rc)
			return rc;
		if (changed) {
			a->info.territories++;
			a->defs_changed = true;
		}
	}
	return 0;
}

/* A point ready to write: ids resolved, block coordinates attached. */
struct res_point {
	uint32_t ind, terr, period, seq;
	uint32_t rank;
	uint16_t level;
	uint8_t status;
	uint8_t write; /* new or changed: goes into its block */
	double value;
};
typedef struct res_point res_point;

static int cmp_pkey(const void *x, const void *y)
{
	const res_point *a = x, *b = y;
	if (a->ind != b->ind)
		return a->ind < b->ind ? -1 : 1;
	if (a->terr != b->terr)
		return a->terr < b->terr ? -1 : 1;
	if (a->period != b->period)
		return a->period < b->period ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int cmp_bkey(const void *x, const void *y)
{
	const res_point *a = x, *b = y;
	if (a->ind != b->ind)
		return a->ind < b->ind ? -1 : 1;
	if (a->period != b->period)
		return a->period < b->period ? -1 : 1;
	if (a->level != b->level)
		return a->level < b->level ? -1 : 1;
	return a->rank < b->rank ? -1 : a->rank > b->rank;
}

static bool same_value(double x, double y)
{
	if (isnan(x) || isnan(y))
		return isnan(x) && isnan(y);
	return memcmp(&x, &y, sizeof(x)) == 0;
}

static int write_points(apply_ctx *a, res_point *rp, size_t n)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(a->txn, a->s->points, &cur);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		res_point *p = &rp[i];
		p->write = 0;
		/* Sorted by key then seq: the same point put twice with
		 * the same value and status counts once; with different
		 * ones the batch contradicts itself, and guessing which is
		 * right would be a silent wrong number. */
		if (i + 1 < n && rp[i + 1].ind == p->ind &&
		    rp[i + 1].terr == p->terr && rp[i + 1].period == p->period) {
			if (rp[i + 1].status != p->status ||
			    !same_value(rp[i + 1].value, p->value)) {
				a->dup = p;
				rc = -1;
				break;
			}
			continue;
		}
		uint8_t kb[VG_PKEY_LEN], vb[VG_PVAL_LEN];
		vg__pkey(kb, p->ind, p->terr, p->period);
		MDB_val k = { VG_PKEY_LEN, kb }, v;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
		if (rc == 0) {
			double old;
			uint8_t ost;
			uint32_t ovint;
			if (v.mv_size != VG_PVAL_LEN) {
				rc = MDB_CORRUPTED;
				break;
			}
			vg__pval_get(v.mv_data, &old, &ost, &ovint);
			if (ost == p->status && same_value(old, p->value)) {
				a->info.points_unchanged++;
				continue;
			}
			/* A revision: the old value goes to history under
			 * the vintage that wrote it. */
			uint8_t hk[VG_HKEY_LEN], hv[VG_HVAL_LEN];
			vg__hkey(hk, p->ind, p->terr, p->period, ovint);
			memcpy(hv, &old, 8);
			hv[8] = ost;
			MDB_val hkv = { VG_HKEY_LEN, hk }, hvv = { VG_HVAL_LEN, hv };
			if ((rc = mdb_put(a->txn, a->s->hist, &hkv, &hvv, 0)))
				break;
			a->info.points_changed++;
		} else if (rc == MDB_NOTFOUND) {
			a->info.points_new++;
		} else {
			break;
		}
		vg__pval(vb, p->value, p->status, a->vintage);
		k.mv_size = VG_PKEY_LEN;
		k.mv_data = kb;
		v.mv_size = VG_PVAL_LEN;
		v.mv_data = vb;
		if ((rc = mdb_cursor_put(cur, &k, &v, 0)))
			break;
		p->write = 1;
		if (!a->ntouched || a->touched[a->ntouched - 1] != p->ind) {
			uint32_t *nt = realloc(a->touched, (a->ntouched + 1) *
							     sizeof(*nt));
			if (!nt) {
				rc = ENOMEM;
				break;
			}
			a->touched = nt;
			a->touched[a->ntouched++] = p->ind;
		}
		rc = 0;
	}
	mdb_cursor_close(cur);
	return rc;
}

/* Update the dense cross-section blocks touched by the batch: one
 * read-modify-write per (indicator, period, level). */
static int write_blocks(apply_ctx *a, res_point *rp, size_t n)
{
	qsort(rp, n, sizeof(*rp), cmp_bkey);
	uint8_t *buf = NULL;
	size_t bufcap = 0;
	int rc = 0;
	for (size_t i = 0; i < n && !rc;) {
		size_t j = i;
		uint32_t maxrank = 0;
		bool any = false;
		while (j < n && rp[j].ind == rp[i].ind &&
		       rp[j].period == rp[i].period &&
		       rp[j].level == rp[i].level) {
			if (rp[j].write) {
				any = true;
				if (rp[j].rank > maxrank)
					maxrank = rp[j].rank;
			}
			j++;
		}
		if (!any) {
			i = j;
			continue;
		}
		uint8_t kb[VG_BKEY_LEN];
		vg__bkey(kb, rp[i].ind, rp[i].period, rp[i].level);
		MDB_val k = { VG_BKEY_LEN, kb }, v;
		uint32_t oldn = 0;
		const uint8_t *old = NULL;
		rc = mdb_get(a->txn, a->s->blocks, &k, &v);
		if (rc == 0) {
			uint32_t magic;
			memcpy(&magic, v.mv_data, 4);
			memcpy(&oldn, (uint8_t *)v.mv_data + 4, 4);
			if (magic != VG_BLOCK_MAGIC ||
			    v.mv_size != vg__block_size(oldn)) {
				rc = MDB_CORRUPTED;
				break;
			}
			old = v.mv_data;
		} else if (rc != MDB_NOTFOUND) {
			break;
		}
		rc = 0;
		/* Size the block for the whole level so it grows rarely. */
		uint32_t nn = oldn;
		if (maxrank + 1 > nn)
			nn = maxrank + 1;
		uint16_t lv = rp[i].level;
		if (lv < a->dict.nlevels && a->dict.level_len[lv] > nn)
			nn = a->dict.level_len[lv];
		size_t sz = vg__block_size(nn);
		if (sz > bufcap) {
			uint8_t *nb = realloc(buf, sz);
			if (!nb) {
				rc = ENOMEM;
				break;
			}
			buf = nb;
			bufcap = sz;
		}
		memset(buf, 0, sz);
		uint32_t magic = VG_BLOCK_MAGIC;
		memcpy(buf, &magic, 4);
		memcpy(buf + 4, &nn, 4);
		uint8_t *vals = buf + VG_BLOCK_HDR;
		uint8_t *vints = vals + (size_t)nn * 8;
		uint8_t *sts = vints + (size_t)nn * 4;
		if (old) {
			const uint8_t *ov = old + VG_BLOCK_HDR;
			memcpy(vals, ov, (size_t)oldn * 8);
			memcpy(vints, ov + (size_t)oldn * 8, (size_t)oldn * 4);
			memcpy(sts, ov + (size_t)oldn * 12, oldn);
		}
		for (size_t q = i; q < j; q++) {
			if (!rp[q].write)
				continue;
			uint32_t r = rp[q].rank;
			memcpy(vals + (size_t)r * 8, &rp[q].value, 8);
			memcpy(vints + (size_t)r * 4, &a->vintage, 4);
			sts[r] = rp[q].status;
		}
		v.mv_size = sz;
		v.mv_data = buf;
		rc = mdb_put(a->txn, a->s->blocks, &k, &v, 0);
		i = j;
	}
	free(buf);
	return rc;
}

static int apply_points(apply_ctx *a, vg_error *err)
{
	vg_batch *b = a->b;
	if (!b->npts)
		return 0;
	res_point *rp = malloc(b->npts * sizeof(*rp));
	if (!rp)
		return ENOMEM;
	for (size_t i = 0; i < b->npts; i++) {
		const pend_point *p = &b->pts[i];
		res_point *r = &rp[i];
		r->ind = p->ind & PENDING ? a->ind_ids[p->ind & ~PENDING]
					  : p->ind;
		if (p->terr & PENDING) {
			uint32_t x = p->terr & ~PENDING;
			r->terr = a->terr_ids[x];
			r->level = a->terr_level[x];
			r->rank = a->terr_rank[x];
		} else {
			if (p->terr >= a->dict.nterrs ||
			    !a->dict.terrs[p->terr].code[0]) {
				free(rp);
				return MDB_CORRUPTED;
			}
			r->terr = p->terr;
			r->level = a->dict.terrs[p->terr].level;
			r->rank = a->dict.terrs[p->terr].rank;
		}
		r->period = p->period;
		r->seq = p->seq;
		r->status = p->status;
		r->value = p->value;
		r->write = 0;
	}
	qsort(rp, b->npts, sizeof(*rp), cmp_pkey);
	int rc = write_points(a, rp, b->npts);
	if (rc == -1 && a->dup) {
		char ps[VG_PERIOD_STRLEN] = "?";
		vg_period_format(a->dup->period, ps, sizeof(ps));
		const char *ic = a->dup->ind < a->dict.ninds
					 ? a->dict.inds[a->dup->ind].code
					 : "?";
		const char *tc = a->dup->terr < a->dict.nterrs
					 ? a->dict.terrs[a->dup->terr].code
					 : "?";
		vg_error_set(err, VG_EINVAL,
			     "the point %s %s %s is given twice with different "
			     "values or statuses; nothing was written", ic, tc,
			     ps);
	}
	if (!rc)
		rc = write_blocks(a, rp, b->npts);
	free(rp);
	return rc;
}

static int write_vintage(apply_ctx *a)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return ENOMEM;
	cJSON_AddNumberToObject(o, "time", (double)a->info.time);
	cJSON_AddStringToObject(o, "origin", a->b->origin);
	cJSON_AddStringToObject(o, "checksum", a->b->checksum);
	cJSON_AddNumberToObject(o, "new", (double)a->info.points_new);
	cJSON_AddNumberToObject(o, "changed", (double)a->info.points_changed);
	cJSON_AddNumberToObject(o, "unchanged",
				(double)a->info.points_unchanged);
	cJSON *inds = cJSON_AddArrayToObject(o, "indicators");
	for (size_t i = 0; inds && i < a->ntouched; i++)
		if (a->touched[i] < a->dict.ninds)
			cJSON_AddItemToArray(
				inds, cJSON_CreateString(
					      a->dict.inds[a->touched[i]].code));
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!s)
		return ENOMEM;
	uint8_t kb[4];
	vg__put_be32(kb, a->vintage);
	MDB_val k = { 4, kb }, v = { strlen(s), s };
	int rc = mdb_put(a->txn, a->s->vint, &k, &v, 0);
	free(s);
	return rc;
}

/* The time of the newest vintage (publication times never go back, so
 * vintage ids are in time order and `as_of` can compare ids). */
static int last_vintage(apply_ctx *a, uint32_t *id, int64_t *t)
{
	MDB_cursor *c;
	MDB_val k, v;
	*id = 0;
	*t = 0;
	int rc = mdb_cursor_open(a->txn, a->s->vint, &c);
	if (rc)
		return rc;
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (rc == 0) {
		*id = vg__get_be32(k.mv_data);
		cJSON *o = cJSON_ParseWithLength(v.mv_data, v.mv_size);
		const cJSON *tm = cJSON_GetObjectItemCaseSensitive(o, "time");
		if (cJSON_IsNumber(tm))
			*t = (int64_t)tm->valuedouble;
		cJSON_Delete(o);
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* One attempt. Returns 0, an LMDB/errno code (the caller turns it into a
 * message, or grows the map on MDB_MAP_FULL), or -1 when `err` already
 * holds a user-facing error. */
static int apply(apply_ctx *a, vg_error *err)
{
	vg_batch *b = a->b;
	uint64_t gen;
	int rc = vg__meta_get_u64(a->txn, a->s, "gen", &gen);
	if (rc)
		return rc;
	/* Ranks and levels must come from this transaction's view. */
	pthread_rwlock_rdlock(&a->s->lock);
	bool fresh = gen == a->s->dict.gen;
	pthread_rwlock_unlock(&a->s->lock);
	if (fresh) {
		a->dict = a->s->dict; /* read-only use, under write_mu */
	} else {
		if (vg__dict_load(a->s, a->txn, &a->dict, err))
			return -1;
		a->own_dict = true;
	}
	uint32_t lastid;
	int64_t lastt;
	if ((rc = last_vintage(a, &lastid, &lastt)))
		return rc;
	a->vintage = lastid + 1;
	a->info.time = b->time ? b->time : (int64_t)time(NULL);
	if (a->info.time < lastt) {
		char t1[32], t2[32];
		vg_time_format(a->info.time, t1, sizeof(t1));
		vg_time_format(lastt, t2, sizeof(t2));
		vg_error_set(err, VG_EINVAL,
			     "publication time %s is earlier than the latest "
			     "vintage (%s): vintages must be recorded in time "
			     "order", t1, t2);
		return -1;
	}
	if ((rc = apply_indicators(a, err)) || (rc = apply_territories(a, err)))
		return rc;
	if (a->defs_changed) {
		/* Point ranks need the dictionaries with this batch's
		 * territories: reload them from the transaction. */
		if (a->own_dict)
			vg__dict_free(&a->dict);
		if (vg__dict_load(a->s, a->txn, &a->dict, err))
			return -1;
		a->own_dict = true;
	}
	if ((rc = apply_points(a, err)))
		return rc;
	if (!a->defs_changed && !a->info.points_new && !a->info.points_changed)
		return 0; /* nothing to record */
	a->info.vintage = a->vintage;
	if ((rc = write_vintage(a)))
		return rc;
	if (a->defs_changed)
		rc = vg__meta_put_u64(a->txn, a->s, "gen", gen + 1);
	return rc;
}

int vg_batch_commit(vg_batch *b, vg_commit_info *info, vg_error *err)
{
	vg_store *s = b->s;
	apply_ctx a;
	int rc = 0, code = 0;
	if (info)
		memset(info, 0, sizeof(*info));
	pthread_mutex_lock(&s->write_mu);
	for (int attempt = 0;; attempt++) {
		memset(&a, 0, sizeof(a));
		a.b = b;
		a.s = s;
		size_t ni = b->ninds ? b->ninds : 1, nt = b->nterrs ? b->nterrs : 1;
		a.ind_ids = calloc(ni, sizeof(uint32_t));
		a.terr_ids = calloc(nt, sizeof(uint32_t));
		a.terr_level = calloc(nt, sizeof(uint16_t));
		a.terr_rank = calloc(nt, sizeof(uint32_t));
		pthread_rwlock_rdlock(&s->lock);
		if (!a.ind_ids || !a.terr_ids || !a.terr_level || !a.terr_rank)
			rc = ENOMEM;
		else
			rc = vg__txn_begin(s, 0, &a.txn, err) ? -1 : 0;
		if (!rc)
			rc = apply(&a, err);
		bool wrote = a.info.vintage != 0;
		if (!rc && wrote) {
			rc = mdb_txn_commit(a.txn);
			a.txn = NULL;
		}
		if (a.txn)
			mdb_txn_abort(a.txn);
		pthread_rwlock_unlock(&s->lock);
		if (a.own_dict)
			vg__dict_free(&a.dict);
		free(a.ind_ids);
		free(a.terr_ids);
		free(a.terr_level);
		free(a.terr_rank);
		free(a.touched);
		if (rc == MDB_MAP_FULL && attempt < 40) {
			if ((code = vg__grow_map(s, err)))
				break;
			continue;
		}
		if (rc == -1)
			code = err ? err->code : VG_EINVAL;
		else if (rc)
			code = vg__mdb_err(s, rc, "cannot commit", err);
		break;
	}
	pthread_mutex_unlock(&s->write_mu);
	if (!code) {
		if (a.defs_changed)
			vg__dict_refresh(s, NULL);
		if (info)
			*info = a.info;
	}
	vg_batch_free(b);
	return code;
}
