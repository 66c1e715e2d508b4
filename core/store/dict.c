/* In-memory dictionaries: codes <-> ids, levels, ranks, parents and
 * members, loaded from the DB and reloaded when its generation counter
 * moves (another batch defined indicators or territories). Every query
 * and import goes through them, so lookups never touch LMDB. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "vigie/fold.h"
#include "vigie/common.h"

void vg__dict_free(vg__dict *d)
{
	for (uint32_t i = 0; d->terrs && i < d->nterrs; i++) {
		free(d->terrs[i].members);
		for (uint32_t k = 0; k < d->terrs[i].nversions; k++)
			free(d->terrs[i].versions[k].members);
		free(d->terrs[i].versions);
		free(d->terrs[i].succ);
		free(d->terrs[i].pred);
	}
	free(d->keys);
	for (uint32_t i = 0; d->inds && i < d->ninds; i++)
		free(d->inds[i].full);
	for (uint16_t l = 0; l < d->nlevels; l++)
		free(d->level_terr[l]);
	free(d->terrs);
	free(d->inds);
	free(d->levels);
	free(d->level_len);
	free(d->level_terr);
	free(d->desc_off);
	free(d->desc_level);
	free(d->desc_rank);
	vg_strmap_free(&d->ind_map);
	vg_strmap_free(&d->terr_map);
	vg_strmap_free(&d->level_map);
	memset(d, 0, sizeof(*d));
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Membership versions of a perimeter, codes resolved to ids. */
static int load_versions(vg__dict *d, vg__terr_entry *e, const vg_territory *t)
{
	e->versions = calloc(t->nversions, sizeof(*e->versions));
	if (!e->versions)
		return -1;
	e->nversions = (uint32_t)t->nversions;
	for (size_t k = 0; k < t->nversions; k++) {
		const vg_membership *m = &t->versions[k];
		vg__terr_version *v = &e->versions[k];
		v->has_from = m->has_from;
		v->from = m->from;
		v->start = vg__version_start(m);
		if (!m->nmembers)
			continue;
		v->members = malloc(m->nmembers * sizeof(uint32_t));
		if (!v->members)
			return -1;
		for (size_t i = 0; i < m->nmembers; i++) {
			uint32_t mid;
			if (vg_strmap_get(&d->terr_map, m->members[i], &mid))
				v->members[v->nmembers++] = mid;
		}
		qsort(v->members, v->nmembers, sizeof(uint32_t), cmp_u32);
	}
	return 0;
}

/* Highest id + 1 of a DBI keyed by big-endian ids. */
static int next_id(MDB_txn *txn, MDB_dbi dbi, uint32_t *n)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, dbi, &c);
	if (rc)
		return rc;
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND) {
		*n = 1;
		return 0;
	}
	if (rc)
		return rc;
	*n = vg__get_be32(k.mv_data) + 1;
	return 0;
}

