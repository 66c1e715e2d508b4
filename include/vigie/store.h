/* The indicator store: one LMDB environment per data directory.
 *
 * What it holds (see docs/architecture.md for the key layouts):
 *   - dictionaries: indicator, territory and level codes <-> u32/u16 ids;
 *   - metadata: one record per indicator and per territory;
 *   - points: (indicator, territory, period) -> value, status, vintage,
 *     plus a dense cross-section block per (indicator, period, level) so a
 *     map or an aggregation reads one contiguous array;
 *   - history: the previous value of every revised point, with its vintage;
 *   - vintages: one record per committed batch (time, origin, checksum,
 *     row counts).
 *
 * Writes go through a vg_batch: everything is buffered in memory and
 * applied in one LMDB write transaction at commit, all or nothing. If the
 * map is full the transaction is aborted, the map grown and the batch
 * applied again, so callers never see MDB_MAP_FULL.
 *
 * Reads go through a vg_read: one short read transaction (a consistent
 * snapshot). A thread that holds a vg_read must not call vg_batch_point,
 * vg_batch_commit or vg_store_stat_get until vg_read_end: they may need
 * the store's write lock (dictionary reload, map growth) and would wait
 * for that very reader.
 *
 * Thread safety: a vg_store may be shared by threads; a vg_read and a
 * vg_batch belong to one thread at a time. */
#ifndef VIGIE_STORE_H
#define VIGIE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigie/error.h"
#include "vigie/period.h"

#define VG_SCHEMA_VERSION 1
#define VG_CODE_MAX 64  /* codes, including NUL */
#define VG_LEVEL_MAX 16 /* level names ("com", "epci"), including NUL */
#define VG_MAX_PARENTS 8
#define VG_MAX_SUCCESSORS 8 /* a split commune: the communes it went to */
#define VG_LATEST INT64_MAX /* as_of meaning "the current data" */

typedef struct vg_store vg_store;
typedef struct vg_batch vg_batch;
typedef struct vg_read vg_read;

/* ---- values ---------------------------------------------------------- */

typedef enum vg_status {
	VG_STATUS_OK = 0,
	VG_STATUS_PROVISIONAL = 1,
	VG_STATUS_ESTIMATED = 2,
	VG_STATUS_SUPPRESSED = 3, /* secret statistique: value is NaN */
	VG_STATUS_MISSING = 4,    /* value is NaN */
} vg_status;

/* "ok", "provisional", "estimated", "suppressed", "missing". Parse is
 * case-insensitive. Returns 0 or VG_EINVAL. */
int vg_status_parse(const char *s, size_t len, vg_status *out);
const char *vg_status_name(vg_status st);

typedef enum vg_agg_kind {
	VG_AGG_NONE = 0, /* only published values */
	VG_AGG_SUM,
	VG_AGG_RATIO, /* ratio(num, den, scale): sum(num)/sum(den)*scale */
	VG_AGG_WMEAN, /* wmean(value, weight): sum(v*w)/sum(w) */
	VG_AGG_MIN,
	VG_AGG_MAX,
} vg_agg_kind;

typedef struct vg_agg_rule {
	vg_agg_kind kind;
	char a[VG_CODE_MAX]; /* ratio: numerator; wmean: value indicator */
	char b[VG_CODE_MAX]; /* ratio: denominator; wmean: weight indicator */
	double scale;        /* ratio only; 1 when not given */
} vg_agg_rule;

/* Parse "sum", "ratio(gp_count, population, 1e5)", "wmean(apl, pop_std)",
 * "min", "max", "none". `self` is the indicator being defined: "wmean(w)"
 * means wmean(self, w). Returns 0 or VG_EPARSE with a message. */
int vg_agg_parse(const char *s, const char *self, vg_agg_rule *out,
		 vg_error *err);
/* Canonical text of a rule ("ratio(gp_count, population, 100000)"). */
void vg_agg_format(const vg_agg_rule *r, char *buf, size_t n);

/* ---- metadata -------------------------------------------------------- */

