/* Name folding (include/vigie/fold.h) and territory name search
 * (vg_read_territory_search) on the real COG 2024 territories. */
#include <time.h>

#include "helpers.h"
#include "vigie/common.h"
#include "vigie/fold.h"
#include "vigie/io.h"

static const char *fold(const char *s, unsigned flags)
{
	static char buf[4][256];
	static int next;
	char *b = buf[next++ % 4];
	vg_fold(s, b, sizeof(buf[0]), flags);
	return b;
}

Test(fold, accents_case_punctuation)
{
	cr_assert_str_eq(fold("Châteauroux", 0), "chateauroux");
	cr_assert_str_eq(fold("Saint-Étienne", 0), "saint etienne");
	cr_assert_str_eq(fold("L'Haÿ-les-Roses", 0), "l hay les roses");
	cr_assert_str_eq(fold("L’Haÿ-les-Roses", VG_FOLD_JOIN_APOS),
			 "lhay les roses");
	cr_assert_str_eq(fold("Évry-Courcouronnes", 0), "evry courcouronnes");
	cr_assert_str_eq(fold("ÉÈÊËÀÂÄÎÏÔÖÛÜÙŸÇ éèêëàâäîïôöûüùÿç", 0),
			 "eeeeaaaiioouuuyc eeeeaaaiioouuuyc");
	cr_assert_str_eq(fold("Œuilly, Cœur, Æ, Straße", 0),
			 "oeuilly coeur ae strasse");
	cr_assert_str_eq(fold("  --Paris   1er  Arrondissement-- ", 0),
			 "paris 1er arrondissement");
	cr_assert_str_eq(fold("", 0), "");
	cr_assert_str_eq(fold("' - ,", 0), "");
	/* Decomposed (NFD) é: e + U+0301. */
	cr_assert_str_eq(fold("Ste\xcc\x81phane", 0), "stephane");
	/* Latin Extended-A beyond French: Łódź, Šibenik. */
	cr_assert_str_eq(fold("Łódź Šibenik", 0), "lodz sibenik");
	/* Other scripts are kept as they are. */
	cr_assert_str_eq(fold("Αθήνα", 0), "Αθήνα");
}

Test(fold, saint_abbreviations)
{
	cr_assert_str_eq(fold("St-Étienne", VG_FOLD_SAINT), "saint etienne");
	cr_assert_str_eq(fold("STE Foy", VG_FOLD_SAINT), "sainte foy");
	/* Only whole tokens: Stains is not a saint. */
	cr_assert_str_eq(fold("Stains st", VG_FOLD_SAINT), "stains saint");
	cr_assert_str_eq(fold("St-Étienne", 0), "st etienne");
}

Test(fold, invalid_utf8_and_truncation)
{
	/* Invalid bytes separate, never crash. */
	cr_assert_str_eq(fold("a\xff" "b\xc3", 0), "a b");
	cr_assert_str_eq(fold("\xe2\x82", 0), "");
	cr_assert_str_eq(fold("\xc0\xaf" "x", 0), "x"); /* overlong '/' */
	char small[6];
	cr_assert_eq(vg_fold("Châteauroux", small, sizeof(small), 0), 5);
	cr_assert_str_eq(small, "chate");
	/* A Greek letter (2 bytes) that does not fit is left out whole. */
	char g[4];
	vg_fold("abΑ", g, sizeof(g), 0);
	cr_assert_str_eq(g, "ab");
	char one[1];
	cr_assert_eq(vg_fold("abc", one, 1, 0), 0);
	cr_assert_str_eq(one, "");
}

/* ---- search on the real territories ------------------------------------ */

static const char *real_fixture(const char *name)
{
	static char buf[1024];
	const char *root = getenv("VIGIE_ROOT");
	snprintf(buf, sizeof(buf), "%s/tests/fixtures/real/%s",
		 root && *root ? root : ".", name);
	return buf;
}

static vg_store *S;
static char *D;
static vg_import_report R;

static void setup_real(void)
{
	D = tmp_dir();
	OK(vg_store_open(&S, D, NULL, &E));
	OK(vg_import_territories(S, real_fixture("territories_cog2024.csv"),
				 NULL, &R, &E));
}

