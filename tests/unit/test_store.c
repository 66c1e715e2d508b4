/* The store: keys, put/get, series, slices, revisions and as_of,
 * all-or-nothing batches, map growth, schema refusal, full disk. */
#include <errno.h>
#include <lmdb.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "store/keys.h"

typedef struct {
	int n;
	double v[8];
} acc_t;

static int collect(void *ud, const vg_point *pt)
{
	acc_t *acc = ud;
	if (acc->n < 8)
		acc->v[acc->n] = pt->value;
	acc->n++;
	return 0;
}

static vg_store *open_store(const char *dir, size_t map)
{
	vg_store *s = NULL;
	vg_store_opts o = { .map_size = map };
	OK(vg_store_open(&s, dir, &o, &E));
	return s;
}

/* France > région 52 > dép 85 > EPCI > 3 communes, plus Loire-Atlantique. */
static void define_geo(vg_store *s)
{
	vg_batch *b;
	/* An early publication time, so tests can add dated vintages. */
	OK(vg_batch_new(s, &(vg_batch_opts){ .origin = "geo", .time = 1e9 },
			&b, &E));
	vg_territory t[] = {
		make_terr("com:85146", "Montaigu-Vendée", "epci:248500589",
			  "dep:85"),
		make_terr("com:85194", "Les Sables-d'Olonne", "dep:85", NULL),
		make_terr("com:44109", "Nantes", "dep:44", NULL),
		make_terr("epci:248500589", "CC Terres de Montaigu", "dep:85",
			  NULL),
		make_terr("dep:85", "Vendée", "reg:52", NULL),
		make_terr("dep:44", "Loire-Atlantique", "reg:52", NULL),
		make_terr("reg:52", "Pays de la Loire", "fr", NULL),
		make_terr("fr", "France", NULL, NULL),
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++)
		OK(vg_batch_territory(b, &t[i], &E));
	vg_indicator pop = make_ind("population", "sum");
	vg_indicator gp = make_ind("gp_count", "sum");
	vg_indicator dens = make_ind("gp_density",
				     "ratio(gp_count, population, 1e5)");
	OK(vg_batch_indicator(b, &pop, &E));
	OK(vg_batch_indicator(b, &gp, &E));
	OK(vg_batch_indicator(b, &dens, &E));
	vg_commit_info ci;
	OK(vg_batch_commit(b, &ci, &E));
	cr_assert_eq(ci.territories, 8);
	cr_assert_eq(ci.indicators, 3);
}

Test(keys, big_endian_order)
{
	uint8_t a[VG_PKEY_LEN], b[VG_PKEY_LEN];
	/* ids that differ in a low byte vs a high byte */
	vg__pkey(a, 1, 255, 2024);
	vg__pkey(b, 1, 256, 2023);
	cr_assert_lt(memcmp(a, b, VG_PKEY_LEN), 0);
	vg__pkey(a, 1, 7, per("2023"));
	vg__pkey(b, 1, 7, per("2024"));
	cr_assert_lt(memcmp(a, b, VG_PKEY_LEN), 0);
	vg__pkey(a, 2, 0, 0);
	vg__pkey(b, 1, UINT32_MAX, UINT32_MAX);
	cr_assert_gt(memcmp(a, b, VG_PKEY_LEN), 0);
	uint8_t h1[VG_HKEY_LEN], h2[VG_HKEY_LEN];
	vg__hkey(h1, 1, 2, 3, 9);
	vg__hkey(h2, 1, 2, 3, 10);
	cr_assert_lt(memcmp(h1, h2, VG_HKEY_LEN), 0);
	uint8_t k1[VG_BKEY_LEN], k2[VG_BKEY_LEN];
	vg__bkey(k1, 1, per("2024"), 1);
	vg__bkey(k2, 1, per("2024"), 256);
	cr_assert_lt(memcmp(k1, k2, VG_BKEY_LEN), 0);
	cr_assert_eq(vg__get_be32((uint8_t[]){ 0x12, 0x34, 0x56, 0x78 }),
		     0x12345678u);
}