typedef struct vg_indicator {
	uint32_t id; /* assigned by the store; ignored on write */
	char code[VG_CODE_MAX];
	char label[256];
	char unit[64];
	char description[2048];
	char source[256];
	char licence[128];
	vg_periodicity periodicity; /* required (JSON: "year" if absent) */
	int decimals;               /* -1: unspecified */
	vg_agg_rule agg;
} vg_indicator;

/* One entry of the passage table: the territory an old code went to and
 * the share of it that went there (1 for a merger; for a split, the
 * shares of all successors add up to 1). */
typedef struct vg_successor {
	char code[VG_CODE_MAX];
	double weight;
} vg_successor;

/* One membership version of a perimeter: its members from `from` (any
 * period, compared by its first day) until the next version. A CLS that
 * gained three communes in 2024 has two versions, so its 2019 figures keep
 * the 2019 communes. */
typedef struct vg_membership {
	bool has_from;   /* false: from the beginning (no start period) */
	vg_period from;  /* when has_from */
	size_t nmembers;
	char (*members)[VG_CODE_MAX]; /* owned by the vg_territory */
} vg_membership;

/* A territory. `code` is canonical `level:code` (`com:85146`, `dep:2A`,
 * `cls:nantes-nord`), or `fr` for France. Parents are codes of territories
 * one level up in each hierarchy (a commune: its EPCI, département,
 * région). Members are set for custom perimeters only.
 *
 * Successors are set for an old code only (a commune merged into a
 * commune nouvelle, e.g. com:85027 -> com:85146): points may be stored
 * under it as published, and the aggregation engine counts them in its
 * successors (see vigie/query.h). An old code has no parents and no
 * members, so it never lies within another territory and is never
 * counted twice. Weights are in (0, 1] and add up to 1. */
typedef struct vg_territory {
	uint32_t id; /* assigned by the store; ignored on write */
	char code[VG_CODE_MAX];
	char level[VG_LEVEL_MAX];
	char name[256];
	size_t nparents;
	char parents[VG_MAX_PARENTS][VG_CODE_MAX];
	size_t nmembers;
	char (*members)[VG_CODE_MAX]; /* owned; freed by vg_territory_clear */
	size_t nsuccessors;
	vg_successor successors[VG_MAX_SUCCESSORS];
	/* Membership by period (perimeters only).
	 * Writing (vg_batch_territory): `members` are the members from
	 * `from` when has_from: the version with that `from` is added or
	 * replaced, the others kept. Without has_from the members replace
	 * every version (one version from the beginning). `versions` is
	 * ignored.
	 * Reading: `versions` lists every version, oldest first (a record
	 * written before versions existed reads as one version from the
	 * beginning); `members` are the latest version's, the ones the
	 * descendants index (`within`, listings) uses. */
	bool has_from;
	vg_period from;
	size_t nversions;
	vg_membership *versions; /* owned, with their members; freed by
				    vg_territory_clear */
} vg_territory;

/* Free what a vg_territory owns and zero it. */
void vg_territory_clear(vg_territory *t);

/* Indicator codes: [a-z][a-z0-9_]{0,62}. Returns 0 or VG_EINVAL. */
int vg_indicator_code_check(const char *code, vg_error *err);

/* Canonicalise a territory code. `raw` may already be canonical
 * ("com:01001") or bare ("01001", then `level` is required). The level is
 * lower-cased; "fr" (any case) is France. Writes into out[VG_CODE_MAX] and
 * the level into level_out[VG_LEVEL_MAX] (either may be NULL). */
int vg_territory_code_canon(const char *level, const char *raw, char *out,
			    char *level_out, vg_error *err);

/* JSON forms (cJSON), as in import files and the socket API. from_json
 * rejects unknown keys and wrong types with a message naming the field;
 * `where` (file name) and `index` (position in an array, -1 for none)
 * locate it. to_json returns a new object owned by the caller. */
struct cJSON;
int vg_indicator_from_json(const struct cJSON *obj, vg_indicator *out,
			   const char *where, long index, vg_error *err);
struct cJSON *vg_indicator_to_json(const vg_indicator *ind);
struct cJSON *vg_territory_to_json(const vg_territory *t);

/* ---- the environment ------------------------------------------------- */

