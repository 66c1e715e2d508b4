/* Internals shared by the store's files. Nobody outside core/store/
 * includes this (nor lmdb.h). */
#ifndef VIGIE_STORE_INT_H
#define VIGIE_STORE_INT_H

#include <lmdb.h>
#include <pthread.h>

#include "store/keys.h"
#include "util/strmap.h"
#include "vigie/store.h"

typedef struct vg__ind_entry {
	char code[VG_CODE_MAX];
	vg_periodicity periodicity;
	/* The whole parsed record: every aggregation context reads its
	 * indicator, and parsing the JSON each time cost a quarter of a
	 * 50-commune perimeter's aggregation. Owned; NULL for a hole. */
	vg_indicator *full;
} vg__ind_entry;

/* A perimeter's membership version, ids resolved. */
typedef struct vg__terr_version {
	int64_t start; /* first day of `from`; INT64_MIN: the beginning */
	bool has_from;
	vg_period from;
	uint32_t nmembers;
	uint32_t *members; /* sorted ids; owned */
} vg__terr_version;

typedef struct vg__terr_entry {
	char code[VG_CODE_MAX];
	uint16_t level;
	uint32_t rank; /* position within its level: its slot in blocks */
	uint8_t nparents;
	uint32_t parents[VG_MAX_PARENTS];
	uint32_t nmembers;
	uint32_t *members; /* sorted ids (latest version); owned */
	uint32_t nversions; /* perimeters: >= 1, oldest first; owned */
	vg__terr_version *versions;
	/* Folded name (vigie/fold.h, "st" -> "saint") at dict.keys + key_off,
	 * key_len bytes; the variant with apostrophes joined ("lhay les
	 * roses") at alt_off, or UINT32_MAX when it is the same key. */
	uint32_t key_off, alt_off;
	uint32_t name_off; /* the name as stored, in dict.keys */
	uint16_t key_len;
	/* Passage table: the territories this one was replaced by (an old
	 * commune code: its successors, with the share of it each one
	 * received) and those it replaced (predecessors). Owned. */
	uint8_t nsucc;
	uint16_t npred;
	vg_passage *succ, *pred;
} vg__terr_entry;

/* The in-memory dictionaries: a cache of what the DB says, reloaded when
 * the DB's generation counter moves. Index = id; id 0 is never used. */
typedef struct vg__dict {
	uint64_t gen;
	uint32_t ninds; /* highest id + 1 */
	vg__ind_entry *inds;
	uint32_t nterrs;
	vg__terr_entry *terrs;
	uint16_t nlevels;
	char (*levels)[VG_LEVEL_MAX];
	uint32_t *level_len;   /* territories per level */
	uint32_t **level_terr; /* level -> rank -> territory id; owned */
	vg_strmap ind_map, terr_map, level_map;
	/* Descendants index: for territory t, entries desc_off[t] ..
	 * desc_off[t+1] list (level, rank) of t itself, every territory
	 * below it through parents, and for a perimeter its members and
	 * theirs, sorted by (level, rank). A "within" slice reads exactly
	 * these slots; a "within" test is a binary search. */
	uint32_t *desc_off; /* nterrs + 1 */
	uint16_t *desc_level;
	uint32_t *desc_rank;
	char *keys; /* folded names, NUL-terminated, see key_off; owned */
	size_t keys_len, keys_cap;
	bool any_passage; /* some territory has successors */
} vg__dict;

struct vg_store {
	MDB_env *env;
	MDB_dbi meta, ind_code, ind, terr_code, terr, level, points, blocks,
		hist, vint;
	char *dir;
	bool read_only;
	/* Read lock: held while any transaction of this process is open.
	 * Write lock: to resize the map (LMDB wants no transaction open in
	 * the process) and to swap the dictionaries. */
	pthread_rwlock_t lock;
	pthread_mutex_t write_mu; /* one commit at a time in this process */
	/* Publication time of each vintage, by id (0: not looked up yet).
	 * Vintages never change once written, so entries never go stale. */
	pthread_mutex_t vt_mu;
	int64_t *vint_time;
	uint32_t vint_cap;
	size_t map_size;
	unsigned grows;
	vg__dict dict;
};

struct vg_read {
	vg_store *s;
	MDB_txn *txn;
	bool dict_current; /* s->dict describes this snapshot */
};

/* env.c */
int vg__txn_begin(vg_store *s, unsigned flags, MDB_txn **txn, vg_error *err);
int vg__mdb_err(vg_store *s, int rc, const char *what, vg_error *err);
int vg__grow_map(vg_store *s, vg_error *err);
int vg__meta_get_u64(MDB_txn *txn, vg_store *s, const char *key,
		     uint64_t *out);
int vg__meta_put_u64(MDB_txn *txn, vg_store *s, const char *key,
		     uint64_t v);

/* dict.c */
void vg__dict_free(vg__dict *d);
/* Load the dictionaries of `txn` into a fresh dict. */
int vg__dict_load(vg_store *s, MDB_txn *txn, vg__dict *out, vg_error *err);
/* Make s->dict current: called with no lock held. */
int vg__dict_refresh(vg_store *s, vg_error *err);
bool vg__dict_within(const vg__dict *d, uint32_t terr, uint32_t anc);
/* The ranks of level `level` within `anc` (sorted), as a pointer into the
 * index and a count; 0 when none. */
size_t vg__dict_desc(const vg__dict *d, uint32_t anc, uint16_t level,
		     const uint32_t **ranks);

/* meta.c: records are JSON text. */
char *vg__indicator_json(const vg_indicator *ind); /* malloc'd */
int vg__indicator_parse(const char *json, size_t len, vg_indicator *out,
			vg_error *err);
/* rank/level are stored beside the public fields. */
char *vg__territory_json(const vg_territory *t, uint32_t rank);
/* Start of a membership version as a day number; INT64_MIN for one from
 * the beginning. */
int64_t vg__version_start(const vg_membership *v);
/* Put `v` into a list of versions kept sorted by start, replacing the
 * version with the same start (2024 and 2024-01 start the same day).
 * Takes v->members (and frees the replaced one's) on success; -1 when
 * out of memory, then nothing changed. */
int vg__versions_put(vg_membership **vs, size_t *n, vg_membership *v);
int vg__territory_parse(const char *json, size_t len, vg_territory *out,
			uint32_t *rank, vg_error *err);

#endif