Test(store, put_get_series_slice)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir, 0);
	define_geo(s);
	vg_batch *b;
	OK(vg_batch_new(s, NULL, &b, &E));
	const char *years[] = { "2019", "2020", "2021", "2022" };
	for (int y = 0; y < 4; y++) {
		OK(vg_batch_point(b, "population", "com:85146", per(years[y]),
				  20000 + y, VG_STATUS_OK, &E));
		OK(vg_batch_point(b, "population", "com:85194", per(years[y]),
				  45000 + y, VG_STATUS_OK, &E));
		OK(vg_batch_point(b, "population", "com:44109", per(years[y]),
				  320000 + y, VG_STATUS_OK, &E));
	}
	OK(vg_batch_point(b, "gp_count", "com:85146", per("2022"), 0,
			  VG_STATUS_SUPPRESSED, &E));
	vg_commit_info ci;
	OK(vg_batch_commit(b, &ci, &E));
	cr_assert_eq(ci.points_new, 13);
	cr_assert_neq(ci.vintage, 0);

	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	uint32_t pop, mv, nantes, dep85, gp;
	uint16_t com;
	OK(vg_read_indicator_id(r, "population", &pop, &E));
	OK(vg_read_indicator_id(r, "gp_count", &gp, &E));
	OK(vg_read_territory_id(r, "com:85146", &mv, &E));
	OK(vg_read_territory_id(r, "COM:44109", &nantes, &E));
	OK(vg_read_territory_id(r, "dep:85", &dep85, &E));
	OK(vg_read_level_id(r, "com", &com, &E));
	cr_assert_eq(vg_read_territory_id(r, "com:99999", &mv, &E),
		     VG_ENOTFOUND);
	OK(vg_read_territory_id(r, "com:85146", &mv, &E));

	vg_point p;
	OK(vg_read_point(r, pop, mv, per("2021"), VG_LATEST, &p));
	cr_assert_eq(p.value, 20002);
	cr_assert_eq(p.status, VG_STATUS_OK);
	OK(vg_read_point(r, gp, mv, per("2022"), VG_LATEST, &p));
	cr_assert(isnan(p.value));
	cr_assert_eq(p.status, VG_STATUS_SUPPRESSED);
	cr_assert_eq(vg_read_point(r, gp, mv, per("2021"), VG_LATEST, &p),
		     VG_ENOTFOUND);

	/* series: in order, bounded */
	acc_t acc = { 0 };
	OK(vg_read_series(r, pop, nantes, per("2020"), per("2021"), VG_LATEST,
			  collect, &acc));
	cr_assert_eq(acc.n, 2);
	cr_assert_eq(acc.v[0], 320001);
	cr_assert_eq(acc.v[1], 320002);

	/* slice: all communes, then only those within dép 85 */
	acc.n = 0;
	OK(vg_read_slice(r, pop, per("2022"), com, 0, VG_LATEST, collect,
			 &acc));
	cr_assert_eq(acc.n, 3);
	acc.n = 0;
	OK(vg_read_slice(r, pop, per("2022"), com, dep85, VG_LATEST, collect,
			 &acc));
	cr_assert_eq(acc.n, 2);
	cr_assert_eq(acc.v[0] + acc.v[1], 20003 + 45003);
	uint32_t fr;
	OK(vg_read_territory_id(r, "fr", &fr, &E));
	cr_assert(vg_read_territory_within(r, mv, fr));
	cr_assert_not(vg_read_territory_within(r, nantes, dep85));
	vg_read_end(r);
	vg_store_close(s);
	rm_tree(dir);
}


