/* Reading: one short read transaction per vg_read, in-memory dictionaries
 * for codes, points and history for series, blocks for cross-sections. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "vigie/common.h"

int vg_read_begin(vg_store *s, vg_read **out, vg_error *err)
{
	*out = NULL;
	vg_read *r = calloc(1, sizeof(*r));
	if (!r)
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	r->s = s;
	/* The dictionaries must describe the snapshot we read: if a commit
	 * from elsewhere moved the generation, reload and try again. */
	for (int attempt = 0;; attempt++) {
		pthread_rwlock_rdlock(&s->lock);
		int rc = vg__txn_begin(s, MDB_RDONLY, &r->txn, err);
		if (rc) {
			pthread_rwlock_unlock(&s->lock);
			free(r);
			return rc;
		}
		uint64_t gen = 0;
		vg__meta_get_u64(r->txn, s, "gen", &gen);
		if (gen == s->dict.gen || attempt >= 5) {
			r->dict_current = gen == s->dict.gen;
			*out = r;
			return 0;
		}
		mdb_txn_abort(r->txn);
		pthread_rwlock_unlock(&s->lock);
		if ((rc = vg__dict_refresh(s, err))) {
			free(r);
			return rc;
		}
	}
}

void vg_read_end(vg_read *r)
{
	if (!r)
		return;
	mdb_txn_abort(r->txn);
	pthread_rwlock_unlock(&r->s->lock);
	free(r);
}

int vg_read_indicator_id(vg_read *r, const char *code, uint32_t *id,
			 vg_error *err)
{
	if (vg_strmap_get(&r->s->dict.ind_map, code, id))
		return 0;
	return vg_error_set(err, VG_ENOTFOUND, "unknown indicator '%s'", code);
}

int vg_read_territory_id(vg_read *r, const char *code, uint32_t *id,
			 vg_error *err)
{
	char canon[VG_CODE_MAX];
	if (vg_strmap_get(&r->s->dict.terr_map, code, id))
		return 0;
	/* Accept "COM:01001" and other spellings that canonicalise. */
	if (vg_territory_code_canon(NULL, code, canon, NULL, NULL) == 0 &&
	    vg_strmap_get(&r->s->dict.terr_map, canon, id))
		return 0;
	return vg_error_set(err, VG_ENOTFOUND, "unknown territory '%s'%s", code,
			    strchr(code, ':') || !strcmp(code, "fr")
				    ? ""
				    : " (territory codes are level:code, "
				      "e.g. com:85146, dep:2A, fr)");
}

int vg_read_level_id(vg_read *r, const char *level, uint16_t *id,
		     vg_error *err)
{
	uint32_t v;
	if (vg_strmap_get(&r->s->dict.level_map, level, &v)) {
		*id = (uint16_t)v;
		return 0;
	}
	return vg_error_set(err, VG_ENOTFOUND,
			    "unknown level '%s' (no territory has it)", level);
}

const char *vg_read_indicator_code(vg_read *r, uint32_t id)
{
	const vg__dict *d = &r->s->dict;
	return id && id < d->ninds && d->inds[id].code[0] ? d->inds[id].code
							  : NULL;
}

const char *vg_read_territory_code(vg_read *r, uint32_t id)
{
	const vg__dict *d = &r->s->dict;
	return id && id < d->nterrs && d->terrs[id].code[0] ? d->terrs[id].code
							    : NULL;
}

const char *vg_read_territory_name(vg_read *r, uint32_t id)
{
	const vg__dict *d = &r->s->dict;
	if (!id || id >= d->nterrs || !d->terrs[id].code[0] || !d->keys)
		return NULL;
	return d->keys + d->terrs[id].name_off;
}

static int get_record(vg_read *r, MDB_dbi dbi, uint32_t id, MDB_val *v)
{
	uint8_t kb[4];
	vg__put_be32(kb, id);
	MDB_val k = { 4, kb };
	return mdb_get(r->txn, dbi, &k, v);
}

int vg_read_indicator(vg_read *r, uint32_t id, vg_indicator *out,
		      vg_error *err)
{
	const vg__dict *d = &r->s->dict;
	if (r->dict_current && id < d->ninds && d->inds[id].full) {
		*out = *d->inds[id].full;
		return 0;
	}
	MDB_val v;
	int rc = get_record(r, r->s->ind, id, &v);
	if (rc == MDB_NOTFOUND)
		return vg_error_set(err, VG_ENOTFOUND, "no indicator #%u", id);
	if (rc)
		return vg__mdb_err(r->s, rc, "cannot read an indicator", err);
	rc = vg__indicator_parse(v.mv_data, v.mv_size, out, err);
	out->id = id;
	return rc;
}