typedef struct vg_store_opts {
	size_t map_size;      /* initial map size in bytes; 0: 256 MiB */
	unsigned max_readers; /* 0: 254 */
	bool read_only;       /* open MDB_RDONLY; batches are refused */
} vg_store_opts;

/* Open (and create when missing, unless read-only) the store in `dir`.
 * Errors: VG_ESCHEMA (another schema version; nothing is changed),
 * VG_EREADONLY (read-only directory), VG_EBUSY, VG_EIO, VG_ESTORE. */
int vg_store_open(vg_store **out, const char *dir, const vg_store_opts *opts,
		  vg_error *err);
void vg_store_close(vg_store *s);

typedef struct vg_store_stat {
	uint64_t map_size;  /* bytes reserved */
	uint64_t used;      /* bytes of the map in use */
	uint64_t file_size; /* data.mdb on disk */
	uint64_t points, history, blocks, indicators, territories, vintages;
	unsigned map_grows; /* times the map grew since open */
} vg_store_stat;

int vg_store_stat_get(vg_store *s, vg_store_stat *out, vg_error *err);

/* ---- writing --------------------------------------------------------- */

typedef struct vg_batch_opts {
	const char *origin;   /* who wrote it: "import points.csv", a plugin */
	const char *checksum; /* of the source, e.g. "sha256:..."; may be NULL */
	int64_t time;         /* publication time (Unix s); 0: now. Must not be
				 earlier than the latest vintage. */
} vg_batch_opts;

/* Start a batch. Nothing touches the store until vg_batch_commit. */
int vg_batch_new(vg_store *s, const vg_batch_opts *opts, vg_batch **out,
		 vg_error *err);

/* Define or update an indicator / a territory. Parents and members may
 * name territories defined later in the same batch; they are checked at
 * commit. */
int vg_batch_indicator(vg_batch *b, const vg_indicator *ind, vg_error *err);
int vg_batch_territory(vg_batch *b, const vg_territory *t, vg_error *err);

/* Buffer a point. The indicator and territory must exist in the store or
 * earlier in this batch; the period must have the indicator's periodicity.
 * SUPPRESSED and MISSING points store NaN whatever `value` is; other
 * statuses need a finite value. */
int vg_batch_point(vg_batch *b, const char *ind, const char *terr,
		   vg_period period, double value, vg_status st,
		   vg_error *err);

/* Replace the origin and checksum given to vg_batch_new (NULL leaves one
 * unchanged): a plugin run only knows its sources' checksum and row counts
 * when it ends. Always returns 0. */
int vg_batch_describe(vg_batch *b, const char *origin, const char *checksum);

/* Rows buffered so far (points). */
size_t vg_batch_size(const vg_batch *b);

typedef struct vg_commit_info {
	uint32_t vintage; /* 0 when the batch changed nothing */
	int64_t time;
	uint64_t points_new, points_changed, points_unchanged;
	uint64_t indicators, territories;
} vg_commit_info;

/* Apply the whole batch in one transaction and free it (in every case).
 * A batch whose points all equal the stored ones writes no vintage and no
 * revision. On error nothing was written. */
int vg_batch_commit(vg_batch *b, vg_commit_info *info, vg_error *err);

/* Drop a batch without writing anything. Safe on NULL. */
void vg_batch_free(vg_batch *b);

/* ---- reading --------------------------------------------------------- */

typedef struct vg_point {
	uint32_t ind;
	uint32_t terr;
	vg_period period;
	double value; /* NaN for suppressed / missing */
	vg_status status;
	uint32_t vintage;
} vg_point;

/* Called once per point; a non-zero return stops the iteration and is
 * returned by the reading function. */
typedef int (*vg_point_cb)(void *ud, const vg_point *p);

typedef struct vg_vintage {
	uint32_t id;
	int64_t time;
	char origin[256];
	char checksum[96];
	uint64_t points_new, points_changed, points_unchanged;
} vg_vintage;

int vg_read_begin(vg_store *s, vg_read **out, vg_error *err);
void vg_read_end(vg_read *r); /* safe on NULL */

/* Code -> id lookups. VG_ENOTFOUND (with a message) when unknown. */
int vg_read_indicator_id(vg_read *r, const char *code, uint32_t *id,
			 vg_error *err);