Test(store, periodicity_enforced)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir, 0);
	define_geo(s);
	vg_batch *b;
	OK(vg_batch_new(s, NULL, &b, &E));
	cr_assert_eq(vg_batch_point(b, "population", "com:85146",
				    per("2024-03"), 1, VG_STATUS_OK, &E),
		     VG_EPERIOD);
	cr_assert(strstr(E.msg, "month") && strstr(E.msg, "year"), "%s",
		  E.msg);
	cr_assert_eq(vg_batch_point(b, "nope", "com:85146", per("2024"), 1,
				    VG_STATUS_OK, &E),
		     VG_ENOTFOUND);
	cr_assert_eq(vg_batch_point(b, "population", "com:85146", per("2024"),
				    NAN, VG_STATUS_OK, &E),
		     VG_EINVAL);
	vg_batch_free(b);
	vg_store_close(s);
	rm_tree(dir);
}

static vg_store *with_points(char **dirp, int64_t t, double v)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir, 0);
	define_geo(s);
	*dirp = dir;
	(void)t;
	(void)v;
	return s;
}

static uint32_t put1(vg_store *s, int64_t t, double v, vg_status st,
		     vg_commit_info *ci)
{
	vg_batch *b;
	OK(vg_batch_new(s, &(vg_batch_opts){ .origin = "t", .time = t }, &b,
			&E));
	OK(vg_batch_point(b, "population", "com:85146", per("2022"), v, st,
			  &E));
	OK(vg_batch_commit(b, ci, &E));
	return ci->vintage;
}

Test(store, revisions_and_as_of)
{
	char *dir;
	vg_store *s = with_points(&dir, 0, 0);
	int64_t t1, t2, t3;
	vg_time_parse("2023-01-10T00:00:00Z", &t1);
	vg_time_parse("2024-01-10T00:00:00Z", &t2);
	vg_time_parse("2025-01-10T00:00:00Z", &t3);
	vg_commit_info ci;
	uint32_t v1 = put1(s, t1, 100, VG_STATUS_PROVISIONAL, &ci);
	cr_assert_eq(ci.points_new, 1);
	uint32_t v2 = put1(s, t2, 110, VG_STATUS_OK, &ci);
	cr_assert_eq(ci.points_changed, 1);
	/* Same value again: no revision, no vintage. */
	uint32_t v3 = put1(s, t3, 110, VG_STATUS_OK, &ci);
	cr_assert_eq(v3, 0);
	cr_assert_eq(ci.points_unchanged, 1);
	cr_assert_lt(v1, v2);

	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	uint32_t pop, mv;
	OK(vg_read_indicator_id(r, "population", &pop, &E));
	OK(vg_read_territory_id(r, "com:85146", &mv, &E));
	vg_point p;
	OK(vg_read_point(r, pop, mv, per("2022"), VG_LATEST, &p));
	cr_assert_eq(p.value, 110);
	cr_assert_eq(p.vintage, v2);
	int64_t when;
	vg_time_parse("2023-06-01", &when);
	OK(vg_read_point(r, pop, mv, per("2022"), when, &p));
	cr_assert_eq(p.value, 100);
	cr_assert_eq(p.status, VG_STATUS_PROVISIONAL);
	cr_assert_eq(p.vintage, v1);
	vg_time_parse("2022-06-01", &when);
	cr_assert_eq(vg_read_point(r, pop, mv, per("2022"), when, &p),
		     VG_ENOTFOUND);
	/* as_of in a slice too */
	uint16_t com;
	OK(vg_read_level_id(r, "com", &com, &E));
	acc_t acc = { 0 };
	vg_time_parse("2023-12-31", &when);
	OK(vg_read_slice(r, pop, per("2022"), com, 0, when, collect, &acc));
	cr_assert_eq(acc.n, 1);
	cr_assert_eq(acc.v[0], 100);
	/* history lists the old value */
	acc.n = 0;
	OK(vg_read_history(r, pop, mv, per("2022"), collect, &acc));
	cr_assert_eq(acc.n, 1);
	cr_assert_eq(acc.v[0], 100);
	vg_vintage vv;
	OK(vg_read_vintage(r, v2, &vv, &E));
	cr_assert_eq(vv.time, t2);
	cr_assert_eq(vv.points_changed, 1);
	vg_read_end(r);

	/* Going back in time is refused. */
	vg_batch *b;
	OK(vg_batch_new(s, &(vg_batch_opts){ .time = t1 }, &b, &E));
	OK(vg_batch_point(b, "population", "com:85146", per("2022"), 5,
			  VG_STATUS_OK, &E));
	cr_assert_eq(vg_batch_commit(b, &ci, &E), VG_EINVAL);
	cr_assert(strstr(E.msg, "earlier"), "%s", E.msg);
	vg_store_close(s);
	rm_tree(dir);
}