int vg_read_territory(vg_read *r, uint32_t id, vg_territory *out,
		      vg_error *err)
{
	MDB_val v;
	int rc = get_record(r, r->s->terr, id, &v);
	if (rc == MDB_NOTFOUND)
		return vg_error_set(err, VG_ENOTFOUND, "no territory #%u", id);
	if (rc)
		return vg__mdb_err(r->s, rc, "cannot read a territory", err);
	rc = vg__territory_parse(v.mv_data, v.mv_size, out, NULL, err);
	out->id = id;
	return rc;
}

int vg_read_indicators(vg_read *r, vg_id_cb cb, void *ud)
{
	const vg__dict *d = &r->s->dict;
	for (uint32_t id = 1; id < d->ninds; id++) {
		if (!d->inds[id].code[0])
			continue;
		int rc = cb(ud, id);
		if (rc)
			return rc;
	}
	return 0;
}

int vg_read_territories(vg_read *r, const char *level, vg_id_cb cb, void *ud)
{
	const vg__dict *d = &r->s->dict;
	uint32_t lid = 0;
	if (level && !vg_strmap_get(&d->level_map, level, &lid))
		return 0;
	for (uint32_t id = 1; id < d->nterrs; id++) {
		if (!d->terrs[id].code[0] ||
		    (level && d->terrs[id].level != lid))
			continue;
		int rc = cb(ud, id);
		if (rc)
			return rc;
	}
	return 0;
}

bool vg_read_territory_within(vg_read *r, uint32_t terr, uint32_t anc)
{
	return vg__dict_within(&r->s->dict, terr, anc);
}

/* ---- as_of ----------------------------------------------------------- */

/* The newest vintage published at or before `as_of`; 0 if none. Vintage
 * ids grow with time (batch_commit refuses to go back), so a binary
 * search over ids would do; the table is small, a backward scan is
 * enough and simplest. */
static uint32_t vintage_at(vg_read *r, int64_t as_of)
{
	if (as_of == VG_LATEST)
		return UINT32_MAX;
	MDB_cursor *c;
	MDB_val k, v;
	uint32_t found = 0;
	if (mdb_cursor_open(r->txn, r->s->vint, &c))
		return 0;
	for (int rc = mdb_cursor_get(c, &k, &v, MDB_LAST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_PREV)) {
		cJSON *o = cJSON_ParseWithLength(v.mv_data, v.mv_size);
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "time");
		bool ok = cJSON_IsNumber(t) && (int64_t)t->valuedouble <= as_of;
		cJSON_Delete(o);
		if (ok) {
			found = vg__get_be32(k.mv_data);
			break;
		}
	}
	mdb_cursor_close(c);
	return found;
}

/* The value a point had at vintage `at`, given its current state. Returns
 * 1 if the point existed then (filling *p), 0 if not, <0 on error. */
static int point_at(vg_read *r, vg_point *p, uint32_t at)
{
	if (p->vintage <= at)
		return 1;
	uint8_t kb[VG_HKEY_LEN];
	vg__hkey(kb, p->ind, p->terr, p->period, at == UINT32_MAX ? at : at + 1);
	MDB_cursor *c;
	MDB_val k = { VG_HKEY_LEN, kb }, v;
	int rc = mdb_cursor_open(r->txn, r->s->hist, &c);
	if (rc)
		return -1;
	/* First entry >= (point, at+1), then one step back: the newest
	 * revision written at or before `at`. */
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	int found = 0;
	if (rc == 0 && k.mv_size == VG_HKEY_LEN && v.mv_size == VG_HVAL_LEN &&
	    memcmp(k.mv_data, kb, VG_PKEY_LEN) == 0) {
		uint8_t *kd = k.mv_data;
		memcpy(&p->value, v.mv_data, 8);
		p->status = ((uint8_t *)v.mv_data)[8];
		p->vintage = vg__get_be32(kd + 12);
		found = 1;
	}
	mdb_cursor_close(c);
	return found;
}

static void decode_point(const MDB_val *k, const MDB_val *v, vg_point *p)
{
	const uint8_t *kd = k->mv_data;
	uint8_t st;
	p->ind = vg__get_be32(kd);
	p->terr = vg__get_be32(kd + 4);
	p->period = vg__get_be32(kd + 8);
	vg__pval_get(v->mv_data, &p->value, &st, &p->vintage);
	p->status = (vg_status)st;
}