static void teardown_real(void)
{
	vg_store_close(S);
	rm_tree(D);
}

typedef struct found {
	vg_read *r;
	size_t n;
	char codes[64][VG_CODE_MAX];
} found;

static int collect(void *ud, uint32_t id)
{
	found *f = ud;
	if (f->n < 64)
		snprintf(f->codes[f->n], VG_CODE_MAX, "%s",
			 vg_read_territory_code(f->r, id));
	f->n++;
	return 0;
}

static size_t search(found *f, const char *q, const char *level,
		     const char *within, size_t offset, size_t limit)
{
	vg_read *r;
	OK(vg_read_begin(S, &r, &E));
	memset(f, 0, sizeof(*f));
	f->r = r;
	uint32_t in = 0;
	if (within)
		OK(vg_read_territory_id(r, within, &in, &E));
	size_t total = 0;
	OK(vg_read_territory_search(r, q, level, in, offset, limit, collect, f,
				    &total));
	vg_read_end(r);
	return total;
}

static bool has(const found *f, const char *code)
{
	for (size_t i = 0; i < f->n && i < 64; i++)
		if (!strcmp(f->codes[i], code))
			return true;
	return false;
}

Test(search, accents_and_case, .init = setup_real, .fini = teardown_real)
{
	found f;
	search(&f, "chateauroux", NULL, NULL, 0, 0);
	cr_assert_geq(f.n, 3); /* the commune, -les-Alpes, the agglomération */
	cr_assert_str_eq(f.codes[0], "com:36044", "first: %s", f.codes[0]);
	cr_assert(has(&f, "com:05036"));
	cr_assert(has(&f, "epci:243600327"));
	search(&f, "CHÂTEAUROUX", "com", NULL, 0, 0);
	cr_assert_str_eq(f.codes[0], "com:36044");
	cr_assert(!has(&f, "epci:243600327"), "level filter");
}

Test(search, saint_spellings, .init = setup_real, .fini = teardown_real)
{
	const char *qs[] = { "st etienne", "saint-etienne", "Saint Étienne",
			     "st-étienne", "ST ETIENNE" };
	for (size_t i = 0; i < VG_ARRAY_LEN(qs); i++) {
		found f;
		search(&f, qs[i], "com", NULL, 0, 0);
		cr_assert_str_eq(f.codes[0], "com:42218", "%s -> %s", qs[i],
				 f.codes[0]);
		/* Saint-Étienne-de-... then Villey-Saint-Étienne... */
		cr_assert_gt(f.n, 64, "%s: %zu", qs[i], f.n);
		cr_assert(!strncmp(f.codes[1], "com:", 4));
	}
	found v;
	search(&v, "villey st etienne", NULL, NULL, 0, 0);
	cr_assert_eq(v.n, 1);
	cr_assert_str_eq(v.codes[0], "com:54584");
	/* "st" still finds what starts with "st": Stains. */
	found f;
	search(&f, "st", "com", "dep:93", 0, 0);
	cr_assert(has(&f, "com:93072"), "Stains");
}

Test(search, elisions, .init = setup_real, .fini = teardown_real)
{
	const char *qs[] = { "l'haÿ", "lhay les roses", "L’HAY-LES-ROSES",
			     "hay les ros", "l hay" };
	for (size_t i = 0; i < VG_ARRAY_LEN(qs); i++) {
		found f;
		search(&f, qs[i], NULL, NULL, 0, 0);
		cr_assert_geq(f.n, 1, "%s", qs[i]);
		cr_assert_str_eq(f.codes[0], "com:94038", "%s -> %s", qs[i],
				 f.codes[0]);
	}
}