int vg_read_territory_id(vg_read *r, const char *code, uint32_t *id,
			 vg_error *err);
int vg_read_level_id(vg_read *r, const char *level, uint16_t *id,
		     vg_error *err);

/* Codes of ids (pointers valid until vg_read_end), NULL when unknown. */
const char *vg_read_indicator_code(vg_read *r, uint32_t id);
const char *vg_read_territory_code(vg_read *r, uint32_t id);
/* A territory's name, from the dictionaries (no record read). */
const char *vg_read_territory_name(vg_read *r, uint32_t id);

/* Full records. vg_territory must be cleared by the caller. */
int vg_read_indicator(vg_read *r, uint32_t id, vg_indicator *out,
		      vg_error *err);
int vg_read_territory(vg_read *r, uint32_t id, vg_territory *out,
		      vg_error *err);

/* Iterate ids (in id order). The callback gets the id. */
typedef int (*vg_id_cb)(void *ud, uint32_t id);
int vg_read_indicators(vg_read *r, vg_id_cb cb, void *ud);
/* level NULL: every level. */
int vg_read_territories(vg_read *r, const char *level, vg_id_cb cb, void *ud);

/* True when `terr` is `anc`, has `anc` among its ancestors (following
 * parents), or is a member of the perimeter `anc`. */
bool vg_read_territory_within(vg_read *r, uint32_t terr, uint32_t anc);

/* Every territory of `level` within `anc` (itself, below it through
 * parents, or in the perimeter), in rank order. */
int vg_read_descendants(vg_read *r, uint32_t anc, uint16_t level, vg_id_cb cb,
			void *ud);

/* True when no other territory lies below `terr` (a commune without
 * arrondissements, an arrondissement): the finest units aggregates are
 * computed from. */
bool vg_read_territory_is_leaf(vg_read *r, uint32_t terr);

/* The membership of perimeter `terr` in force at `period`: the version
 * with the greatest `from` <= the period's first day; before the first
 * version, the first one (before_first is then set). With `latest`, the
 * latest version whatever the period (a constant perimeter). Members are
 * ids, sorted, borrowed from the dictionaries until vg_read_end.
 * VG_ENOTFOUND when `terr` is not a perimeter. Costs one array look-up
 * for a territory that is not one. */
typedef struct vg_membership_info {
	bool has_from;     /* false: the version applies from the beginning */
	vg_period from;
	bool before_first; /* the period starts before the first version */
	bool latest;       /* the version used is the latest one */
	uint32_t version;  /* its index, 0 = oldest */
	uint32_t nversions;
	uint32_t nmembers;
	const uint32_t *members; /* borrowed */
} vg_membership_info;
int vg_read_perimeter_membership(vg_read *r, uint32_t terr, vg_period period,
				 bool latest, vg_membership_info *out);

/* Passage table, by id. `terr` is the other side, `weight` the share of
 * the old territory that goes to the new one. */
typedef struct vg_passage {
	uint32_t terr;
	double weight;
} vg_passage;

/* The territories `terr` was replaced by (successors) or replaced
 * (predecessors: old codes whose successor it is, one step back; follow
 * them again for chains). *out points into the dictionaries (valid until
 * vg_read_end), NULL when the count is 0. */
size_t vg_read_territory_successors(vg_read *r, uint32_t terr,
				    const vg_passage **out);
size_t vg_read_territory_predecessors(vg_read *r, uint32_t terr,
				      const vg_passage **out);

/* Territories whose name matches `query` (accent/case-insensitive, token
 * prefixes; "st" = "saint"), optionally only of `level` (NULL: any) and
 * within `within` (0: anywhere), best matches first. Skips `offset`
 * matches, calls cb for at most `limit` (0: no limit); *total (may be
 * NULL) gets the number of matches. An empty query matches every
 * territory (then in level, rank order).
 *
 * Matching: the query and the names are folded (vigie/fold.h); every
 * query token must be the prefix of some token of the name, where the
 * name's tokens are those of its key ("l hay les roses") and of its key
 * with apostrophes joined ("lhay les roses"); a query token "st"/"ste"
 * also matches "saint"/"sainte". Order: the whole folded name equal to
 * the folded query first, then names starting with the query's words
 * ("paris 1er arrondissement" for "paris"), then names starting with it
 * ("parisot"), then the others;
 * within each, by level id (the order levels were first defined: fr,
 * reg, dep, epci, com, arm for the COG import), then shorter name, then
 * code. An unknown level matches nothing. Errors: VG_EINVAL (a query of
 * more than 16 words), VG_ENOMEM; a non-zero return of cb stops and is
 * returned. */