int vg_read_point(vg_read *r, uint32_t ind, uint32_t terr, vg_period period,
		  int64_t as_of, vg_point *out)
{
	uint8_t kb[VG_PKEY_LEN];
	vg__pkey(kb, ind, terr, period);
	MDB_val k = { VG_PKEY_LEN, kb }, v;
	int rc = mdb_get(r->txn, r->s->points, &k, &v);
	if (rc == MDB_NOTFOUND)
		return VG_ENOTFOUND;
	if (rc || v.mv_size != VG_PVAL_LEN)
		return VG_ESTORE;
	decode_point(&k, &v, out);
	if (as_of == VG_LATEST)
		return 0;
	int f = point_at(r, out, vintage_at(r, as_of));
	return f == 1 ? 0 : f == 0 ? VG_ENOTFOUND : VG_ESTORE;
}

int vg_read_series(vg_read *r, uint32_t ind, uint32_t terr, vg_period from,
		   vg_period to, int64_t as_of, vg_point_cb cb, void *ud)
{
	uint32_t at = vintage_at(r, as_of);
	uint8_t lo[VG_PKEY_LEN];
	vg__pkey(lo, ind, terr, from);
	MDB_cursor *c;
	MDB_val k = { VG_PKEY_LEN, lo }, v;
	if (mdb_cursor_open(r->txn, r->s->points, &c))
		return VG_ESTORE;
	int ret = 0;
	for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != VG_PKEY_LEN || memcmp(k.mv_data, lo, 8) != 0)
			break;
		vg_point p;
		decode_point(&k, &v, &p);
		if (to && p.period > to)
			break;
		int f = point_at(r, &p, at);
		if (f < 0) {
			ret = VG_ESTORE;
			break;
		}
		if (f && (ret = cb(ud, &p)))
			break;
	}
	mdb_cursor_close(c);
	return ret;
}

int vg_read_slice(vg_read *r, uint32_t ind, vg_period period, uint16_t level,
		  uint32_t within, int64_t as_of, vg_point_cb cb, void *ud)
{
	const vg__dict *d = &r->s->dict;
	if (level >= d->nlevels)
		return 0;
	uint8_t kb[VG_BKEY_LEN];
	vg__bkey(kb, ind, period, level);
	MDB_val k = { VG_BKEY_LEN, kb }, v;
	int rc = mdb_get(r->txn, r->s->blocks, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return VG_ESTORE;
	uint32_t magic, n;
	memcpy(&magic, v.mv_data, 4);
	memcpy(&n, (uint8_t *)v.mv_data + 4, 4);
	if (magic != VG_BLOCK_MAGIC || v.mv_size != vg__block_size(n))
		return VG_ESTORE;
	const uint8_t *vals = (const uint8_t *)v.mv_data + VG_BLOCK_HDR;
	const uint8_t *vints = vals + (size_t)n * 8;
	const uint8_t *sts = vints + (size_t)n * 4;
	uint32_t at = vintage_at(r, as_of);
	const uint32_t *ids = d->level_terr[level];
	uint32_t len = d->level_len[level];
	/* Walk by rank (block order) but report in territory-id order,
	 * which is rank order too: ranks are handed out as territories are
	 * created, and so are ids. */
	/* With `within`, visit only the slots of its descendants (sorted
	 * ranks from the dictionary's index) instead of the whole level. */
	const uint32_t *only = NULL;
	size_t nonly = 0;
	if (within) {
		nonly = vg__dict_desc(d, within, level, &only);
		if (!nonly)
			return 0;
	}
	size_t count = within ? nonly : (n < len ? n : len);
	for (size_t i = 0; i < count; i++) {
		uint32_t rank = within ? only[i] : (uint32_t)i;
		if (rank >= n || rank >= len)
			break; /* ranks are sorted: the rest is past the end */
		vg_point p;
		memcpy(&p.vintage, vints + (size_t)rank * 4, 4);
		if (!p.vintage)
			continue;
		p.terr = ids[rank];
		p.ind = ind;
		p.period = period;
		memcpy(&p.value, vals + (size_t)rank * 8, 8);
		p.status = (vg_status)sts[rank];
		int f = point_at(r, &p, at);
		if (f < 0)
			return VG_ESTORE;
		if (f && (rc = cb(ud, &p)))
			return rc;
	}
	return 0;
}

int vg_read_points(vg_read *r, uint32_t ind, vg_point_cb cb, void *ud)
{
	uint8_t lo[VG_PKEY_LEN];
	vg__pkey(lo, ind, 0, 0);
	MDB_cursor *c;
	MDB_val k = { VG_PKEY_LEN, lo }, v;
	if (mdb_cursor_open(r->txn, r->s->points, &c))
		return VG_ESTORE;
	int ret = 0;
	for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (ind && memcmp(k.mv_data, lo, 4) != 0)
			break;
		vg_point p;
		decode_point(&k, &v, &p);
		if ((ret = cb(ud, &p)))
			break;
	}
	mdb_cursor_close(c);
	return ret;
}