Test(store, batch_all_or_nothing)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir, 0);
	vg_batch *b;
	OK(vg_batch_new(s, NULL, &b, &E));
	vg_territory t = make_terr("com:01001", "L'Abergement-Clémenciat",
				   "dep:01", NULL);
	vg_indicator i = make_ind("population", "sum");
	OK(vg_batch_indicator(b, &i, &E));
	OK(vg_batch_territory(b, &t, &E));
	OK(vg_batch_point(b, "population", "com:01001", per("2022"), 800,
			  VG_STATUS_OK, &E));
	/* dep:01 is never defined: the whole batch must fail */
	cr_assert_eq(vg_batch_commit(b, NULL, &E), VG_ENOTFOUND);
	cr_assert(strstr(E.msg, "dep:01"), "%s", E.msg);
	vg_store_stat st;
	OK(vg_store_stat_get(s, &st, &E));
	cr_assert_eq(st.points, 0);
	cr_assert_eq(st.territories, 0);
	cr_assert_eq(st.indicators, 0);
	cr_assert_eq(st.vintages, 0);
	vg_store_close(s);
	rm_tree(dir);
}

Test(store, map_grows)
{
	char *dir = tmp_dir();
	/* 64 KiB map: far too small for the batch below */
	vg_store *s = open_store(dir, 64 << 10);
	define_geo(s);
	vg_batch *b;
	OK(vg_batch_new(s, NULL, &b, &E));
	char code[32];
	for (int c = 0; c < 3000; c++) {
		vg_territory t;
		snprintf(code, sizeof(code), "com:85%04d", c);
		t = make_terr(code, "Commune", "dep:85", NULL);
		OK(vg_batch_territory(b, &t, &E));
		for (int y = 2000; y < 2010; y++) {
			char ys[16];
			snprintf(ys, sizeof(ys), "%d", y);
			OK(vg_batch_point(b, "population", code, per(ys),
					  c * 10 + y, VG_STATUS_OK, &E));
		}
	}
	vg_commit_info ci;
	OK(vg_batch_commit(b, &ci, &E));
	cr_assert_eq(ci.points_new, 30000);
	vg_store_stat st;
	OK(vg_store_stat_get(s, &st, &E));
	cr_assert_gt(st.map_grows, 0);
	cr_assert_eq(st.points, 30000);
	vg_store_close(s);
	/* Reopen with the tiny size: LMDB keeps the grown file size. */
	s = open_store(dir, 64 << 10);
	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	uint32_t pop, t;
	OK(vg_read_indicator_id(r, "population", &pop, &E));
	OK(vg_read_territory_id(r, "com:852999", &t, &E));
	vg_point p;
	OK(vg_read_point(r, pop, t, per("2009"), VG_LATEST, &p));
	cr_assert_eq(p.value, 2999 * 10 + 2009);
	vg_read_end(r);
	vg_store_close(s);
	rm_tree(dir);
}