Test(search, ranking_and_paging, .init = setup_real, .fini = teardown_real)
{
	found f;
	/* Exact name first, then names starting with it by level (communes
	 * before arrondissements), then the others (the EPCI). */
	size_t total = search(&f, "paris", NULL, NULL, 0, 0);
	cr_assert_eq(total, f.n);
	cr_assert_str_eq(f.codes[0], "dep:75"); /* also named Paris */
	cr_assert_str_eq(f.codes[1], "com:75056");
	/* Then names starting with the word: Paris-l'Hôpital (com, level
	 * before arm), then the arrondissements. */
	cr_assert_str_eq(f.codes[2], "com:71343");
	cr_assert(!strncmp(f.codes[3], "arm:751", 7), "%s", f.codes[3]);
	cr_assert(has(&f, "arm:75101") && has(&f, "arm:75120"));
	search(&f, "paris 1", "arm", NULL, 0, 0);
	cr_assert_eq(f.n, 11, "1er, 10e..19e: %zu", f.n);
	cr_assert_str_eq(f.codes[0], "arm:75101");
	/* Paging: the same order, one window at a time. */
	found all, page;
	size_t t = search(&all, "evry", NULL, NULL, 0, 0);
	cr_assert_geq(t, 3);
	cr_assert_str_eq(all.codes[0], "com:89162"); /* exact: Évry (89) */
	size_t t2 = search(&page, "evry", NULL, NULL, 1, 1);
	cr_assert_eq(t2, t);
	cr_assert_eq(page.n, 1);
	cr_assert_str_eq(page.codes[0], all.codes[1]);
	search(&page, "evry", NULL, NULL, t, 5);
	cr_assert_eq(page.n, 0);
	search(&f, "evry courc", NULL, NULL, 0, 0);
	cr_assert_eq(f.n, 1);
	cr_assert_str_eq(f.codes[0], "com:91228");
}

Test(search, within_level_empty_and_none, .init = setup_real,
     .fini = teardown_real)
{
	found f;
	search(&f, "saint", "com", "dep:42", 0, 0);
	cr_assert(has(&f, "com:42218"));
	for (size_t i = 0; i < f.n && i < 64; i++)
		cr_assert(!strncmp(f.codes[i], "com:42", 6), "%s", f.codes[i]);
	/* Empty query: every territory of the level, in rank order. */
	size_t total = search(&f, "", "dep", NULL, 0, 3);
	cr_assert_eq(total, 101);
	cr_assert_eq(f.n, 3);
	cr_assert_str_eq(f.codes[0], "dep:01");
	total = search(&f, "  - ", "arm", "com:75056", 0, 0);
	cr_assert_eq(total, 20);
	/* No match, unknown level, unknown words. */
	cr_assert_eq(search(&f, "zzzqqq", NULL, NULL, 0, 0), 0);
	cr_assert_eq(search(&f, "paris", "nolevel", NULL, 0, 0), 0);
	cr_assert_eq(f.n, 0);
	/* Too many words: an error, not a truncated query. */
	vg_read *r;
	OK(vg_read_begin(S, &r, &E));
	cr_assert_eq(vg_read_territory_search(r, "a b c d e f g h i j k l m "
					      "n o p q", NULL, 0, 0, 0,
					      collect, &f, NULL),
		     VG_EINVAL);
	vg_read_end(r);
}

static int stop_cb(void *ud, uint32_t id)
{
	(void)id;
	return ++*(int *)ud == 2 ? 42 : 0;
}

Test(search, callback_stops_and_timing, .init = setup_real,
     .fini = teardown_real)
{
	vg_read *r;
	OK(vg_read_begin(S, &r, &E));
	int n = 0;
	cr_assert_eq(vg_read_territory_search(r, "saint", NULL, 0, 0, 0,
					      stop_cb, &n, NULL),
		     42);
	cr_assert_eq(n, 2);
	/* Speed over 38 346 territories: a search scans every folded name. */
	const char *qs[] = { "saint", "st etienne", "chateauroux", "l hay",
			     "a", "montaigu vendee" };
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int iters = 50;
	size_t total = 0, sum = 0;
	for (int i = 0; i < iters; i++)
		for (size_t k = 0; k < VG_ARRAY_LEN(qs); k++) {
			found f = { 0 };
			f.r = r;
			OK(vg_read_territory_search(r, qs[k], NULL, 0, 0, 20,
						    collect, &f, &total));
			cr_assert_eq(f.n, total < 20 ? total : 20);
			sum += total;
		}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	vg_read_end(r);
	double ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		     (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) /
		    (iters * (double)VG_ARRAY_LEN(qs));
	fprintf(stderr, "search: %.3f ms per query (%zu matches in all)\n",
		ms, sum);
	/* 5 ms is the target in a release build; sanitizers slow it ~5x. */
	cr_assert_lt(ms, 50.0);
}