int vg_read_history(vg_read *r, uint32_t ind, uint32_t terr, vg_period period,
		    vg_point_cb cb, void *ud)
{
	uint8_t lo[VG_HKEY_LEN];
	vg__hkey(lo, ind, terr, period, 0);
	MDB_cursor *c;
	MDB_val k = { VG_HKEY_LEN, lo }, v;
	if (mdb_cursor_open(r->txn, r->s->hist, &c))
		return VG_ESTORE;
	int ret = 0;
	for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (memcmp(k.mv_data, lo, VG_PKEY_LEN) != 0)
			break;
		vg_point p = { ind, terr, period, 0, 0, 0 };
		memcpy(&p.value, v.mv_data, 8);
		p.status = (vg_status)((uint8_t *)v.mv_data)[8];
		p.vintage = vg__get_be32((uint8_t *)k.mv_data + 12);
		if ((ret = cb(ud, &p)))
			break;
	}
	mdb_cursor_close(c);
	return ret;
}

int vg_read_vintage(vg_read *r, uint32_t id, vg_vintage *out, vg_error *err)
{
	memset(out, 0, sizeof(*out));
	MDB_val v;
	int rc = get_record(r, r->s->vint, id, &v);
	if (rc == MDB_NOTFOUND)
		return vg_error_set(err, VG_ENOTFOUND, "no vintage #%u", id);
	if (rc)
		return vg__mdb_err(r->s, rc, "cannot read a vintage", err);
	cJSON *o = cJSON_ParseWithLength(v.mv_data, v.mv_size);
	if (!o)
		return vg_error_set(err, VG_ESTORE, "corrupt vintage #%u", id);
	out->id = id;
	const cJSON *it;
	if (cJSON_IsNumber(it = cJSON_GetObjectItemCaseSensitive(o, "time")))
		out->time = (int64_t)it->valuedouble;
	if (cJSON_IsString(it = cJSON_GetObjectItemCaseSensitive(o, "origin")))
		snprintf(out->origin, sizeof(out->origin), "%s",
			 it->valuestring);
	if (cJSON_IsString(it = cJSON_GetObjectItemCaseSensitive(o, "checksum")))
		snprintf(out->checksum, sizeof(out->checksum), "%s",
			 it->valuestring);
	if (cJSON_IsNumber(it = cJSON_GetObjectItemCaseSensitive(o, "new")))
		out->points_new = (uint64_t)it->valuedouble;
	if (cJSON_IsNumber(it = cJSON_GetObjectItemCaseSensitive(o, "changed")))
		out->points_changed = (uint64_t)it->valuedouble;
	if (cJSON_IsNumber(it = cJSON_GetObjectItemCaseSensitive(o, "unchanged")))
		out->points_unchanged = (uint64_t)it->valuedouble;
	cJSON_Delete(o);
	return 0;
}

int vg_read_descendants(vg_read *r, uint32_t anc, uint16_t level, vg_id_cb cb,
			void *ud)
{
	const vg__dict *d = &r->s->dict;
	const uint32_t *ranks;
	if (level >= d->nlevels)
		return 0;
	size_t n = vg__dict_desc(d, anc, level, &ranks);
	for (size_t i = 0; i < n; i++) {
		if (ranks[i] >= d->level_len[level])
			break;
		int rc = cb(ud, d->level_terr[level][ranks[i]]);
		if (rc)
			return rc;
	}
	return 0;
}

int vg_read_perimeter_membership(vg_read *r, uint32_t terr, vg_period period,
				 bool latest, vg_membership_info *out)
{
	const vg__dict *d = &r->s->dict;
	memset(out, 0, sizeof(*out));
	if (terr == 0 || terr >= d->nterrs || !d->terrs[terr].nversions)
		return VG_ENOTFOUND;
	const vg__terr_entry *e = &d->terrs[terr];
	uint32_t k = e->nversions - 1;
	if (!latest) {
		/* The version in force: the last one starting on or before
		 * the period's first day; before the first, the first. */
		int64_t day = vg_period_first_day(period);
		while (k > 0 && e->versions[k].start > day)
			k--;
		out->before_first = e->versions[0].start > day;
	}
	const vg__terr_version *v = &e->versions[k];
	out->has_from = v->has_from;
	out->from = v->from;
	out->latest = k == e->nversions - 1;
	out->version = k;
	out->nversions = e->nversions;
	out->nmembers = v->nmembers;
	out->members = v->members;
	return 0;
}