Test(store, schema_version_refused)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir, 0);
	vg_store_close(s);
	/* Pretend a future Vigie wrote this directory. */
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	cr_assert_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 16);
	cr_assert_eq(mdb_env_open(env, dir, 0, 0640), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	uint64_t v = 99;
	MDB_val k = { 6, "schema" }, d = { 8, &v };
	cr_assert_eq(mdb_put(txn, dbi, &k, &d, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	vg_store *s2 = NULL;
	cr_assert_eq(vg_store_open(&s2, dir, NULL, &E), VG_ESCHEMA);
	cr_assert_null(s2);
	cr_assert(strstr(E.msg, "99") && strstr(E.msg, "upgrade"), "%s",
		  E.msg);
	rm_tree(dir);
}

Test(store, read_only_directory)
{
	if (geteuid() == 0) {
		/* root ignores permissions: make the directory immutable
		 * another way is not portable, so check the flag path. */
		char *dir = tmp_dir();
		vg_store *s = NULL;
		vg_store_opts o = { .read_only = true };
		cr_assert_eq(vg_store_open(&s, dir, &o, &E), VG_ENOTFOUND);
		cr_assert(strstr(E.msg, "no Vigie store"), "%s", E.msg);
		s = open_store(dir, 0);
		vg_store_close(s);
		OK(vg_store_open(&s, dir, &o, &E));
		vg_batch *b;
		cr_assert_eq(vg_batch_new(s, NULL, &b, &E), VG_EREADONLY);
		vg_store_close(s);
		rm_tree(dir);
		return;
	}
	char *dir = tmp_dir();
	chmod(dir, 0500);
	vg_store *s = NULL;
	cr_assert_eq(vg_store_open(&s, dir, NULL, &E), VG_EREADONLY);
	cr_assert(strstr(E.msg, "not writable"), "%s", E.msg);
	rm_tree(dir);
}

Test(store, disk_full_writes_nothing)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir, 0);
	define_geo(s);
	vg_store_stat before;
	OK(vg_store_stat_get(s, &before, &E));
	/* A file size limit makes write() fail with EFBIG as a full disk
	 * would with ENOSPC; ignore SIGXFSZ so we get the error. */
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit rl = { (rlim_t)before.file_size + 8192,
			     (rlim_t)before.file_size + 8192 };
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	vg_batch *b;
	OK(vg_batch_new(s, NULL, &b, &E));
	char code[32];
	for (int c = 0; c < 2000; c++) {
		snprintf(code, sizeof(code), "com:85%04d", c);
		vg_territory t = make_terr(code, "Commune", "dep:85", NULL);
		OK(vg_batch_territory(b, &t, &E));
		OK(vg_batch_point(b, "population", code, per("2022"), c,
				  VG_STATUS_OK, &E));
	}
	int rc = vg_batch_commit(b, NULL, &E);
	cr_assert_eq(rc, VG_EFULL, "rc %d: %s", rc, E.msg);
	cr_assert(strstr(E.msg, "nothing was written"), "%s", E.msg);
	vg_store_close(s);
	rl.rlim_cur = rl.rlim_max = RLIM_INFINITY;
	setrlimit(RLIMIT_FSIZE, &rl);
	s = open_store(dir, 0);
	vg_store_stat after;
	OK(vg_store_stat_get(s, &after, &E));
	cr_assert_eq(after.points, 0);
	cr_assert_eq(after.territories, before.territories);
	vg_store_close(s);
	rm_tree(dir);
}

Test(store, level_cannot_change)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir, 0);
	define_geo(s);
	vg_batch *b;
	OK(vg_batch_new(s, NULL, &b, &E));
	vg_territory t = make_terr("com:85146", "X", NULL, NULL);
	OK(vg_batch_territory(b, &t, &E));
	OK(vg_batch_commit(b, NULL, &E)); /* same level: fine (renamed) */
	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	uint32_t id;
	OK(vg_read_territory_id(r, "com:85146", &id, &E));
	vg_territory got;
	OK(vg_read_territory(r, id, &got, &E));
	cr_assert_str_eq(got.name, "X");
	vg_territory_clear(&got);
	vg_read_end(r);
	vg_store_close(s);
	rm_tree(dir);
}