int vg_read_territory_search(vg_read *r, const char *query, const char *level,
			     uint32_t within, size_t offset, size_t limit,
			     vg_id_cb cb, void *ud, size_t *total);

/* Level id of a territory (VG_ENOTFOUND if unknown) and number of levels
 * (level ids are 0 .. n-1). */
int vg_read_territory_level(vg_read *r, uint32_t terr, uint16_t *level);
uint16_t vg_read_level_count(vg_read *r);
/* Highest territory id + 1: arrays indexed by territory id have this size. */
uint32_t vg_read_territory_max(vg_read *r);
/* Parents' ids of a territory into out[VG_MAX_PARENTS]; returns count. */
size_t vg_read_territory_parents(vg_read *r, uint32_t terr, uint32_t *out);
const char *vg_read_level_name(vg_read *r, uint16_t level);

/* One point as of `as_of` (VG_LATEST for now). VG_ENOTFOUND if absent. */
int vg_read_point(vg_read *r, uint32_t ind, uint32_t terr, vg_period period,
		  int64_t as_of, vg_point *out);

/* A series in period order, from..to inclusive (0: unbounded). */
int vg_read_series(vg_read *r, uint32_t ind, uint32_t terr, vg_period from,
		   vg_period to, int64_t as_of, vg_point_cb cb, void *ud);

/* A cross-section: every territory of `level` with a point for (ind,
 * period), optionally only those within `within` (0: no filter), in
 * territory-id order. */
int vg_read_slice(vg_read *r, uint32_t ind, vg_period period, uint16_t level,
		  uint32_t within, int64_t as_of, vg_point_cb cb, void *ud);

/* The (period, level) pairs for which indicator `ind` has stored points
 * (a dense cross-section block), in (period, level) order, without
 * reading them: a cheap catalogue of what exists. A pair may hold only
 * suppressed or missing points, or points newer than an `as_of`: callers
 * that need a value check it. A non-zero return of cb stops and is
 * returned. */
typedef int (*vg_block_cb)(void *ud, vg_period period, uint16_t level);
int vg_read_indicator_blocks(vg_read *r, uint32_t ind, vg_block_cb cb,
			     void *ud);

/* Every current point, optionally of one indicator (0: all), in
 * (indicator, territory, period) order. */
int vg_read_points(vg_read *r, uint32_t ind, vg_point_cb cb, void *ud);

/* Every older value of one point, oldest first (current not included). */
int vg_read_history(vg_read *r, uint32_t ind, uint32_t terr, vg_period period,
		    vg_point_cb cb, void *ud);

int vg_read_vintage(vg_read *r, uint32_t id, vg_vintage *out, vg_error *err);

/* A vintage's publication time, cached in the store (a series row needs
 * it: no record is parsed twice). VG_ENOTFOUND if unknown. */
int vg_read_vintage_time(vg_read *r, uint32_t id, int64_t *t);

/* The newest vintage id (0 when nothing was ever committed). */
uint32_t vg_read_last_vintage(vg_read *r);

/* The indicators a vintage wrote new or revised points for (ids, in id
 * order); vintages recorded before this was kept list none. */
int vg_read_vintage_indicators(vg_read *r, uint32_t id, vg_id_cb cb,
			       void *ud);

/* ---- operations ------------------------------------------------------ */

/* A consistent copy of the store, taken while readers and writers go on
 * (LMDB's copy runs in a read transaction), compacted (free pages
 * dropped). `dir` must exist and hold no data.mdb: an existing backup is
 * never overwritten (VG_EEXIST). */
int vg_store_backup(vg_store *s, const char *dir, vg_error *err);

#endif