bool vg_read_territory_is_leaf(vg_read *r, uint32_t terr)
{
	const vg__dict *d = &r->s->dict;
	if (terr == 0 || terr >= d->nterrs || !d->desc_off)
		return false;
	/* The index lists the territory itself: one entry means nothing
	 * lies below it. Perimeters are never leaves (their members are). */
	return d->desc_off[terr + 1] - d->desc_off[terr] == 1 &&
	       d->terrs[terr].nmembers == 0;
}

int vg_read_territory_level(vg_read *r, uint32_t terr, uint16_t *level)
{
	const vg__dict *d = &r->s->dict;
	if (terr == 0 || terr >= d->nterrs || !d->terrs[terr].code[0])
		return VG_ENOTFOUND;
	*level = d->terrs[terr].level;
	return 0;
}

uint16_t vg_read_level_count(vg_read *r)
{
	return r->s->dict.nlevels;
}

const char *vg_read_level_name(vg_read *r, uint16_t level)
{
	const vg__dict *d = &r->s->dict;
	return level < d->nlevels ? d->levels[level] : NULL;
}

uint32_t vg_read_territory_max(vg_read *r)
{
	return r->s->dict.nterrs;
}

size_t vg_read_territory_parents(vg_read *r, uint32_t terr, uint32_t *out)
{
	const vg__dict *d = &r->s->dict;
	if (terr == 0 || terr >= d->nterrs)
		return 0;
	const vg__terr_entry *e = &d->terrs[terr];
	memcpy(out, e->parents, e->nparents * sizeof(uint32_t));
	return e->nparents;
}

uint32_t vg_read_last_vintage(vg_read *r)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint32_t id = 0;
	if (mdb_cursor_open(r->txn, r->s->vint, &c))
		return 0;
	if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0 && k.mv_size == 4)
		id = vg__get_be32(k.mv_data);
	mdb_cursor_close(c);
	return id;
}

int vg_read_vintage_indicators(vg_read *r, uint32_t id, vg_id_cb cb, void *ud)
{
	MDB_val v;
	int rc = get_record(r, r->s->vint, id, &v);
	if (rc == MDB_NOTFOUND)
		return VG_ENOTFOUND;
	if (rc)
		return vg__mdb_err(r->s, rc, "cannot read a vintage", NULL);
	cJSON *o = cJSON_ParseWithLength(v.mv_data, v.mv_size);
	if (!o)
		return VG_ESTORE;
	const cJSON *inds = cJSON_GetObjectItemCaseSensitive(o, "indicators"),
		    *it;
	rc = 0;
	cJSON_ArrayForEach(it, inds)
	{
		uint32_t iid;
		if (!cJSON_IsString(it) ||
		    vg_read_indicator_id(r, it->valuestring, &iid, NULL))
			continue; /* an indicator since removed */
		if ((rc = cb(ud, iid)))
			break;
	}
	cJSON_Delete(o);
	return rc;
}

int vg_read_vintage_time(vg_read *r, uint32_t id, int64_t *t)
{
	vg_store *s = r->s;
	pthread_mutex_lock(&s->vt_mu);
	int64_t known = id < s->vint_cap ? s->vint_time[id] : 0;
	pthread_mutex_unlock(&s->vt_mu);
	if (known) {
		*t = known;
		return 0;
	}
	vg_vintage v;
	int rc = vg_read_vintage(r, id, &v, NULL);
	if (rc)
		return rc;
	*t = v.time;
	pthread_mutex_lock(&s->vt_mu);
	if (id >= s->vint_cap) {
		uint32_t cap = s->vint_cap ? s->vint_cap : 64;
		while (cap <= id)
			cap *= 2;
		int64_t *nt = realloc(s->vint_time, cap * sizeof(*nt));
		if (nt) {
			memset(nt + s->vint_cap, 0,
			       (cap - s->vint_cap) * sizeof(*nt));
			s->vint_time = nt;
			s->vint_cap = cap;
		}
	}
	if (id < s->vint_cap)
		s->vint_time[id] = v.time;
	pthread_mutex_unlock(&s->vt_mu);
	return 0;
}