Test(agg, parse_rules)
{
	vg_agg_rule r;
	OK(vg_agg_parse("ratio(gp_count, population, 1e5)", "x", &r, &E));
	cr_assert_eq(r.kind, VG_AGG_RATIO);
	cr_assert_str_eq(r.a, "gp_count");
	cr_assert_str_eq(r.b, "population");
	cr_assert_eq(r.scale, 1e5);
	char buf[200];
	vg_agg_format(&r, buf, sizeof(buf));
	cr_assert_str_eq(buf, "ratio(gp_count, population, 100000)");
	OK(vg_agg_parse("wmean(pop_std)", "apl", &r, &E));
	cr_assert_str_eq(r.a, "apl");
	cr_assert_str_eq(r.b, "pop_std");
	OK(vg_agg_parse(" sum ", "x", &r, &E));
	cr_assert_eq(r.kind, VG_AGG_SUM);
	cr_assert_eq(vg_agg_parse("mean", "x", &r, &E), VG_EPARSE);
	cr_assert_eq(vg_agg_parse("ratio(a)", "x", &r, &E), VG_EPARSE);
	cr_assert_eq(vg_agg_parse("ratio(a, b, -1)", "x", &r, &E), VG_EPARSE);
	cr_assert_eq(vg_agg_parse("sum(a", "x", &r, &E), VG_EPARSE);
	cr_assert_eq(vg_agg_parse("ratio(A-B, c)", "x", &r, &E), VG_EPARSE);
}

Test(codes, canonical_territory_codes)
{
	char out[VG_CODE_MAX], lv[VG_LEVEL_MAX];
	OK(vg_territory_code_canon("com", "01001", out, lv, &E));
	cr_assert_str_eq(out, "com:01001");
	OK(vg_territory_code_canon(NULL, "DEP:2A", out, lv, &E));
	cr_assert_str_eq(out, "dep:2A");
	cr_assert_str_eq(lv, "dep");
	OK(vg_territory_code_canon(NULL, "FR", out, lv, &E));
	cr_assert_str_eq(out, "fr");
	cr_assert_eq(vg_territory_code_canon(NULL, "01001", out, lv, &E),
		     VG_EINVAL);
	cr_assert(strstr(E.msg, "com:01001"), "%s", E.msg);
	cr_assert_eq(vg_territory_code_canon("dep", "com:01001", out, lv, &E),
		     VG_EINVAL);
	cr_assert_eq(vg_territory_code_canon(NULL, "com:01 001", out, lv, &E),
		     VG_EINVAL);
	cr_assert_eq(vg_indicator_code_check("GP", &E), VG_EINVAL);
	OK(vg_indicator_code_check("gp_density_2", &E));
}

/* The same point twice in one batch: fine if identical, refused (and
 * nothing written) if the two values differ. */
Test(store, conflicting_duplicates_refused)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir, 0);
	define_geo(s);
	vg_batch *b;
	vg_commit_info ci;
	OK(vg_batch_new(s, NULL, &b, &E));
	OK(vg_batch_point(b, "population", "com:85146", per("2022"), 10,
			  VG_STATUS_OK, &E));
	OK(vg_batch_point(b, "population", "com:85146", per("2022"), 10,
			  VG_STATUS_OK, &E));
	OK(vg_batch_commit(b, &ci, &E));
	cr_assert_eq(ci.points_new, 1);
	OK(vg_batch_new(s, NULL, &b, &E));
	OK(vg_batch_point(b, "population", "com:85194", per("2022"), 7,
			  VG_STATUS_OK, &E));
	OK(vg_batch_point(b, "population", "com:85146", per("2021"), 11,
			  VG_STATUS_OK, &E));
	OK(vg_batch_point(b, "population", "com:85146", per("2021"), 12,
			  VG_STATUS_OK, &E));
	cr_assert_eq(vg_batch_commit(b, &ci, &E), VG_EINVAL);
	cr_assert(strstr(E.msg, "com:85146") && strstr(E.msg, "2021") &&
			  strstr(E.msg, "twice"),
		  "%s", E.msg);
	vg_store_stat st;
	OK(vg_store_stat_get(s, &st, &E));
	cr_assert_eq(st.points, 1);
	vg_store_close(s);
	rm_tree(dir);
}

/* A perimeter crossing two départements, and one listing a commune with
 * arrondissements: `within` reaches the members and what lies below them,
 * through the descendants index. */