static int load_levels(vg_store *s, MDB_txn *txn, vg__dict *d)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, s->level, &c);
	if (rc)
		return rc;
	uint16_t max = 0;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint16_t id;
		memcpy(&id, v.mv_data, 2);
		if (id + 1 > max)
			max = (uint16_t)(id + 1);
	}
	d->nlevels = max ? max : 1;
	d->levels = calloc(d->nlevels, VG_LEVEL_MAX);
	d->level_len = calloc(d->nlevels, sizeof(uint32_t));
	d->level_terr = calloc(d->nlevels, sizeof(uint32_t *));
	if (!d->levels || !d->level_len || !d->level_terr) {
		mdb_cursor_close(c);
		return ENOMEM;
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint16_t id;
		memcpy(&id, v.mv_data, 2);
		size_t n = k.mv_size < VG_LEVEL_MAX - 1 ? k.mv_size
							: VG_LEVEL_MAX - 1;
		memcpy(d->levels[id], k.mv_data, n);
		d->levels[id][n] = '\0';
		if (vg_strmap_put(&d->level_map, d->levels[id], id)) {
			mdb_cursor_close(c);
			return ENOMEM;
		}
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int load_indicators(vg_store *s, MDB_txn *txn, vg__dict *d,
			   vg_error *err)
{
	int rc = next_id(txn, s->ind, &d->ninds);
	if (rc)
		return rc;
	d->inds = calloc(d->ninds, sizeof(*d->inds));
	if (!d->inds)
		return ENOMEM;
	MDB_cursor *c;
	MDB_val k, v;
	if ((rc = mdb_cursor_open(txn, s->ind, &c)))
		return rc;
	vg_indicator ind;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint32_t id = vg__get_be32(k.mv_data);
		if (vg__indicator_parse(v.mv_data, v.mv_size, &ind, err)) {
			mdb_cursor_close(c);
			return MDB_CORRUPTED;
		}
		memcpy(d->inds[id].code, ind.code, VG_CODE_MAX);
		d->inds[id].periodicity = ind.periodicity;
		ind.id = id;
		free(d->inds[id].full);
		d->inds[id].full = malloc(sizeof(ind));
		if (d->inds[id].full)
			*d->inds[id].full = ind;
		if (!d->inds[id].full ||
		    vg_strmap_put(&d->ind_map, ind.code, id)) {
			mdb_cursor_close(c);
			return ENOMEM;
		}
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ---- folded names -------------------------------------------------------- */

static int keys_push(vg__dict *d, const char *k, size_t n, uint32_t *off)
{
	if (d->keys_len + n + 1 > d->keys_cap) {
		size_t ncap = d->keys_cap ? d->keys_cap * 2 : 1 << 20;
		while (ncap < d->keys_len + n + 1)
			ncap *= 2;
		char *nk = realloc(d->keys, ncap);
		if (!nk)
			return ENOMEM;
		d->keys = nk;
		d->keys_cap = ncap;
	}
	*off = (uint32_t)d->keys_len;
	memcpy(d->keys + d->keys_len, k, n + 1);
	d->keys_len += n + 1;
	return 0;
}

/* The search keys of one name: built once per dictionary load so a
 * search is a scan of short ASCII strings (36 000 communes: well under a
 * millisecond), never a fold per name per query. */
static int index_name(vg__dict *d, vg__terr_entry *e, const char *name)
{
	char k[512], alt[512];
	size_t n = vg_fold(name, k, sizeof(k), VG_FOLD_SAINT);
	size_t na = vg_fold(name, alt, sizeof(alt),
			    VG_FOLD_SAINT | VG_FOLD_JOIN_APOS);
	e->key_len = (uint16_t)n;
	e->alt_off = UINT32_MAX;
	/* The name itself too: maps and tables of 35 000 communes read it
	 * without parsing 35 000 JSON records. */
	if (keys_push(d, name, strlen(name), &e->name_off))
		return ENOMEM;
	if (keys_push(d, k, n, &e->key_off))
		return ENOMEM;
	if (strcmp(k, alt) && keys_push(d, alt, na, &e->alt_off))
		return ENOMEM;
	return 0;
}

/* Successors of every old code, and the reverse (predecessors), as ids.
 * Unknown codes are dropped: the batch refuses them, so only a corrupt
 * store has them. */
static int load_passages(vg__dict *d, const vg_territory *recs)
{
	for (uint32_t id = 1; id < d->nterrs; id++) {
		const vg_territory *t = &recs[id];
		vg__terr_entry *e = &d->terrs[id];
		if (!e->code[0] || !t->nsuccessors)
			continue;
		e->succ = calloc(t->nsuccessors, sizeof(vg_passage));
		if (!e->succ)
			return ENOMEM;
		for (size_t i = 0; i < t->nsuccessors; i++) {
			uint32_t sid;
			if (!vg_strmap_get(&d->terr_map, t->successors[i].code,
					   &sid) ||
			    sid == id)
				continue;
			e->succ[e->nsucc++] =
				(vg_passage){ sid, t->successors[i].weight };
			d->terrs[sid].npred++;
			d->any_passage = true;
		}
	}
	if (!d->any_passage)
		return 0;
	for (uint32_t id = 1; id < d->nterrs; id++) {
		vg__terr_entry *e = &d->terrs[id];
		if (e->npred) {
			e->pred = calloc(e->npred, sizeof(vg_passage));
			if (!e->pred)
				return ENOMEM;
			e->npred = 0; /* refilled below */
		}
	}
	for (uint32_t id = 1; id < d->nterrs; id++) {
		const vg__terr_entry *e = &d->terrs[id];
		for (uint8_t i = 0; i < e->nsucc; i++) {
			vg__terr_entry *to = &d->terrs[e->succ[i].terr];
			to->pred[to->npred++] =
				(vg_passage){ id, e->succ[i].weight };
		}
	}
	return 0;
}

static int load_territories(vg_store *s, MDB_txn *txn, vg__dict *d,
			    vg_error *err)
{
	int rc = next_id(txn, s->terr, &d->nterrs);
	if (rc)
		return rc;
	d->terrs = calloc(d->nterrs, sizeof(*d->terrs));
	if (!d->terrs)
		return ENOMEM;
	/* Records name parents and members by code: keep the parsed records
	 * until every code has an id. */
	vg_territory *recs = calloc(d->nterrs, sizeof(*recs));
	if (!recs)
		return ENOMEM;
	MDB_cursor *c;
	MDB_val k, v;
	if ((rc = mdb_cursor_open(txn, s->terr, &c))) {
		free(recs);
		return rc;
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint32_t id = vg__get_be32(k.mv_data), rank = 0, lid;
		vg__terr_entry *e = &d->terrs[id];
		if (vg__territory_parse(v.mv_data, v.mv_size, &recs[id], &rank,
					err) ||
		    !vg_strmap_get(&d->level_map, recs[id].level, &lid)) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(e->code, recs[id].code, VG_CODE_MAX);
		e->level = (uint16_t)lid;
		e->rank = rank;
		if (rank + 1 > d->level_len[lid])
			d->level_len[lid] = rank + 1;
		if (vg_strmap_put(&d->terr_map, e->code, id)) {
			rc = ENOMEM;
			break;
		}
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	for (uint16_t l = 0; !rc && l < d->nlevels; l++) {
		d->level_terr[l] = calloc(d->level_len[l] + 1, sizeof(uint32_t));
		if (!d->level_terr[l])
			rc = ENOMEM;
	}
	for (uint32_t id = 1; !rc && id < d->nterrs; id++) {
		vg__terr_entry *e = &d->terrs[id];
		vg_territory *t = &recs[id];
		if (!e->code[0])
			continue;
		d->level_terr[e->level][e->rank] = id;
		if (index_name(d, e, t->name)) {
			rc = ENOMEM;
			break;
		}
		for (size_t i = 0; i < t->nparents; i++) {
			uint32_t pid;
			if (vg_strmap_get(&d->terr_map, t->parents[i], &pid))
				e->parents[e->nparents++] = pid;
		}
		if (t->nmembers) {
			e->members = malloc(t->nmembers * sizeof(uint32_t));
			if (!e->members) {
				rc = ENOMEM;
				break;
			}
			for (size_t i = 0; i < t->nmembers; i++) {
				uint32_t mid;
				if (vg_strmap_get(&d->terr_map, t->members[i],
						  &mid))
					e->members[e->nmembers++] = mid;
			}
			qsort(e->members, e->nmembers, sizeof(uint32_t),
			      cmp_u32);
		}
		if (t->nversions && load_versions(d, e, t)) {
			rc = ENOMEM;
			break;
		}
	}
	if (!rc)
		rc = load_passages(d, recs);
	for (uint32_t id = 0; id < d->nterrs; id++)
		vg_territory_clear(&recs[id]);
	free(recs);
	return rc;
}

/* ---- descendants index ------------------------------------------------ */

typedef struct triple {
	uint32_t anc;
	uint16_t level;
	uint32_t rank;
} triple;

static int cmp_triple(const void *x, const void *y)
{
	const triple *a = x, *b = y;
	if (a->anc != b->anc)
		return a->anc < b->anc ? -1 : 1;
	if (a->level != b->level)
		return a->level < b->level ? -1 : 1;
	return a->rank < b->rank ? -1 : a->rank > b->rank;
}

typedef struct tvec {
	triple *v;
	size_t n, cap;
} tvec;

static int tvec_push(tvec *t, uint32_t anc, uint16_t level, uint32_t rank)
{
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 1024;
		triple *nv = realloc(t->v, ncap * sizeof(*nv));
		if (!nv)
			return ENOMEM;
		t->v = nv;
		t->cap = ncap;
	}
	t->v[t->n++] = (triple){ anc, level, rank };
	return 0;
}

/* Sort, drop duplicates, and rebuild desc_off from the triples. */
static int index_from(vg__dict *d, tvec *t)
{
	if (t->n > 1)
		qsort(t->v, t->n, sizeof(triple), cmp_triple);
	size_t w = 0;
	for (size_t i = 0; i < t->n; i++)
		if (!w || cmp_triple(&t->v[w - 1], &t->v[i]))
			t->v[w++] = t->v[i];
	t->n = w;
	free(d->desc_off);
	free(d->desc_level);
	free(d->desc_rank);
	d->desc_off = calloc((size_t)d->nterrs + 1, sizeof(uint32_t));
	d->desc_level = malloc((w ? w : 1) * sizeof(uint16_t));
	d->desc_rank = malloc((w ? w : 1) * sizeof(uint32_t));
	if (!d->desc_off || !d->desc_level || !d->desc_rank)
		return ENOMEM;
	for (size_t i = 0; i < w; i++) {
		d->desc_off[t->v[i].anc + 1]++;
		d->desc_level[i] = t->v[i].level;
		d->desc_rank[i] = t->v[i].rank;
	}
	for (uint32_t i = 0; i < d->nterrs; i++)
		d->desc_off[i + 1] += d->desc_off[i];
	return 0;
}

/* Ancestors of t through parents (t included), depth-bounded so a parent
 * cycle in bad data cannot hang the load. */
static void ancestors(const vg__dict *d, uint32_t t, uint32_t *out, size_t *n,
		      size_t max, int depth)
{
	if (t == 0 || t >= d->nterrs || depth > 8)
		return;
	for (size_t i = 0; i < *n; i++)
		if (out[i] == t)
			return;
	if (*n == max)
		return;
	out[(*n)++] = t;
	const vg__terr_entry *e = &d->terrs[t];
	for (unsigned i = 0; i < e->nparents; i++)
		ancestors(d, e->parents[i], out, n, max, depth + 1);
}

static int build_desc_index(vg__dict *d)
{
	tvec t = { 0 };
	int rc = 0;
	uint32_t anc[64];
	for (uint32_t id = 1; id < d->nterrs && !rc; id++) {
		const vg__terr_entry *e = &d->terrs[id];
		if (!e->code[0])
			continue;
		size_t n = 0;
		ancestors(d, id, anc, &n, 64, 0);
		for (size_t i = 0; i < n && !rc; i++)
			rc = tvec_push(&t, anc[i], e->level, e->rank);
	}
	if (!rc)
		rc = index_from(d, &t);
	/* Perimeters hold their members and everything below them (a CLS
	 * that lists Paris holds its arrondissements). Members' ranges are
	 * read from the index built above, then everything is rebuilt. */
	bool any = false;
	size_t base = t.n;
	for (uint32_t id = 1; id < d->nterrs && !rc; id++) {
		const vg__terr_entry *e = &d->terrs[id];
		for (uint32_t m = 0; m < e->nmembers && !rc; m++) {
			uint32_t mid = e->members[m];
			for (uint32_t k = d->desc_off[mid];
			     k < d->desc_off[mid + 1] && !rc; k++)
				rc = tvec_push(&t, id, d->desc_level[k],
					       d->desc_rank[k]);
			any = true;
		}
	}
	if (!rc && any && t.n > base)
		rc = index_from(d, &t);
	free(t.v);
	return rc;
}

size_t vg__dict_desc(const vg__dict *d, uint32_t anc, uint16_t level,
		     const uint32_t **ranks)
{
	*ranks = NULL;
	if (!d->desc_off || anc == 0 || anc >= d->nterrs)
		return 0;
	uint32_t lo = d->desc_off[anc], hi = d->desc_off[anc + 1];
	/* Entries are sorted by level: find this level's run. */
	uint32_t a = lo, b = hi;
	while (a < b) {
		uint32_t mid = a + (b - a) / 2;
		if (d->desc_level[mid] < level)
			a = mid + 1;
		else
			b = mid;
	}
	uint32_t end = a;
	while (end < hi && d->desc_level[end] == level)
		end++;
	*ranks = d->desc_rank + a;
	return end - a;
}

int vg__dict_load(vg_store *s, MDB_txn *txn, vg__dict *d, vg_error *err)
{
	memset(d, 0, sizeof(*d));
	vg_strmap_init(&d->ind_map);
	vg_strmap_init(&d->terr_map);
	vg_strmap_init(&d->level_map);
	int rc = vg__meta_get_u64(txn, s, "gen", &d->gen);
	if (!rc)
		rc = load_levels(s, txn, d);
	if (!rc)
		rc = load_indicators(s, txn, d, err);
	if (!rc)
		rc = load_territories(s, txn, d, err);
	if (!rc)
		rc = build_desc_index(d);
	if (rc) {
		vg__dict_free(d);
		return vg__mdb_err(s, rc, "cannot load the dictionaries", err);
	}
	return 0;
}

int vg__dict_refresh(vg_store *s, vg_error *err)
{
	pthread_rwlock_rdlock(&s->lock);
	MDB_txn *txn;
	int rc = vg__txn_begin(s, MDB_RDONLY, &txn, err);
	if (rc) {
		pthread_rwlock_unlock(&s->lock);
		return rc;
	}
	uint64_t gen = 0;
	vg__meta_get_u64(txn, s, "gen", &gen);
	if (gen == s->dict.gen) {
		mdb_txn_abort(txn);
		pthread_rwlock_unlock(&s->lock);
		return 0;
	}
	vg__dict nd;
	rc = vg__dict_load(s, txn, &nd, err);
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&s->lock);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&s->lock);
	if (nd.gen > s->dict.gen) {
		vg__dict old = s->dict;
		s->dict = nd;
		nd = old;
	}
	pthread_rwlock_unlock(&s->lock);
	vg__dict_free(&nd);
	return 0;
}

bool vg__dict_within(const vg__dict *d, uint32_t terr, uint32_t anc)
{
	if (terr == 0 || terr >= d->nterrs || !d->terrs[terr].code[0])
		return false;
	const vg__terr_entry *e = &d->terrs[terr];
	const uint32_t *ranks;
	size_t n = vg__dict_desc(d, anc, e->level, &ranks);
	return bsearch(&e->rank, ranks, n, sizeof(uint32_t), cmp_u32) != NULL;
}