Test(store, perimeters_within)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir, 0);
	define_geo(s);
	vg_batch *b;
	OK(vg_batch_new(s, NULL, &b, &E));
	vg_territory paris = make_terr("com:75056", "Paris", "dep:75", NULL);
	vg_territory d75 = make_terr("dep:75", "Paris", "reg:11", NULL);
	vg_territory r11 = make_terr("reg:11", "Île-de-France", "fr", NULL);
	vg_territory a1 = make_terr("arm:75101", "Paris 1er", "com:75056",
				    "dep:75");
	vg_territory a2 = make_terr("arm:75102", "Paris 2e", "com:75056",
				    "dep:75");
	vg_territory cls = make_terr("cls:estuaire", "CLS de l'estuaire", NULL,
				     NULL);
	char members[2][VG_CODE_MAX] = { "com:85146", "com:44109" };
	cls.members = members;
	cls.nmembers = 2;
	vg_territory cpts = make_terr("cpts:paris-centre", "CPTS", NULL, NULL);
	char m2[1][VG_CODE_MAX] = { "com:75056" };
	cpts.members = m2;
	cpts.nmembers = 1;
	vg_territory all[] = { paris, d75, r11, a1, a2, cls, cpts };
	for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++)
		OK(vg_batch_territory(b, &all[i], &E));
	const char *coms[] = { "com:85146", "com:85194", "com:44109",
			       "com:75056" };
	for (int i = 0; i < 4; i++)
		OK(vg_batch_point(b, "population", coms[i], per("2022"),
				  100 * (i + 1), VG_STATUS_OK, &E));
	OK(vg_batch_point(b, "population", "arm:75101", per("2022"), 15,
			  VG_STATUS_OK, &E));
	OK(vg_batch_point(b, "population", "arm:75102", per("2022"), 20,
			  VG_STATUS_OK, &E));
	OK(vg_batch_commit(b, NULL, &E));

	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	uint32_t pop, cid, pid, mv, sables, a1id;
	uint16_t com, arm;
	OK(vg_read_indicator_id(r, "population", &pop, &E));
	OK(vg_read_territory_id(r, "cls:estuaire", &cid, &E));
	OK(vg_read_territory_id(r, "cpts:paris-centre", &pid, &E));
	OK(vg_read_territory_id(r, "com:85146", &mv, &E));
	OK(vg_read_territory_id(r, "com:85194", &sables, &E));
	OK(vg_read_territory_id(r, "arm:75101", &a1id, &E));
	OK(vg_read_level_id(r, "com", &com, &E));
	OK(vg_read_level_id(r, "arm", &arm, &E));
	cr_assert(vg_read_territory_within(r, mv, cid));
	cr_assert_not(vg_read_territory_within(r, sables, cid));
	cr_assert(vg_read_territory_within(r, a1id, pid));
	cr_assert(vg_read_territory_within(r, cid, cid));
	acc_t acc = { 0 };
	OK(vg_read_slice(r, pop, per("2022"), com, cid, VG_LATEST, collect,
			 &acc));
	cr_assert_eq(acc.n, 2);
	cr_assert_eq(acc.v[0] + acc.v[1], 100 + 300);
	acc.n = 0;
	OK(vg_read_slice(r, pop, per("2022"), arm, pid, VG_LATEST, collect,
			 &acc));
	cr_assert_eq(acc.n, 2);
	cr_assert_eq(acc.v[0] + acc.v[1], 35);
	/* Paris within France through dep:75 and reg:11 */
	uint32_t fr;
	OK(vg_read_territory_id(r, "fr", &fr, &E));
	acc.n = 0;
	OK(vg_read_slice(r, pop, per("2022"), arm, fr, VG_LATEST, collect,
			 &acc));
	cr_assert_eq(acc.n, 2);
	vg_read_end(r);
	vg_store_close(s);
	rm_tree(dir);
}

/* Reader slots left by a process that died with read transactions open
 * are reclaimed (mdb_reader_check on MDB_READERS_FULL), instead of
 * locking readers out until a restart. */
Test(store, stale_readers_reclaimed)
{
	char *dir = tmp_dir();
	vg_store_opts o = { .max_readers = 2 };
	vg_store *s = NULL;
	OK(vg_store_open(&s, dir, &o, &E));
	define_geo(s);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		/* A second process takes every reader slot and dies without
		 * releasing them. */
		vg_store *c = NULL;
		vg_read *r1, *r2;
		if (vg_store_open(&c, dir, &o, NULL) ||
		    vg_read_begin(c, &r1, NULL) || vg_read_begin(c, &r2, NULL))
			_exit(3);
		_exit(0);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "child could not take the reader slots");
	vg_read *r1 = NULL, *r2 = NULL;
	OK(vg_read_begin(s, &r1, &E));
	OK(vg_read_begin(s, &r2, &E));
	uint32_t id;
	OK(vg_read_territory_id(r2, "com:85146", &id, &E));
	vg_read_end(r1);
	vg_read_end(r2);
	vg_store_close(s);
	rm_tree(dir);
}

/* Vintage publication times: from the record the first time, from the
 * store's cache after; each vintage lists the indicators it changed. */
Test(store, vintage_time_and_indicators)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir, 0);
	define_geo(s);
	int64_t times[] = { 1700000000, 1700086400 };
	uint32_t vints[2];
	for (int i = 0; i < 2; i++) {
		vg_batch *b;
		OK(vg_batch_new(s, &(vg_batch_opts){ .origin = "t",
						      .time = times[i] },
				&b, &E));
		OK(vg_batch_point(b, "population", "com:85146", per("2022"),
				  20000 + i, VG_STATUS_OK, &E));
		vg_commit_info ci;
		OK(vg_batch_commit(b, &ci, &E));
		vints[i] = ci.vintage;
	}
	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < 2; i++) {
			int64_t t = 0;
			OK(vg_read_vintage_time(r, vints[i], &t));
			cr_assert_eq(t, times[i], "pass %d vintage %u", pass,
				     vints[i]);
		}
	int64_t t;
	cr_assert_eq(vg_read_vintage_time(r, 9999, &t), VG_ENOTFOUND);
	cr_assert_eq(vg_read_last_vintage(r), vints[1]);
	vg_read_end(r);
	vg_store_close(s);
	rm_tree(dir);
}

/* The dictionaries keep each indicator's parsed record (aggregation reads
 * it for every query): a redefinition must be seen by the next read, the
 * label and the rule alike. */
Test(store, indicator_record_follows_redefinition)
{
	char *dir = tmp_dir();
	vg_store *s = open_store(dir, 0);
	define_geo(s);
	vg_read *r;
	uint32_t id;
	vg_indicator ind;
	OK(vg_read_begin(s, &r, &E));
	OK(vg_read_indicator_id(r, "gp_density", &id, &E));
	OK(vg_read_indicator(r, id, &ind, &E));
	vg_read_end(r);
	cr_assert_eq(ind.id, id);
	cr_assert_eq(ind.agg.kind, VG_AGG_RATIO);
	cr_assert_eq(ind.agg.scale, 1e5);

	vg_indicator redef = make_ind("gp_density",
				      "ratio(gp_count, population, 1e3)");
	snprintf(redef.label, sizeof(redef.label), "Densité pour 1 000");
	vg_batch *b;
	OK(vg_batch_new(s, &(vg_batch_opts){ .origin = "redef" }, &b, &E));
	OK(vg_batch_indicator(b, &redef, &E));
	OK(vg_batch_commit(b, NULL, &E));

	OK(vg_read_begin(s, &r, &E));
	OK(vg_read_indicator(r, id, &ind, &E));
	vg_read_end(r);
	cr_assert_eq(ind.id, id);
	cr_assert_eq(ind.agg.scale, 1e3);
	cr_assert_str_eq(ind.label, "Densité pour 1 000");
	OK(vg_read_begin(s, &r, &E));
	cr_assert_eq(vg_read_indicator(r, 999, &ind, &E), VG_ENOTFOUND);
	vg_read_end(r);
	vg_store_close(s);
	rm_tree(dir);
}
