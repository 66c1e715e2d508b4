/* bench_store: the Vigie store against SQLite on a France-shaped data set.
 *
 *   make bench                       full run (34 900 communes, 8.7 M points)
 *   make bench BENCH_ARGS=--quick    5 % of the communes, a few seconds
 *   build/bench_store --help         every flag
 *
 * Both engines get the same generated data, the same batches and the same
 * random queries, in the same process. Every query's result is reduced to
 * a checksum and compared with the other engine and with the generator
 * itself (the ground truth): a benchmark that reads wrong data is
 * worthless, so any difference makes the program exit 1 and flags the
 * table as invalid.
 *
 * The data set (deterministic, fixed seed): 18 régions, 101 départements,
 * ~1 250 EPCI, ~34 900 communes with a skewed population, `fr`; 10 yearly
 * indicators over 2000-2024 with a value for every commune; 20 custom
 * perimeters (level `cls`) of 50 communes across départements. Values are
 * multiples of 1/256 and small enough that every sum the checksums form is
 * exact in a double, whatever the order of addition, so the checks can use
 * ==, not a tolerance.
 *
 * Besides reads, it measures aggregations with the indicators' rules (sums
 * to every EPCI, every département, over a perimeter; a ratio of sums to
 * every département), checked against sums recomputed from the generator,
 * next to the same sums done on a plain in-memory array.
 *
 * Only the public API (include/vigie/) is used on the Vigie side. */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "vigie/error.h"
#include "vigie/period.h"
#include "vigie/query.h"
#include "vigie/store.h"

/* ---- the data set's shape ------------------------------------------- */

#define FULL_COMMUNES 34900
#define FULL_EPCI     1250
#define NREG	      18
#define NDEP	      101
#define NIND	      10
#define YEAR0	      2000
#define NYEAR	      25
/* Custom perimeters (CLS-like): NPERIM territories of level `cls`, each
 * listing PERIM_SIZE communes drawn across neighbouring départements. */
#define NPERIM	    20
#define PERIM_SIZE  50
#define NPERIM_CODE 24

/* Real région codes: 13 metropolitan ones, then the five overseas régions
 * (one département each). */
static const char *const reg_codes[NREG] = {
    "11", "24", "27", "28", "32", "44", "52", "53", "75",
    "76", "84", "93", "94", "01", "02", "03", "04", "06",
};
#define NREG_METRO 13

/* The overseas départements and their real commune counts, so the small
 * ones stay small at any scale. */
static const char *const dom_codes[5] = {"971", "972", "973", "974", "976"};
static const unsigned dom_communes[5] = {32, 34, 22, 24, 17};

typedef struct indicator_def {
	const char *code;
	const char *label;
	const char *unit;
	const char *agg;
	int decimals;
} indicator_def;

/* The indices matter: value_of() computes derived indicators from the
 * base ones. */
enum {
	I_POP,
	I_POP75,
	I_BIRTHS,
	I_DEATHS,
	I_GP,
	I_ALD,
	I_GP_DENSITY,
	I_SHARE75,
	I_APL,
	I_POVERTY,
};

static const indicator_def ind_defs[NIND] = {
    {"population", "Population municipale", "habitants", "sum", 0},
    {"pop_75plus", "Population de 75 ans ou plus", "habitants", "sum", 0},
    {"births", "Naissances domiciliées", "naissances", "sum", 0},
    {"deaths", "Décès domiciliés", "décès", "sum", 0},
    {"gp_count", "Médecins généralistes libéraux", "médecins", "sum", 0},
    {"ald_count", "Patients en affection de longue durée", "patients", "sum",
     0},
    {"gp_density", "Densité de médecins généralistes libéraux",
     "pour 100 000 habitants", "ratio(gp_count, population, 100000)", 1},
    {"share_75plus", "Part des 75 ans ou plus", "%",
     "ratio(pop_75plus, population, 100)", 1},
    {"apl", "Accessibilité potentielle localisée aux généralistes",
     "consultations/an/habitant", "wmean(population)", 1},
    {"poverty_rate", "Taux de pauvreté", "%", "wmean(population)", 1},
};

typedef struct commune {
	char code[16]; /* com:DDCCC */
	uint32_t dep, epci;
	double p0;     /* population in 2012 */
	double growth; /* per year, relative */
	double s75;    /* share of 75+ in 2000 */
} commune;

typedef struct dept {
	char code[12]; /* dep:NN */
	unsigned reg;
	uint32_t com0, ncom; /* communes [com0, com0 + ncom) */
	uint32_t epci0, nepci;
} dept;

typedef struct epci {
	char code[20]; /* epci:2000xxxxx */
	uint32_t dep;
} epci;

typedef struct dataset {
	uint64_t seed;
	char reg[NREG][12];
	dept dep[NDEP];
	epci *epci;
	uint32_t nepci;
	commune *com;
	uint32_t ncom;
	vg_period period[NYEAR]; /* increasing: see year_index() */
	uint64_t npoints;
	char perim_code[NPERIM][NPERIM_CODE]; /* cls:bench-NN */
	uint32_t perim[NPERIM][PERIM_SIZE];   /* member communes, distinct */
	unsigned perim_ndep[NPERIM];	      /* départements they span */
} dataset;

/* ---- small utilities -------------------------------------------------- */

static const char *g_cleanup_dir; /* removed by die() unless --keep */
static bool g_keep;

static void cleanup_dir(void);

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench_store: FATAL: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	cleanup_dir();
	exit(1);
}

static void die_vg(const char *what, int rc, const vg_error *err)
{
	char buf[1024];
	die("%s: %s (%s)", what, vg_error_format(err, buf, sizeof(buf)),
	    vg_strerror(rc));
}

static void die_sql(sqlite3 *db, const char *what)
{
	die("sqlite: %s: %s", what, sqlite3_errmsg(db));
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		die("out of memory");
	return p;
}

/* splitmix64: tiny, fast and good enough for a data generator; unlike
 * rand() its sequence is the same on every libc. */
static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return mix64(*s);
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

static uint32_t rng_below(uint64_t *s, uint32_t n)
{
	return (uint32_t)(rng_unit(s) * n);
}

static double rng_normal(uint64_t *s)
{
	double u = rng_unit(s), v = rng_unit(s);
	return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

/* A stateless uniform for the values, so any point can be recomputed for
 * the ground truth without replaying a sequence. */
static double hash_unit(uint64_t seed, unsigned ind, uint32_t com, unsigned y)
{
	uint64_t h = mix64(seed ^ ((uint64_t)ind << 48) ^ ((uint64_t)y << 40) ^
			   (uint64_t)com * 0x9e37u);
	return (double)(mix64(h) >> 11) * 0x1.0p-53;
}

/* Round to a multiple of 1/256 (see the header comment). */
static double q256(double x)
{
	return nearbyint(x * 256.0) / 256.0;
}

/* ---- the generator ---------------------------------------------------- */

/* Split `total` into n parts proportional to w[] (largest remainder), each
 * at least `min` and at most `max`. */
static void apportion(const double *w, size_t n, uint32_t total, uint32_t min,
		      uint32_t max, uint32_t *out)
{
	double wsum = 0;
	for (size_t i = 0; i < n; i++)
		wsum += w[i];
	uint32_t given = 0;
	for (size_t i = 0; i < n; i++) {
		double share = (double)(total - min * n) * w[i] / wsum;
		out[i] = min + (uint32_t)share;
		if (out[i] > max)
			out[i] = max;
		given += out[i];
	}
	/* Hand out the rest one by one to the heaviest parts that have room;
	 * deterministic, and the rest is at most n. */
	while (given < total) {
		size_t best = n;
		double bestw = -1;
		for (size_t i = 0; i < n; i++) {
			double deficit =
			    (double)(total - min * n) * w[i] / wsum + min -
			    out[i];
			if (out[i] < max && deficit > bestw) {
				bestw = deficit;
				best = i;
			}
		}
		if (best == n)
			die("apportion: %u does not fit", total);
		out[best]++;
		given++;
	}
}

/* The perimeters: each starts at a random metropolitan département and
 * draws PERIM_SIZE distinct communes from it and the next ones in code
 * order (as many as needed for a pool of at least twice PERIM_SIZE), so
 * every perimeter crosses département borders, as a CLS or a bassin de
 * vie does. Its own random sequence: the rest of the data set does not
 * depend on it. */
static void perimeters_build(dataset *ds)
{
	uint64_t rs = ds->seed ^ 0x9e41e7e5ull;
	if (ds->ncom < PERIM_SIZE)
		die("perimeters: %" PRIu32 " communes, fewer than %u", ds->ncom,
		    PERIM_SIZE);
	for (unsigned p = 0; p < NPERIM; p++) {
		snprintf(ds->perim_code[p], NPERIM_CODE, "cls:bench-%02u",
			 p + 1);
		unsigned d0 = rng_below(&rs, 95), d1 = d0 + 1;
		uint32_t lo = ds->dep[d0].com0;
		while (d1 < NDEP &&
		       (d1 - d0 < 2 || ds->dep[d1].com0 - lo < 2 * PERIM_SIZE))
			d1++;
		uint32_t hi = d1 < NDEP ? ds->dep[d1].com0 : ds->ncom;
		if (hi - lo < PERIM_SIZE) /* tiny --scale: widen backwards */
			lo = hi - PERIM_SIZE;
		bool seen_dep[NDEP] = {false};
		ds->perim_ndep[p] = 0;
		for (unsigned m = 0; m < PERIM_SIZE; m++) {
			/* The first two members come from d0 and d0 + 1: the
			 * perimeter crosses at least one border. */
			uint32_t a = lo, n = hi - lo, c;
			if (m < 2) {
				a = ds->dep[d0 + m].com0;
				n = ds->dep[d0 + m].ncom;
			}
			bool dup;
			do {
				c = a + rng_below(&rs, n);
				dup = false;
				for (unsigned j = 0; j < m; j++)
					dup = dup || ds->perim[p][j] == c;
			} while (dup);
			ds->perim[p][m] = c;
			if (!seen_dep[ds->com[c].dep]) {
				seen_dep[ds->com[c].dep] = true;
				ds->perim_ndep[p]++;
			}
		}
	}
}

static void dataset_build(dataset *ds, double scale, uint64_t seed)
{
	uint64_t rs = seed;
	memset(ds, 0, sizeof(*ds));
	ds->seed = seed;

	for (unsigned r = 0; r < NREG; r++)
		snprintf(ds->reg[r], sizeof(ds->reg[r]), "reg:%s",
			 reg_codes[r]);

	/* Départements: 01-95 without 20, plus 2A/2B (96 metropolitan, in
	 * code order), then the five overseas ones. Metropolitan régions get
	 * contiguous runs of départements, as real ones roughly do. */
	unsigned nd = 0;
	for (unsigned n = 1; n <= 95; n++) {
		if (n == 20) {
			snprintf(ds->dep[nd++].code, 12, "dep:2A");
			snprintf(ds->dep[nd++].code, 12, "dep:2B");
			continue;
		}
		snprintf(ds->dep[nd++].code, 12, "dep:%02u", n);
	}
	for (unsigned d = 0; d < 96; d++)
		ds->dep[d].reg = d * NREG_METRO / 96;
	for (unsigned i = 0; i < 5; i++) {
		snprintf(ds->dep[96 + i].code, 12, "dep:%s", dom_codes[i]);
		ds->dep[96 + i].reg = NREG_METRO + i;
	}

	/* Communes per département: overseas ones keep their real counts
	 * (scaled), metropolitan ones share the rest with uneven weights. */
	uint32_t ncom = (uint32_t)lround(FULL_COMMUNES * scale);
	uint32_t ndom = 0;
	for (unsigned i = 0; i < 5; i++) {
		uint32_t c = (uint32_t)lround(dom_communes[i] * scale);
		ds->dep[96 + i].ncom = c ? c : 1;
		ndom += ds->dep[96 + i].ncom;
	}
	if (ncom < ndom + 96)
		ncom = ndom + 96;
	double w[96];
	uint32_t cnt[96];
	for (unsigned d = 0; d < 96; d++)
		w[d] = 0.35 + 1.3 * rng_unit(&rs);
	/* 999: commune numbers are three digits after a two-character
	 * département code. */
	apportion(w, 96, ncom - ndom, 1, 999, cnt);
	for (unsigned d = 0; d < 96; d++)
		ds->dep[d].ncom = cnt[d];
	ds->ncom = ncom;
	ds->com = xcalloc(ncom, sizeof(commune));

	uint32_t nepci_target = (uint32_t)lround(FULL_EPCI * scale);
	ds->epci = xcalloc(nepci_target + NDEP, sizeof(epci));
	uint32_t ci = 0, ei = 0;
	for (unsigned d = 0; d < NDEP; d++) {
		dept *dp = &ds->dep[d];
		const char *dc = dp->code + 4;
		bool dom = strlen(dc) == 3;
		unsigned maxnum = dom ? 99 : 999;
		/* Leave gaps in the numbering where there is room, as real
		 * codes have (merged or renumbered communes). */
		double gap = (double)(maxnum - dp->ncom) / (2.0 * dp->ncom);
		if (gap > 0.5)
			gap = 0.5;
		if (gap < 0)
			gap = 0;
		dp->com0 = ci;
		unsigned num = 0;
		for (uint32_t k = 0; k < dp->ncom; k++, ci++) {
			num += 1 + (rng_unit(&rs) < gap);
			commune *c = &ds->com[ci];
			snprintf(c->code, sizeof(c->code), "com:%s%0*u", dc,
				 dom ? 2 : 3, num);
			c->dep = d;
			/* Log-normal population: median ~550, a long tail up
			 * to a couple of million, like French communes. */
			double p = 550.0 * exp(1.5 * rng_normal(&rs));
			if (p < 5)
				p = 5;
			if (p > 2.2e6)
				p = 2.2e6;
			c->p0 = p;
			c->growth = -0.012 + 0.030 * rng_unit(&rs);
			c->s75 = 0.05 + 0.08 * rng_unit(&rs);
		}

		/* EPCI: proportional to the communes, at least one each. */
		uint32_t ne =
		    (uint32_t)lround((double)dp->ncom * nepci_target / ncom);
		if (ne < 1)
			ne = 1;
		if (ne > dp->ncom)
			ne = dp->ncom;
		dp->epci0 = ei;
		dp->nepci = ne;
		for (uint32_t k = 0; k < ne; k++, ei++) {
			snprintf(ds->epci[ei].code, sizeof(ds->epci[ei].code),
				 "epci:2000%05u", (unsigned)ei + 1);
			ds->epci[ei].dep = d;
		}
		/* Skewed EPCI sizes (a few big communautés, many small
		 * ones), and members drawn at random, so an EPCI is not a run
		 * of consecutive commune codes. */
		double *ew = xcalloc(ne, sizeof(double));
		uint32_t *esz = xcalloc(ne, sizeof(uint32_t));
		uint32_t *perm = xcalloc(dp->ncom, sizeof(uint32_t));
		for (uint32_t k = 0; k < ne; k++)
			ew[k] = pow(1.0 - rng_unit(&rs), -0.9);
		apportion(ew, ne, dp->ncom, 1, dp->ncom, esz);
		for (uint32_t k = 0; k < dp->ncom; k++)
			perm[k] = k;
		for (uint32_t k = dp->ncom; k > 1; k--) {
			uint32_t j = rng_below(&rs, k);
			uint32_t t = perm[k - 1];
			perm[k - 1] = perm[j];
			perm[j] = t;
		}
		uint32_t pos = 0;
		for (uint32_t k = 0; k < ne; k++)
			for (uint32_t m = 0; m < esz[k]; m++)
				ds->com[dp->com0 + perm[pos++]].epci =
				    dp->epci0 + k;
		free(ew);
		free(esz);
		free(perm);
	}
	ds->nepci = ei;

	for (unsigned y = 0; y < NYEAR; y++) {
		char s[8];
		int n = snprintf(s, sizeof(s), "%u", YEAR0 + y);
		if (vg_period_parse(s, (size_t)n, &ds->period[y]) != 0)
			die("vg_period_parse(%s) failed", s);
		if (y && ds->period[y] <= ds->period[y - 1])
			die("period encoding is not increasing at %s", s);
	}
	ds->npoints = (uint64_t)ds->ncom * NIND * NYEAR;
	perimeters_build(ds);
}

static void dataset_free(dataset *ds)
{
	free(ds->com);
	free(ds->epci);
}

/* Year index of an encoded period, NYEAR + 1000 when it is none of ours
 * (which then shows up as a checksum difference). */
static unsigned year_index(const dataset *ds, vg_period p)
{
	unsigned lo = 0, hi = NYEAR;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (ds->period[mid] < p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < NYEAR && ds->period[lo] == p ? lo : NYEAR + 1000;
}

static double pop_of(const dataset *ds, uint32_t c, unsigned y)
{
	const commune *cm = &ds->com[c];
	double p = nearbyint(cm->p0 * (1.0 + cm->growth * ((double)y - 12)));
	return p < 1 ? 1 : p;
}

static double pop75_of(const dataset *ds, uint32_t c, unsigned y)
{
	return nearbyint(pop_of(ds, c, y) *
			 (ds->com[c].s75 + 0.0015 * (double)y));
}

static double gp_of(const dataset *ds, uint32_t c, unsigned y)
{
	return floor(pop_of(ds, c, y) / 1000.0 *
		     (0.4 + 1.2 * hash_unit(ds->seed, I_GP, c, y)));
}

/* The value and status of one point: a pure function of (indicator,
 * commune, year), so the ground truth is recomputed, never stored. */
static void value_of(const dataset *ds, unsigned ind, uint32_t c, unsigned y,
		     double *v, vg_status *st)
{
	double u = hash_unit(ds->seed, ind, c, y);
	double pop = pop_of(ds, c, y);
	*st = VG_STATUS_OK;
	switch (ind) {
	case I_POP: *v = pop; break;
	case I_POP75: *v = pop75_of(ds, c, y); break;
	case I_BIRTHS:
		*v = nearbyint(pop * (0.008 + 0.006 * u));
		/* The last two years are provisional, as INSEE's are. */
		if (y >= NYEAR - 2)
			*st = VG_STATUS_PROVISIONAL;
		break;
	case I_DEATHS: *v = nearbyint(pop * (0.007 + 0.006 * u)); break;
	case I_GP: *v = gp_of(ds, c, y); break;
	case I_ALD: *v = nearbyint(pop * (0.15 + 0.10 * u)); break;
	case I_GP_DENSITY: *v = q256(gp_of(ds, c, y) * 1e5 / pop); break;
	case I_SHARE75: *v = q256(100.0 * pop75_of(ds, c, y) / pop); break;
	case I_APL: *v = q256(0.5 + 5.5 * u); break;
	default: /* I_POVERTY */
		/* Secret statistique: not published for small communes. */
		if (pop < 200) {
			*v = NAN;
			*st = VG_STATUS_SUPPRESSED;
		} else {
			*v = q256(6.0 + 20.0 * u);
		}
		break;
	}
}

/* ---- checksums -------------------------------------------------------- */

/* What a query returned, reduced to numbers both engines must agree on:
 * how many points, how many without a value, the statuses, the values and
 * the values weighted by their year (which catches a value filed under the
 * wrong period). */
typedef struct check {
	uint64_t n, nnan, stsum;
	double sum, wsum;
} check;

static void check_add(check *k, unsigned yidx, double v, int st, bool null)
{
	k->n++;
	k->stsum += (uint64_t)st;
	if (null || isnan(v)) {
		k->nnan++;
		return;
	}
	k->sum += v;
	k->wsum += (double)(yidx + 1) * v;
}

static bool check_eq(const check *a, const check *b)
{
	return a->n == b->n && a->nnan == b->nnan && a->stsum == b->stsum &&
	       a->sum == b->sum && a->wsum == b->wsum;
}

static void check_print(FILE *f, const char *who, const check *k)
{
	fprintf(f,
		"    %-7s n=%" PRIu64 " nan=%" PRIu64 " status_sum=%" PRIu64
		" sum=%.17g wsum=%.17g\n",
		who, k->n, k->nnan, k->stsum, k->sum, k->wsum);
}

/* ---- the workload ----------------------------------------------------- */

typedef enum qkind { Q_SERIES, Q_SLICE, Q_WITHIN } qkind;

typedef struct query {
	unsigned ind, year;
	uint32_t com; /* Q_SERIES */
	uint32_t dep; /* Q_WITHIN */
} query;

typedef struct workload {
	query *q[3];
	size_t n[3];
	check *truth[3];
} workload;

static const char *const qkind_name[3] = {"series", "slice com",
					  "slice within dep"};

static check truth_of(const dataset *ds, qkind k, const query *q)
{
	check c = {0};
	double v;
	vg_status st;
	if (k == Q_SERIES) {
		for (unsigned y = 0; y < NYEAR; y++) {
			value_of(ds, q->ind, q->com, y, &v, &st);
			check_add(&c, y, v, (int)st, false);
		}
		return c;
	}
	uint32_t lo = 0, hi = ds->ncom;
	if (k == Q_WITHIN) {
		lo = ds->dep[q->dep].com0;
		hi = lo + ds->dep[q->dep].ncom;
	}
	for (uint32_t i = lo; i < hi; i++) {
		value_of(ds, q->ind, i, q->year, &v, &st);
		check_add(&c, q->year, v, (int)st, false);
	}
	return c;
}

static void workload_build(workload *w, const dataset *ds, const size_t n[3])
{
	/* Its own seed: the queries do not depend on how many random numbers
	 * the generator drew. */
	uint64_t rs = ds->seed ^ 0x51ce5eedull;
	for (int k = 0; k < 3; k++) {
		w->n[k] = n[k];
		w->q[k] = xcalloc(n[k], sizeof(query));
		w->truth[k] = xcalloc(n[k], sizeof(check));
		for (size_t i = 0; i < n[k]; i++) {
			query *q = &w->q[k][i];
			q->ind = rng_below(&rs, NIND);
			q->year = rng_below(&rs, NYEAR);
			q->com = rng_below(&rs, ds->ncom);
			q->dep = rng_below(&rs, NDEP);
			w->truth[k][i] = truth_of(ds, (qkind)k, q);
		}
	}
}

static void workload_free(workload *w)
{
	for (int k = 0; k < 3; k++) {
		free(w->q[k]);
		free(w->truth[k]);
	}
}

/* ---- the aggregation workload ----------------------------------------- */

/* Aggregations with the indicators' rules, from the communes (the leaves)
 * up: `population` (sum) to every EPCI, to every département, over one
 * perimeter; `gp_density` (ratio(gp_count, population, 100000)) to every
 * département. One query = one indicator, one year, one whole level (or
 * one perimeter); the query lists cycle through the 25 years (and the
 * perimeters). */
typedef enum akind { A_EPCI, A_DEP, A_PERIM, A_RATIO, NAKIND } akind;

static const char *const akind_name[NAKIND] = {
    "aggregate population to EPCI", "aggregate population to dep",
    "aggregate population over a perimeter", "ratio gp_density to dep"};

#define GP_DENSITY_SCALE 100000.0 /* the scale of gp_density's rule */
#define RATIO_RTOL	 1e-12	  /* relative tolerance of ratio checks */

/* One computed value, with what the engine says it covers. */
typedef struct agg_res {
	double v;	  /* NaN: none */
	uint32_t members; /* leaves within the target */
	uint32_t used;	  /* leaves whose value entered the result */
	uint32_t reports; /* times the engine reported this target */
	bool sane;	  /* Vigie: computed, status ok, no partial coverage */
} agg_res;

typedef struct aggwork {
	size_t nq[NAKIND];	/* queries of each kind */
	uint32_t ng[NAKIND];	/* targets per query */
	agg_res *truth[NAKIND]; /* nq * ng, query-major */
} aggwork;

static unsigned aggq_year(akind k, size_t i)
{
	return (unsigned)(k == A_PERIM ? i / NPERIM : i);
}

static unsigned aggq_perim(akind k, size_t i)
{
	return (unsigned)(i % NPERIM);
}

static const agg_res agg_res_none = {NAN, 0, 0, 0, false};

/* The ground truth, from the generator's own values: sums of integers
 * (population, GP counts), exact in a double whatever the order. */
static void aggwork_build(aggwork *aw, const dataset *ds)
{
	aw->nq[A_EPCI] = aw->nq[A_DEP] = aw->nq[A_RATIO] = NYEAR;
	aw->nq[A_PERIM] = (size_t)NPERIM * NYEAR;
	aw->ng[A_EPCI] = ds->nepci;
	aw->ng[A_DEP] = aw->ng[A_RATIO] = NDEP;
	aw->ng[A_PERIM] = 1;
	for (int k = 0; k < NAKIND; k++) {
		size_t n = aw->nq[k] * aw->ng[k];
		aw->truth[k] = xcalloc(n, sizeof(agg_res));
		for (size_t i = 0; i < n; i++) {
			aw->truth[k][i] = agg_res_none;
			aw->truth[k][i].v = 0;
			aw->truth[k][i].reports = 1;
			aw->truth[k][i].sane = true;
		}
	}
	double *pop = xcalloc(ds->ncom, sizeof(double));
	double num[NDEP], den[NDEP];
	for (unsigned y = 0; y < NYEAR; y++) {
		agg_res *te = aw->truth[A_EPCI] + (size_t)y * ds->nepci;
		agg_res *td = aw->truth[A_DEP] + (size_t)y * NDEP;
		agg_res *tr = aw->truth[A_RATIO] + (size_t)y * NDEP;
		memset(num, 0, sizeof(num));
		memset(den, 0, sizeof(den));
		for (uint32_t c = 0; c < ds->ncom; c++) {
			double gp;
			vg_status st, st2;
			value_of(ds, I_POP, c, y, &pop[c], &st);
			value_of(ds, I_GP, c, y, &gp, &st2);
			if (st != VG_STATUS_OK || st2 != VG_STATUS_OK)
				die("aggwork: unexpected status");
			const commune *cm = &ds->com[c];
			te[cm->epci].v += pop[c];
			te[cm->epci].members++;
			td[cm->dep].v += pop[c];
			td[cm->dep].members++;
			tr[cm->dep].members++;
			num[cm->dep] += gp;
			den[cm->dep] += pop[c];
		}
		/* The rule's arithmetic: sum(num) / sum(den) * scale. */
		for (unsigned d = 0; d < NDEP; d++)
			tr[d].v = num[d] / den[d] * GP_DENSITY_SCALE;
		for (unsigned p = 0; p < NPERIM; p++) {
			agg_res *tp =
			    aw->truth[A_PERIM] + (size_t)y * NPERIM + p;
			for (unsigned m = 0; m < PERIM_SIZE; m++)
				tp->v += pop[ds->perim[p][m]];
			tp->members = PERIM_SIZE;
		}
	}
	for (int k = 0; k < NAKIND; k++)
		for (size_t i = 0; i < aw->nq[k] * aw->ng[k]; i++)
			aw->truth[k][i].used = aw->truth[k][i].members;
	free(pop);
}

static void aggwork_free(aggwork *aw)
{
	for (int k = 0; k < NAKIND; k++)
		free(aw->truth[k]);
}

/* The reference of issue 3: the same sums done on a plain in-memory
 * array, no store at all. The population of every commune and year is a
 * double array, each commune's EPCI and département a precomputed group
 * index; an aggregation zeroes the group slots and adds each commune's
 * value into its slot. The limit any store could approach. */
typedef struct array_ref {
	uint32_t ncom;
	double *pop;	  /* NYEAR * ncom */
	uint32_t *grp[2]; /* A_EPCI, A_DEP: commune -> group index */
	double *slots;	  /* ds->nepci (>= NDEP) group sums */
	double aps[2];	  /* aggregations/s */
	agg_res *out[2];  /* results, as the engines' (values only) */
} array_ref;

static void array_ref_init(array_ref *ar, const dataset *ds, const aggwork *aw)
{
	memset(ar, 0, sizeof(*ar));
	ar->ncom = ds->ncom;
	ar->pop = xcalloc((size_t)NYEAR * ds->ncom, sizeof(double));
	for (int k = 0; k < 2; k++) {
		ar->grp[k] = xcalloc(ds->ncom, sizeof(uint32_t));
		ar->out[k] = xcalloc(aw->nq[k] * aw->ng[k], sizeof(agg_res));
	}
	ar->slots =
	    xcalloc(ds->nepci > NDEP ? ds->nepci : NDEP, sizeof(double));
	for (uint32_t c = 0; c < ds->ncom; c++) {
		ar->grp[A_EPCI][c] = ds->com[c].epci;
		ar->grp[A_DEP][c] = ds->com[c].dep;
		for (unsigned y = 0; y < NYEAR; y++) {
			vg_status st;
			value_of(ds, I_POP, c, y,
				 &ar->pop[(size_t)y * ds->ncom + c], &st);
		}
	}
}

static void array_ref_free(array_ref *ar)
{
	free(ar->pop);
	free(ar->slots);
	for (int k = 0; k < 2; k++) {
		free(ar->grp[k]);
		free(ar->out[k]);
	}
}

/* A cross-section of generated values, built outside the timed part so
 * the load figures measure the engines, not the generator. */
typedef struct xsection {
	double *v;
	vg_status *st;
	check truth;
} xsection;

static void xsection_fill(const dataset *ds, unsigned ind, unsigned y,
			  xsection *x)
{
	memset(&x->truth, 0, sizeof(x->truth));
	for (uint32_t c = 0; c < ds->ncom; c++) {
		value_of(ds, ind, c, y, &x->v[c], &x->st[c]);
		check_add(&x->truth, y, x->v[c], (int)x->st[c], false);
	}
}

/* Results of one engine. */
typedef struct results {
	bool ran;
	double setup_s, load_s;
	double scan_s[2]; /* first read after the load, then warm */
	double qps[3];
	double qps_range; /* SQLite: slice without the join */
	check *range_pq;  /* its per-query checks */
	double index_s;	  /* SQLite: index build, ANALYZE, checkpoint */
	double bytes_per_point, bytes_per_point_alloc;
	check scan[2];
	check *per_query[3];
	check *xs; /* warm-up: every (indicator, year) cross-section */
	uint64_t file_size, alloc_size;
	double aps[NAKIND];   /* aggregations/s */
	agg_res *agg[NAKIND]; /* their results, as aggwork.truth */
	uint64_t agg_stray;   /* results for territories not asked */
} results;

static void results_init(results *r, const workload *w, const aggwork *aw)
{
	memset(r, 0, sizeof(*r));
	for (int k = 0; k < NAKIND; k++)
		r->agg[k] = xcalloc(aw->nq[k] * aw->ng[k], sizeof(agg_res));
	for (int k = 0; k < 3; k++)
		r->per_query[k] = xcalloc(w->n[k], sizeof(check));
	r->xs = xcalloc(NIND * NYEAR, sizeof(check));
	r->range_pq = xcalloc(w->n[Q_SLICE], sizeof(check));
}

static void results_free(results *r)
{
	for (int k = 0; k < 3; k++)
		free(r->per_query[k]);
	for (int k = 0; k < NAKIND; k++)
		free(r->agg[k]);
	free(r->xs);
	free(r->range_pq);
}

/* Disk usage of a file: its size and the blocks really allocated (LMDB
 * and SQLite files may be sparse or preallocated). */
static void file_usage(const char *path, uint64_t *size, uint64_t *alloc)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		*size = *alloc = 0;
		return;
	}
	*size = (uint64_t)st.st_size;
	*alloc = (uint64_t)st.st_blocks * 512;
}

/* ---- Vigie ------------------------------------------------------------ */

typedef struct vig_cb_ctx {
	const dataset *ds;
	check *k;
} vig_cb_ctx;

static int vig_point_cb(void *ud, const vg_point *p)
{
	vig_cb_ctx *c = ud;
	check_add(c->k, year_index(c->ds, p->period), p->value, (int)p->status,
		  false);
	return 0;
}

static void vig_territory(vg_batch *b, const char *code, const char *level,
			  const char *name, const char *p1, const char *p2,
			  const char *p3)
{
	vg_territory t;
	vg_error err;
	int rc;
	memset(&t, 0, sizeof(t));
	snprintf(t.code, sizeof(t.code), "%s", code);
	snprintf(t.level, sizeof(t.level), "%s", level);
	snprintf(t.name, sizeof(t.name), "%s", name);
	const char *parents[3] = {p1, p2, p3};
	for (int i = 0; i < 3; i++)
		if (parents[i])
			snprintf(t.parents[t.nparents++], VG_CODE_MAX, "%s",
				 parents[i]);
	if ((rc = vg_batch_territory(b, &t, &err)) != 0)
		die_vg(code, rc, &err);
}

static void vig_setup(vg_store *s, const dataset *ds)
{
	vg_batch *b;
	vg_error err;
	vg_batch_opts bo = {.origin = "bench_store: territories"};
	int rc;
	char name[64];

	if ((rc = vg_batch_new(s, &bo, &b, &err)) != 0)
		die_vg("vg_batch_new", rc, &err);
	for (unsigned i = 0; i < NIND; i++) {
		vg_indicator ind;
		memset(&ind, 0, sizeof(ind));
		snprintf(ind.code, sizeof(ind.code), "%s", ind_defs[i].code);
		snprintf(ind.label, sizeof(ind.label), "%s", ind_defs[i].label);
		snprintf(ind.unit, sizeof(ind.unit), "%s", ind_defs[i].unit);
		snprintf(ind.source, sizeof(ind.source), "bench_store");
		ind.periodicity = VG_YEAR;
		ind.decimals = ind_defs[i].decimals;
		if ((rc = vg_agg_parse(ind_defs[i].agg, ind.code, &ind.agg,
				       &err)) != 0)
			die_vg(ind_defs[i].agg, rc, &err);
		if ((rc = vg_batch_indicator(b, &ind, &err)) != 0)
			die_vg(ind.code, rc, &err);
	}
	vig_territory(b, "fr", "fr", "France", NULL, NULL, NULL);
	for (unsigned r = 0; r < NREG; r++) {
		snprintf(name, sizeof(name), "Région %s", ds->reg[r] + 4);
		vig_territory(b, ds->reg[r], "reg", name, "fr", NULL, NULL);
	}
	for (unsigned d = 0; d < NDEP; d++) {
		snprintf(name, sizeof(name), "Département %s",
			 ds->dep[d].code + 4);
		vig_territory(b, ds->dep[d].code, "dep", name,
			      ds->reg[ds->dep[d].reg], NULL, NULL);
	}
	for (uint32_t e = 0; e < ds->nepci; e++) {
		const dept *dp = &ds->dep[ds->epci[e].dep];
		snprintf(name, sizeof(name), "EPCI %s", ds->epci[e].code + 5);
		vig_territory(b, ds->epci[e].code, "epci", name, dp->code,
			      ds->reg[dp->reg], NULL);
	}
	for (uint32_t c = 0; c < ds->ncom; c++) {
		const commune *cm = &ds->com[c];
		const dept *dp = &ds->dep[cm->dep];
		snprintf(name, sizeof(name), "Commune %s", cm->code + 4);
		vig_territory(b, cm->code, "com", name, ds->epci[cm->epci].code,
			      dp->code, ds->reg[dp->reg]);
	}
	/* The custom perimeters: level `cls`, no parent, their communes as
	 * members. */
	for (unsigned p = 0; p < NPERIM; p++) {
		vg_territory t;
		memset(&t, 0, sizeof(t));
		snprintf(t.code, sizeof(t.code), "%s", ds->perim_code[p]);
		snprintf(t.level, sizeof(t.level), "cls");
		snprintf(t.name, sizeof(t.name), "Perimeter %u", p + 1);
		t.members = xcalloc(PERIM_SIZE, VG_CODE_MAX);
		t.nmembers = PERIM_SIZE;
		for (unsigned m = 0; m < PERIM_SIZE; m++)
			snprintf(t.members[m], VG_CODE_MAX, "%s",
				 ds->com[ds->perim[p][m]].code);
		rc = vg_batch_territory(b, &t, &err);
		vg_territory_clear(&t);
		if (rc != 0)
			die_vg(ds->perim_code[p], rc, &err);
	}
	vg_commit_info info;
	if ((rc = vg_batch_commit(b, &info, &err)) != 0)
		die_vg("vg_batch_commit (territories)", rc, &err);
}

static void vig_load_xs(vg_store *s, const dataset *ds, unsigned ind,
			unsigned y, const xsection *x)
{
	vg_batch *b;
	vg_error err;
	vg_batch_opts bo = {.origin = "bench_store: points"};
	int rc;
	if ((rc = vg_batch_new(s, &bo, &b, &err)) != 0)
		die_vg("vg_batch_new", rc, &err);
	const char *icode = ind_defs[ind].code;
	for (uint32_t c = 0; c < ds->ncom; c++)
		if ((rc = vg_batch_point(b, icode, ds->com[c].code,
					 ds->period[y], x->v[c], x->st[c],
					 &err)) != 0)
			die_vg("vg_batch_point", rc, &err);
	vg_commit_info info;
	if ((rc = vg_batch_commit(b, &info, &err)) != 0)
		die_vg("vg_batch_commit (points)", rc, &err);
	if (info.points_new != ds->ncom)
		die("vigie: commit of %s %u: %" PRIu64
		    " new points, expected %" PRIu32,
		    icode, YEAR0 + y, info.points_new, ds->ncom);
}

/* One query, in its own read transaction, codes resolved inside: what a
 * request to the daemon costs in the store. */
static void vig_query(vg_store *s, const dataset *ds, qkind k, const query *q,
		      check *out)
{
	vg_read *r;
	vg_error err;
	uint32_t ind, terr;
	uint16_t lvl;
	int rc;
	vig_cb_ctx ctx = {ds, out};

	memset(out, 0, sizeof(*out));
	if ((rc = vg_read_begin(s, &r, &err)) != 0)
		die_vg("vg_read_begin", rc, &err);
	if ((rc = vg_read_indicator_id(r, ind_defs[q->ind].code, &ind, &err)) !=
	    0)
		die_vg("vg_read_indicator_id", rc, &err);
	switch (k) {
	case Q_SERIES:
		if ((rc = vg_read_territory_id(r, ds->com[q->com].code, &terr,
					       &err)) != 0)
			die_vg("vg_read_territory_id", rc, &err);
		rc = vg_read_series(r, ind, terr, 0, 0, VG_LATEST, vig_point_cb,
				    &ctx);
		break;
	case Q_SLICE:
	case Q_WITHIN:
		if ((rc = vg_read_level_id(r, "com", &lvl, &err)) != 0)
			die_vg("vg_read_level_id", rc, &err);
		terr = 0;
		if (k == Q_WITHIN &&
		    (rc = vg_read_territory_id(r, ds->dep[q->dep].code, &terr,
					       &err)) != 0)
			die_vg("vg_read_territory_id", rc, &err);
		rc = vg_read_slice(r, ind, ds->period[q->year], lvl, terr,
				   VG_LATEST, vig_point_cb, &ctx);
		break;
	}
	if (rc != 0)
		die("vigie: %s query failed: %s", qkind_name[k],
		    vg_strerror(rc));
	vg_read_end(r);
}

/* Aggregations on the Vigie side: what a request costs in the store, from
 * codes to values. vig_agg maps the store's territory ids back to the
 * generator's EPCI and département indices, to check the answers. */
typedef struct vig_agg {
	vg_store *s;
	uint32_t nid;
	uint32_t *idx[2]; /* A_EPCI, A_DEP: territory id -> index, or ~0 */
	uint64_t stray;	  /* answers for a territory nobody asked */
} vig_agg;

static void vig_agg_init(vig_agg *va, vg_store *s, const dataset *ds)
{
	vg_read *r;
	vg_error err;
	int rc;
	memset(va, 0, sizeof(*va));
	va->s = s;
	if ((rc = vg_read_begin(s, &r, &err)) != 0)
		die_vg("vg_read_begin", rc, &err);
	va->nid = vg_read_territory_max(r);
	for (int k = 0; k < 2; k++) {
		va->idx[k] = xcalloc(va->nid, sizeof(uint32_t));
		memset(va->idx[k], 0xff, va->nid * sizeof(uint32_t));
		uint32_t n = k == A_EPCI ? ds->nepci : NDEP;
		for (uint32_t i = 0; i < n; i++) {
			const char *code =
			    k == A_EPCI ? ds->epci[i].code : ds->dep[i].code;
			uint32_t id;
			if ((rc = vg_read_territory_id(r, code, &id, &err)) !=
			    0)
				die_vg("vg_read_territory_id", rc, &err);
			if (id >= va->nid)
				die("vigie: territory id %" PRIu32
				    " beyond territory_max",
				    id);
			va->idx[k][id] = i;
		}
	}
	vg_read_end(r);
}

static void vig_agg_free(vig_agg *va)
{
	for (int k = 0; k < 2; k++)
		free(va->idx[k]);
}

static void vig_agg_record(agg_res *o, const vg_agg_value *v)
{
	o->reports++;
	o->v = v->value;
	o->members = v->cov.members;
	o->used = v->cov.with_data;
	o->sane = v->source == VG_SOURCE_COMPUTED &&
		  v->status == VG_STATUS_OK && !v->cov.partial &&
		  v->cov.suppressed == 0 &&
		  /* ratio: the whole denominator entered the result */
		  (isnan(v->cov.weight_total) ||
		   v->cov.weight_total == v->cov.weight_covered);
}

typedef struct vig_agg_cbx {
	vig_agg *va;
	const uint32_t *idx;
	uint32_t ng;
	agg_res *out;
} vig_agg_cbx;

static int vig_agg_cb(void *ud, const vg_agg_value *v)
{
	vig_agg_cbx *x = ud;
	uint32_t i = v->terr < x->va->nid ? x->idx[v->terr] : UINT32_MAX;
	if (i >= x->ng) {
		x->va->stray++;
		return 0;
	}
	vig_agg_record(&x->out[i], v);
	return 0;
}

/* One aggregation query: its own read transaction, the indicator's
 * arrays loaded (vg_agg_ctx_new), every target computed, all freed. */
static void vig_agg_query(void *eng, const dataset *ds, const aggwork *aw,
			  akind k, size_t qi, agg_res *out)
{
	vig_agg *va = eng;
	vg_read *r;
	vg_agg_ctx *c;
	vg_error err;
	uint32_t ind, terr;
	uint16_t lvl;
	int rc;
	for (uint32_t g = 0; g < aw->ng[k]; g++)
		out[g] = agg_res_none;
	if ((rc = vg_read_begin(va->s, &r, &err)) != 0)
		die_vg("vg_read_begin", rc, &err);
	const char *icode = k == A_RATIO ? "gp_density" : "population";
	if ((rc = vg_read_indicator_id(r, icode, &ind, &err)) != 0)
		die_vg("vg_read_indicator_id", rc, &err);
	if ((rc = vg_agg_ctx_new(r, ind, ds->period[aggq_year(k, qi)],
				 VG_LATEST, &c, &err)) != 0)
		die_vg("vg_agg_ctx_new", rc, &err);
	if (k == A_PERIM) {
		vg_agg_value v;
		const char *pc = ds->perim_code[aggq_perim(k, qi)];
		if ((rc = vg_read_territory_id(r, pc, &terr, &err)) != 0)
			die_vg("vg_read_territory_id", rc, &err);
		if ((rc = vg_agg_value_at(c, terr, &v, &err)) != 0)
			die_vg("vg_agg_value_at", rc, &err);
		vig_agg_record(&out[0], &v);
	} else {
		const char *lname = k == A_EPCI ? "epci" : "dep";
		if ((rc = vg_read_level_id(r, lname, &lvl, &err)) != 0)
			die_vg("vg_read_level_id", rc, &err);
		vig_agg_cbx x = {va, va->idx[k == A_EPCI ? A_EPCI : A_DEP],
				 aw->ng[k], out};
		if ((rc = vg_aggregate_level(c, lvl, 0, vig_agg_cb, &x,
					     &err)) != 0)
			die_vg("vg_aggregate_level", rc, &err);
	}
	vg_agg_ctx_free(c);
	vg_read_end(r);
}

/* ---- SQLite ----------------------------------------------------------- */

/* What a competent SQLite user would write: integer ids, a WITHOUT ROWID
 * table clustered on the series order, the parents flattened into
 * columns (the hierarchy is fixed), and, after the bulk load, a covering
 * index in cross-section order so a slice is one range scan with no
 * lookup back into the table. */
static const char *const sql_schema =
    "CREATE TABLE indicators(id INTEGER PRIMARY KEY, code TEXT NOT NULL "
    "UNIQUE, label TEXT, unit TEXT, periodicity TEXT, agg TEXT);"
    "CREATE TABLE territories(id INTEGER PRIMARY KEY, code TEXT NOT NULL "
    "UNIQUE, level TEXT NOT NULL, name TEXT, epci INTEGER, dep INTEGER, "
    "reg INTEGER);"
    "CREATE TABLE levels(name TEXT PRIMARY KEY, lo INTEGER, hi INTEGER) "
    "WITHOUT ROWID;"
    "CREATE TABLE vintages(id INTEGER PRIMARY KEY, time INTEGER, "
    "origin TEXT);"
    "CREATE TABLE points(ind INTEGER, terr INTEGER, period INTEGER, "
    "value REAL, status INTEGER, vintage INTEGER, "
    "PRIMARY KEY(ind, terr, period)) WITHOUT ROWID;"
    /* Custom perimeters: a territory of level 'cls' and its communes. */
    "CREATE TABLE members(perim INTEGER, terr INTEGER, "
    "PRIMARY KEY(perim, terr)) WITHOUT ROWID;";

static const char *const sql_indexes =
    "CREATE INDEX points_xs ON points(ind, period, terr, value, status);"
    "CREATE INDEX territories_level ON territories(level);"
    "CREATE INDEX territories_dep ON territories(dep, level);"
    "ANALYZE;";

static const char *const sql_q[3] = {
    "SELECT period, value, status FROM points "
    "WHERE ind = (SELECT id FROM indicators WHERE code = ?1) "
    "AND terr = (SELECT id FROM territories WHERE code = ?2) "
    "ORDER BY period",

    "SELECT p.period, p.value, p.status FROM points p "
    "JOIN territories t ON t.id = p.terr "
    "WHERE p.ind = (SELECT id FROM indicators WHERE code = ?1) "
    "AND p.period = ?2 AND t.level = ?3 ORDER BY p.terr",

    "SELECT p.period, p.value, p.status FROM territories t "
    "JOIN points p ON p.terr = t.id "
    "WHERE t.dep = (SELECT id FROM territories WHERE code = ?4) "
    "AND t.level = ?3 "
    "AND p.ind = (SELECT id FROM indicators WHERE code = ?1) "
    "AND p.period = ?2 ORDER BY t.id",
};

/* The slice again, without the join: territories are created level by
 * level, so each level is a range of ids (the `levels` table) and the
 * level filter becomes a range on the covering index. Faster, but it
 * holds only while no territory is added out of order, so it is reported
 * as SQLite's best case next to the plain join. */
static const char *const sql_q_range =
    "SELECT period, value, status FROM points "
    "WHERE ind = (SELECT id FROM indicators WHERE code = ?1) "
    "AND period = ?2 "
    "AND terr BETWEEN (SELECT lo FROM levels WHERE name = ?3) "
    "AND (SELECT hi FROM levels WHERE name = ?3) ORDER BY terr";

/* Aggregations, as an expert would write them: GROUP BY on the flattened
 * parent columns of `territories`, joined to the indicator's rows of the
 * period; the rule is applied in SQL, only the usable statuses (ok,
 * provisional, estimated) entering. The ratio is a ratio of sums, as the
 * rule says. Join order: left to itself the planner drives from
 * `territories` (territories_level / territories_dep, then one points_xs
 * seek per commune), 2-3x slower at full scale than reading the slice as
 * one range of points_xs and looking each commune up by its integer
 * primary key; CROSS JOIN is SQLite's documented way to impose that
 * order. */
static const char *const sql_agg[NAKIND] = {
    "SELECT t.epci, SUM(p.value), COUNT(p.value) FROM points p "
    "CROSS JOIN territories t ON t.id = p.terr "
    "WHERE p.ind = (SELECT id FROM indicators WHERE code = ?1) "
    "AND p.period = ?2 AND p.status <= 2 AND t.level = 'com' "
    "GROUP BY t.epci",

    "SELECT t.dep, SUM(p.value), COUNT(p.value) FROM points p "
    "CROSS JOIN territories t ON t.id = p.terr "
    "WHERE p.ind = (SELECT id FROM indicators WHERE code = ?1) "
    "AND p.period = ?2 AND p.status <= 2 AND t.level = 'com' "
    "GROUP BY t.dep",

    "SELECT m.perim, SUM(p.value), COUNT(p.value) FROM members m "
    "JOIN points p ON p.terr = m.terr "
    "WHERE m.perim = (SELECT id FROM territories WHERE code = ?3) "
    "AND p.ind = (SELECT id FROM indicators WHERE code = ?1) "
    "AND p.period = ?2 AND p.status <= 2",

    "SELECT t.dep, SUM(n.value) / SUM(d.value) * ?4, COUNT(*) "
    "FROM points n CROSS JOIN points d ON d.terr = n.terr "
    "CROSS JOIN territories t ON t.id = n.terr "
    "WHERE n.ind = (SELECT id FROM indicators WHERE code = ?1) "
    "AND n.period = ?2 AND n.status <= 2 "
    "AND d.ind = (SELECT id FROM indicators WHERE code = ?3) "
    "AND d.period = ?2 AND d.status <= 2 AND t.level = 'com' "
    "GROUP BY t.dep",
};

typedef struct sql_engine {
	sqlite3 *db;
	sqlite3_stmt *q[3];
	sqlite3_stmt *agg[NAKIND];
	uint64_t agg_stray; /* rows for a territory nobody asked */
	uint32_t perim_id0; /* territory id of perimeter 0; ids follow */
	sqlite3_stmt *q_range;
	bool use_range;	  /* Q_SLICE runs q_range */
	uint32_t com_id0; /* territory id of commune 0; ids follow */
} sql_engine;

static void sql_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		die("sqlite: %s: %s", sql, msg ? msg : "?");
}

static sqlite3_stmt *sql_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
			       NULL) != SQLITE_OK)
		die_sql(db, sql);
	return st;
}

static void sql_step_done(sqlite3 *db, sqlite3_stmt *st)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		die_sql(db, sqlite3_sql(st));
	sqlite3_reset(st);
}

static void sql_open(sql_engine *e, const char *path)
{
	memset(e, 0, sizeof(*e));
	if (sqlite3_open(path, &e->db) != SQLITE_OK)
		die("sqlite: open %s: %s", path, sqlite3_errmsg(e->db));
	/* WAL + NORMAL is the usual fast and safe-against-crash setting; a
	 * large page cache and a memory map because LMDB gets the whole OS
	 * page cache through its map, and SQLite should too. */
	sql_exec(e->db, "PRAGMA journal_mode=WAL;"
			"PRAGMA synchronous=NORMAL;"
			"PRAGMA cache_size=-262144;"
			"PRAGMA mmap_size=4294967296;"
			"PRAGMA temp_store=MEMORY;");
	sql_exec(e->db, sql_schema);
}

static void sql_close(sql_engine *e)
{
	for (int k = 0; k < 3; k++)
		sqlite3_finalize(e->q[k]);
	for (int k = 0; k < NAKIND; k++)
		sqlite3_finalize(e->agg[k]);
	sqlite3_finalize(e->q_range);
	if (e->db && sqlite3_close(e->db) != SQLITE_OK)
		die_sql(e->db, "close");
}

static void sql_territory(sqlite3 *db, sqlite3_stmt *st, int64_t id,
			  const char *code, const char *level, const char *name,
			  int64_t epci_id, int64_t dep_id, int64_t reg_id)
{
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, level, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, name, -1, SQLITE_TRANSIENT);
	int64_t par[3] = {epci_id, dep_id, reg_id};
	for (int i = 0; i < 3; i++) {
		if (par[i])
			sqlite3_bind_int64(st, 5 + i, par[i]);
		else
			sqlite3_bind_null(st, 5 + i);
	}
	sql_step_done(db, st);
}

/* Territory ids: fr 1, régions, départements, EPCI, communes, in that
 * order (the order the Vigie batch defines them in). */
static int64_t sql_reg_id(unsigned r)
{
	return 2 + (int64_t)r;
}

static int64_t sql_dep_id(unsigned d)
{
	return 2 + NREG + (int64_t)d;
}

static int64_t sql_epci_id(uint32_t e)
{
	return 2 + NREG + NDEP + (int64_t)e;
}

static void sql_setup(sql_engine *e, const dataset *ds)
{
	sqlite3 *db = e->db;
	char name[64];
	sql_exec(db, "BEGIN");
	sqlite3_stmt *si = sql_prepare(
	    db, "INSERT INTO indicators VALUES(?1, ?2, ?3, ?4, 'year', ?5)");
	for (unsigned i = 0; i < NIND; i++) {
		sqlite3_bind_int(si, 1, (int)i + 1);
		sqlite3_bind_text(si, 2, ind_defs[i].code, -1, SQLITE_STATIC);
		sqlite3_bind_text(si, 3, ind_defs[i].label, -1, SQLITE_STATIC);
		sqlite3_bind_text(si, 4, ind_defs[i].unit, -1, SQLITE_STATIC);
		sqlite3_bind_text(si, 5, ind_defs[i].agg, -1, SQLITE_STATIC);
		sql_step_done(db, si);
	}
	sqlite3_finalize(si);

	sqlite3_stmt *st = sql_prepare(
	    db, "INSERT INTO territories VALUES(?1, ?2, ?3, ?4, ?5, ?6, "
		"?7)");
	sql_territory(db, st, 1, "fr", "fr", "France", 0, 0, 0);
	for (unsigned r = 0; r < NREG; r++) {
		snprintf(name, sizeof(name), "Région %s", ds->reg[r] + 4);
		sql_territory(db, st, sql_reg_id(r), ds->reg[r], "reg", name, 0,
			      0, 0);
	}
	for (unsigned d = 0; d < NDEP; d++) {
		snprintf(name, sizeof(name), "Département %s",
			 ds->dep[d].code + 4);
		sql_territory(db, st, sql_dep_id(d), ds->dep[d].code, "dep",
			      name, 0, 0, sql_reg_id(ds->dep[d].reg));
	}
	for (uint32_t x = 0; x < ds->nepci; x++) {
		unsigned d = ds->epci[x].dep;
		snprintf(name, sizeof(name), "EPCI %s", ds->epci[x].code + 5);
		sql_territory(db, st, sql_epci_id(x), ds->epci[x].code, "epci",
			      name, 0, sql_dep_id(d),
			      sql_reg_id(ds->dep[d].reg));
	}
	e->com_id0 = (uint32_t)sql_epci_id(ds->nepci);
	for (uint32_t c = 0; c < ds->ncom; c++) {
		const commune *cm = &ds->com[c];
		snprintf(name, sizeof(name), "Commune %s", cm->code + 4);
		sql_territory(db, st, e->com_id0 + c, cm->code, "com", name,
			      sql_epci_id(cm->epci), sql_dep_id(cm->dep),
			      sql_reg_id(ds->dep[cm->dep].reg));
	}
	e->perim_id0 = e->com_id0 + ds->ncom;
	sqlite3_stmt *sm =
	    sql_prepare(db, "INSERT INTO members VALUES(?1, ?2)");
	for (unsigned p = 0; p < NPERIM; p++) {
		snprintf(name, sizeof(name), "Perimeter %u", p + 1);
		sql_territory(db, st, e->perim_id0 + p, ds->perim_code[p],
			      "cls", name, 0, 0, 0);
		for (unsigned m = 0; m < PERIM_SIZE; m++) {
			sqlite3_bind_int64(sm, 1, e->perim_id0 + p);
			sqlite3_bind_int64(
			    sm, 2, (int64_t)e->com_id0 + ds->perim[p][m]);
			sql_step_done(db, sm);
		}
	}
	sqlite3_finalize(sm);
	sqlite3_finalize(st);
	sql_exec(db, "INSERT INTO levels SELECT level, min(id), max(id) "
		     "FROM territories GROUP BY level");
	sql_exec(db, "COMMIT");
}

static void sql_load_xs(sql_engine *e, const dataset *ds, sqlite3_stmt *ins,
			sqlite3_stmt *vint, unsigned ind, unsigned y,
			int64_t vintage, const xsection *x)
{
	sqlite3 *db = e->db;
	sql_exec(db, "BEGIN");
	sqlite3_bind_int64(vint, 1, vintage);
	sqlite3_bind_int64(vint, 2, (int64_t)time(NULL));
	sql_step_done(db, vint);
	sqlite3_bind_int(ins, 1, (int)ind + 1);
	sqlite3_bind_int64(ins, 3, ds->period[y]);
	sqlite3_bind_int64(ins, 6, vintage);
	for (uint32_t c = 0; c < ds->ncom; c++) {
		sqlite3_bind_int64(ins, 2, (int64_t)e->com_id0 + c);
		/* SQLite has no NaN: a suppressed value is NULL. */
		if (isnan(x->v[c]))
			sqlite3_bind_null(ins, 4);
		else
			sqlite3_bind_double(ins, 4, x->v[c]);
		sqlite3_bind_int(ins, 5, (int)x->st[c]);
		sql_step_done(db, ins);
	}
	sql_exec(db, "COMMIT");
}

static void sql_rows(sql_engine *e, const dataset *ds, sqlite3_stmt *st,
		     check *out)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		vg_period p = (vg_period)sqlite3_column_int64(st, 0);
		bool null = sqlite3_column_type(st, 1) == SQLITE_NULL;
		check_add(out, year_index(ds, p), sqlite3_column_double(st, 1),
			  sqlite3_column_int(st, 2), null);
	}
	if (rc != SQLITE_DONE)
		die_sql(e->db, sqlite3_sql(st));
	sqlite3_reset(st);
}

static void sql_query(sql_engine *e, const dataset *ds, qkind k, const query *q,
		      check *out)
{
	sqlite3_stmt *st = e->q[k];
	if (k == Q_SLICE && e->use_range)
		st = e->q_range;
	memset(out, 0, sizeof(*out));
	sqlite3_bind_text(st, 1, ind_defs[q->ind].code, -1, SQLITE_STATIC);
	if (k == Q_SERIES) {
		sqlite3_bind_text(st, 2, ds->com[q->com].code, -1,
				  SQLITE_STATIC);
	} else {
		sqlite3_bind_int64(st, 2, ds->period[q->year]);
		sqlite3_bind_text(st, 3, "com", -1, SQLITE_STATIC);
		if (k == Q_WITHIN)
			sqlite3_bind_text(st, 4, ds->dep[q->dep].code, -1,
					  SQLITE_STATIC);
	}
	sql_rows(e, ds, st, out);
}

static void sql_agg_query(void *eng, const dataset *ds, const aggwork *aw,
			  akind k, size_t qi, agg_res *out)
{
	sql_engine *e = eng;
	sqlite3_stmt *st = e->agg[k];
	int rc;
	for (uint32_t g = 0; g < aw->ng[k]; g++)
		out[g] = agg_res_none;
	sqlite3_bind_text(st, 1, k == A_RATIO ? "gp_count" : "population", -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, ds->period[aggq_year(k, qi)]);
	if (k == A_PERIM)
		sqlite3_bind_text(st, 3, ds->perim_code[aggq_perim(k, qi)], -1,
				  SQLITE_STATIC);
	if (k == A_RATIO) {
		sqlite3_bind_text(st, 3, "population", -1, SQLITE_STATIC);
		sqlite3_bind_double(st, 4, GP_DENSITY_SCALE);
	}
	int64_t id0 = k == A_EPCI    ? sql_epci_id(0)
		      : k == A_PERIM ? (int64_t)e->perim_id0 + aggq_perim(k, qi)
				     : sql_dep_id(0);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* An aggregate without GROUP BY over no row is one row of
		 * NULLs: no answer. */
		if (sqlite3_column_type(st, 0) == SQLITE_NULL)
			continue;
		int64_t g = sqlite3_column_int64(st, 0) - id0;
		if (g < 0 || g >= (int64_t)aw->ng[k]) {
			e->agg_stray++;
			continue;
		}
		agg_res *o = &out[g];
		o->reports++;
		o->v = sqlite3_column_type(st, 1) == SQLITE_NULL
			   ? NAN
			   : sqlite3_column_double(st, 1);
		o->members = o->used = (uint32_t)sqlite3_column_int64(st, 2);
		o->sane = true;
	}
	if (rc != SQLITE_DONE)
		die_sql(e->db, sqlite3_sql(st));
	sqlite3_reset(st);
}

/* The in-memory array reference (see array_ref): no store, no codes. */
static void array_agg_query(void *eng, const dataset *ds, const aggwork *aw,
			    akind k, size_t qi, agg_res *out)
{
	array_ref *ar = eng;
	uint32_t ng = aw->ng[k];
	double *slots = ar->slots;
	const double *v = ar->pop + (size_t)aggq_year(k, qi) * ar->ncom;
	const uint32_t *grp = ar->grp[k];
	memset(slots, 0, ng * sizeof(double));
	for (uint32_t c = 0; c < ar->ncom; c++)
		slots[grp[c]] += v[c];
	for (uint32_t g = 0; g < ng; g++)
		out[g].v = slots[g];
}

/* ---- running both ----------------------------------------------------- */

typedef struct options {
	double scale;
	const char *dir;
	bool keep;
	bool run_vigie, run_sqlite;
	bool verbose;
	uint64_t seed;
	size_t n[3];
} options;

static char g_dir[4096];      /* the data directory */
static bool g_dir_is_ours;    /* made by mkdtemp: remove it whole */
static char g_vig_dir[4200];  /* <dir>/vigie */
static char g_sql_path[4200]; /* <dir>/bench.sqlite */

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	if (remove(path) != 0)
		fprintf(stderr, "bench_store: cannot remove %s: %s\n", path,
			strerror(errno));
	return 0;
}

static void rm_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) == 0)
		nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup_dir(void)
{
	if (!g_cleanup_dir)
		return;
	const char *d = g_cleanup_dir;
	g_cleanup_dir = NULL;
	if (g_keep) {
		fprintf(stderr, "bench_store: data kept in %s\n", d);
		return;
	}
	/* A directory given with --dir is the user's: remove only what this
	 * program made in it. */
	if (g_dir_is_ours) {
		rm_tree(d);
		return;
	}
	rm_tree(g_vig_dir);
	const char *sfx[3] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		char p[4300];
		snprintf(p, sizeof(p), "%s%s", g_sql_path, sfx[i]);
		unlink(p);
	}
}

static int g_mismatches;

/* Compare one engine's checksums with the ground truth and, when both ran,
 * with each other; print the first few differences in full. */
static void verify(const char *what, size_t n, const check *truth,
		   const check *vig, const check *sql,
		   const char *(*describe)(size_t i, char *buf, size_t len,
					   const void *ud),
		   const void *ud)
{
	size_t bad = 0;
	for (size_t i = 0; i < n; i++) {
		bool ok = true;
		if (vig && !check_eq(vig + i, truth + i))
			ok = false;
		if (sql && !check_eq(sql + i, truth + i))
			ok = false;
		if (ok)
			continue;
		if (bad++ < 5) {
			char buf[160];
			fprintf(stderr, "MISMATCH in %s: %s\n", what,
				describe(i, buf, sizeof(buf), ud));
			check_print(stderr, "truth", truth + i);
			if (vig)
				check_print(stderr, "vigie", vig + i);
			if (sql)
				check_print(stderr, "sqlite", sql + i);
		}
	}
	if (bad) {
		fprintf(stderr, "MISMATCH in %s: %zu of %zu results differ\n",
			what, bad, n);
		g_mismatches += (int)bad;
	}
}

typedef struct describe_ctx {
	const dataset *ds;
	const query *q;
	qkind k;
} describe_ctx;

static const char *describe_query(size_t i, char *buf, size_t len,
				  const void *ud)
{
	const describe_ctx *c = ud;
	const query *q = &c->q[i];
	switch (c->k) {
	case Q_SERIES:
		snprintf(buf, len, "series #%zu %s %s", i,
			 ind_defs[q->ind].code, c->ds->com[q->com].code);
		break;
	case Q_SLICE:
		snprintf(buf, len, "slice #%zu %s %u level com", i,
			 ind_defs[q->ind].code, YEAR0 + q->year);
		break;
	case Q_WITHIN:
		snprintf(buf, len, "slice #%zu %s %u level com within %s", i,
			 ind_defs[q->ind].code, YEAR0 + q->year,
			 c->ds->dep[q->dep].code);
		break;
	}
	return buf;
}

static const char *describe_xs(size_t i, char *buf, size_t len, const void *ud)
{
	snprintf(buf, len, "warm-up slice %s %u level com",
		 ind_defs[i / NYEAR].code, YEAR0 + (unsigned)(i % NYEAR));
	return buf;
}

static const char *describe_scan(size_t i, char *buf, size_t len,
				 const void *ud)
{
	snprintf(buf, len, "full scan of every point");
	return buf;
}

/* A timed phase: the whole list of queries, repeated until it has run for
 * MIN_PHASE_S, so a fast engine is not timed over a few milliseconds
 * (noise) while a slow one is not made to run N times longer. The time is
 * split into PHASE_ROUNDS rounds that alternate between the engines. Every
 * pass gets the same answers, so the checksums of the last one are kept. */
#define MIN_PHASE_S  1.5
#define PHASE_ROUNDS 3

typedef void (*query_fn)(void *eng, const dataset *ds, qkind k, const query *q,
			 check *out);

typedef struct phase_acc {
	size_t done;
	double secs;
} phase_acc;

static void run_round(query_fn fn, void *eng, const dataset *ds,
		      const workload *w, qkind k, check *out, phase_acc *acc)
{
	double t0 = now_s(), dt;
	if (!w->n[k])
		return;
	do {
		for (size_t i = 0; i < w->n[k]; i++)
			fn(eng, ds, k, &w->q[k][i], &out[i]);
		acc->done += w->n[k];
		dt = now_s() - t0;
	} while (dt < MIN_PHASE_S / PHASE_ROUNDS);
	acc->secs += dt;
}

static double phase_qps(const phase_acc *a)
{
	return a->secs > 0 ? (double)a->done / a->secs : 0;
}

typedef void (*agg_fn)(void *eng, const dataset *ds, const aggwork *aw, akind k,
		       size_t qi, agg_res *out);

/* An aggregation phase's round: as run_round, over aggwork's list. */
static void run_agg_round(agg_fn fn, void *eng, const dataset *ds,
			  const aggwork *aw, akind k, agg_res *out,
			  phase_acc *acc)
{
	double t0 = now_s(), dt;
	do {
		for (size_t i = 0; i < aw->nq[k]; i++)
			fn(eng, ds, aw, k, i, out + i * aw->ng[k]);
		acc->done += aw->nq[k];
		dt = now_s() - t0;
	} while (dt < MIN_PHASE_S / PHASE_ROUNDS);
	acc->secs += dt;
}

static bool agg_value_eq(akind k, double got, double want)
{
	if (k != A_RATIO)
		return got == want; /* sums of integers: exact */
	return !isnan(got) && fabs(got - want) <= RATIO_RTOL * fabs(want);
}

static const char *agg_target_code(const dataset *ds, akind k, size_t qi,
				   uint32_t g)
{
	switch (k) {
	case A_EPCI: return ds->epci[g].code;
	case A_PERIM: return ds->perim_code[aggq_perim(k, qi)];
	default: return ds->dep[g].code;
	}
}

/* Compare one engine's aggregation results with the ground truth: the
 * value (== for sums, RATIO_RTOL for the ratio), and unless values_only
 * (the array reference) the coverage and the number of answers. */
static void verify_agg(const dataset *ds, const aggwork *aw, akind k,
		       const char *who, const agg_res *got, bool values_only)
{
	size_t bad = 0, n = aw->nq[k] * aw->ng[k];
	for (size_t i = 0; i < n; i++) {
		const agg_res *t = &aw->truth[k][i], *o = &got[i];
		bool ok = agg_value_eq(k, o->v, t->v);
		if (!values_only)
			ok = ok && o->members == t->members &&
			     o->used == t->used && o->reports == 1 && o->sane;
		if (ok)
			continue;
		if (bad++ < 5) {
			size_t qi = i / aw->ng[k];
			fprintf(stderr,
				"MISMATCH in %s (%s): %u, %s\n"
				"    truth   value=%.17g members=%" PRIu32 "\n"
				"    %-7s value=%.17g members=%" PRIu32
				" used=%" PRIu32 " answers=%" PRIu32
				" sane=%d\n",
				akind_name[k], who, YEAR0 + aggq_year(k, qi),
				agg_target_code(ds, k, qi,
						(uint32_t)(i % aw->ng[k])),
				t->v, t->members, who, o->v, o->members,
				o->used, o->reports, (int)o->sane);
		}
	}
	if (bad) {
		fprintf(stderr,
			"MISMATCH in %s (%s): %zu of %zu values differ\n",
			akind_name[k], who, bad, n);
		g_mismatches += (int)bad;
	}
}

static void vig_query_any(void *eng, const dataset *ds, qkind k, const query *q,
			  check *out)
{
	vig_query(eng, ds, k, q, out);
}

static void sql_query_any(void *eng, const dataset *ds, qkind k, const query *q,
			  check *out)
{
	sql_query(eng, ds, k, q, out);
}

static void vig_stats(const options *o, vg_store *s, const dataset *ds,
		      results *res)
{
	vg_store_stat st;
	vg_error err;
	int rc;
	if ((rc = vg_store_stat_get(s, &st, &err)) != 0)
		die_vg("vg_store_stat_get", rc, &err);
	if (st.points != ds->npoints) {
		fprintf(stderr,
			"MISMATCH: vg_store_stat says %" PRIu64
			" points, %" PRIu64 " were written\n",
			st.points, ds->npoints);
		g_mismatches++;
	}
	res->file_size = st.file_size;
	res->bytes_per_point = (double)st.used / (double)ds->npoints;
	uint64_t fsz, alloc;
	char path[4300];
	snprintf(path, sizeof(path), "%s/data.mdb", g_vig_dir);
	file_usage(path, &fsz, &alloc);
	res->alloc_size = alloc;
	res->bytes_per_point_alloc = (double)alloc / (double)ds->npoints;
	if (o->verbose)
		fprintf(stderr,
			"vigie: map %" PRIu64 " used %" PRIu64 " file %" PRIu64
			" allocated %" PRIu64 " points %" PRIu64
			" history %" PRIu64 " blocks %" PRIu64
			" territories %" PRIu64 " vintages %" PRIu64
			" map grows %u\n",
			st.map_size, st.used, st.file_size, alloc, st.points,
			st.history, st.blocks, st.territories, st.vintages,
			st.map_grows);
}

/* Warm-up: every point twice (both scans timed: the first one pays for
 * mapping the pages, the second is the warm figure), every France-wide
 * cross-section once, all checked against the generator. */
static void vig_warm(vg_store *s, const dataset *ds, results *res)
{
	vg_error err;
	int rc;
	for (int pass = 0; pass < 2; pass++) {
		vg_read *r;
		if ((rc = vg_read_begin(s, &r, &err)) != 0)
			die_vg("vg_read_begin", rc, &err);
		vig_cb_ctx ctx = {ds, &res->scan[pass]};
		double t0 = now_s();
		if ((rc = vg_read_points(r, 0, vig_point_cb, &ctx)) != 0)
			die("vg_read_points: %s", vg_strerror(rc));
		res->scan_s[pass] = now_s() - t0;
		vg_read_end(r);
	}
	for (unsigned i = 0; i < NIND; i++)
		for (unsigned y = 0; y < NYEAR; y++) {
			query q = {.ind = i, .year = y};
			vig_query(s, ds, Q_SLICE, &q, &res->xs[i * NYEAR + y]);
		}
}

static void sql_warm(sql_engine *e, const dataset *ds, results *res)
{
	sqlite3_stmt *scan =
	    sql_prepare(e->db, "SELECT period, value, status FROM points");
	for (int pass = 0; pass < 2; pass++) {
		double t0 = now_s();
		sql_rows(e, ds, scan, &res->scan[pass]);
		res->scan_s[pass] = now_s() - t0;
	}
	sqlite3_finalize(scan);
	for (unsigned i = 0; i < NIND; i++)
		for (unsigned y = 0; y < NYEAR; y++) {
			query q = {.ind = i, .year = y};
			sql_query(e, ds, Q_SLICE, &q, &res->xs[i * NYEAR + y]);
		}
}

static void sql_plans(sql_engine *e)
{
	for (int k = 0; k < NAKIND; k++) {
		char sql[2048];
		snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s", sql_agg[k]);
		sqlite3_stmt *st = sql_prepare(e->db, sql);
		fprintf(stderr, "sqlite plan, %s:\n", akind_name[k]);
		while (sqlite3_step(st) == SQLITE_ROW)
			fprintf(stderr, "    %s\n",
				(const char *)sqlite3_column_text(st, 3));
		sqlite3_finalize(st);
	}
	for (int k = 0; k < 4; k++) {
		char sql[1024];
		snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s",
			 k < 3 ? sql_q[k] : sql_q_range);
		sqlite3_stmt *st = sql_prepare(e->db, sql);
		fprintf(stderr, "sqlite plan, %s:\n",
			k < 3 ? qkind_name[k] : "slice by id range");
		while (sqlite3_step(st) == SQLITE_ROW)
			fprintf(stderr, "    %s\n",
				(const char *)sqlite3_column_text(st, 3));
		sqlite3_finalize(st);
	}
}

/* Both engines in one run, interleaved at every step (each load batch,
 * each round of queries) so that a burst of activity elsewhere on the
 * machine, or the page cache filling up, weighs on both alike. */
static void run(const options *o, const dataset *ds, const workload *w,
		const aggwork *aw, array_ref *ar, results *rv, results *rs)
{
	vg_store *s = NULL;
	vg_error err;
	vg_store_opts so = {0};
	sql_engine e;
	sqlite3_stmt *ins = NULL, *vint = NULL;
	int rc;
	double t0;

	rv->ran = o->run_vigie;
	rs->ran = o->run_sqlite;
	if (rv->ran) {
		if ((rc = vg_store_open(&s, g_vig_dir, &so, &err)) != 0)
			die_vg("vg_store_open", rc, &err);
		t0 = now_s();
		vig_setup(s, ds);
		rv->setup_s = now_s() - t0;
	}
	if (rs->ran) {
		sql_open(&e, g_sql_path);
		t0 = now_s();
		sql_setup(&e, ds);
		rs->setup_s = now_s() - t0;
		ins = sql_prepare(e.db, "INSERT INTO points VALUES(?1, ?2, "
					"?3, ?4, ?5, ?6)");
		vint = sql_prepare(e.db, "INSERT INTO vintages VALUES(?1, ?2, "
					 "'bench_store')");
	}

	/* Load: one batch per (indicator, year), years outermost, the order
	 * yearly releases arrive in (and the harder one for a series-ordered
	 * key: every batch touches every series). SQLite's secondary index
	 * is built once after the bulk load (faster than maintaining it row
	 * by row); that, ANALYZE and the final checkpoint count as load
	 * time: until then the data is not queryable at full speed, or not
	 * in the database file. */
	fprintf(stderr, "load...\n");
	xsection x = {xcalloc(ds->ncom, sizeof(double)),
		      xcalloc(ds->ncom, sizeof(vg_status)),
		      {0}};
	int64_t vintage = 1;
	for (unsigned y = 0; y < NYEAR; y++)
		for (unsigned i = 0; i < NIND; i++) {
			xsection_fill(ds, i, y, &x);
			if (rv->ran) {
				t0 = now_s();
				vig_load_xs(s, ds, i, y, &x);
				rv->load_s += now_s() - t0;
			}
			if (rs->ran) {
				t0 = now_s();
				sql_load_xs(&e, ds, ins, vint, i, y, vintage++,
					    &x);
				rs->load_s += now_s() - t0;
			}
		}
	free(x.v);
	free(x.st);
	if (rs->ran) {
		sqlite3_finalize(ins);
		sqlite3_finalize(vint);
		t0 = now_s();
		sql_exec(e.db, sql_indexes);
		sql_exec(e.db, "PRAGMA wal_checkpoint(TRUNCATE)");
		rs->index_s = now_s() - t0;
		rs->load_s += rs->index_s;

		uint64_t fsz, alloc;
		file_usage(g_sql_path, &fsz, &alloc);
		rs->file_size = fsz;
		rs->alloc_size = alloc;
		rs->bytes_per_point = (double)fsz / (double)ds->npoints;
		rs->bytes_per_point_alloc = (double)alloc / (double)ds->npoints;
		for (int k = 0; k < 3; k++)
			e.q[k] = sql_prepare(e.db, sql_q[k]);
		for (int k = 0; k < NAKIND; k++)
			e.agg[k] = sql_prepare(e.db, sql_agg[k]);
		e.q_range = sql_prepare(e.db, sql_q_range);
		if (o->verbose)
			sql_plans(&e);
	}
	if (rv->ran)
		vig_stats(o, s, ds, rv);

	fprintf(stderr, "warm-up...\n");
	if (rv->ran)
		vig_warm(s, ds, rv);
	if (rs->ran)
		sql_warm(&e, ds, rs);

	fprintf(stderr, "queries...\n");
	for (int k = 0; k < 4; k++) {
		qkind qk = k < 3 ? (qkind)k : Q_SLICE;
		phase_acc av = {0}, as = {0};
		for (int round = 0; round < PHASE_ROUNDS; round++) {
			if (rv->ran && k < 3)
				run_round(vig_query_any, s, ds, w, qk,
					  rv->per_query[k], &av);
			if (rs->ran) {
				e.use_range = k == 3;
				run_round(sql_query_any, &e, ds, w, qk,
					  k < 3 ? rs->per_query[k]
						: rs->range_pq,
					  &as);
			}
		}
		if (k < 3) {
			rv->qps[k] = phase_qps(&av);
			rs->qps[k] = phase_qps(&as);
		} else {
			rs->qps_range = phase_qps(&as);
		}
	}

	/* Aggregations: each engine, then the in-memory array reference
	 * (EPCI and département sums), round after round. */
	fprintf(stderr, "aggregations...\n");
	vig_agg va;
	if (rv->ran)
		vig_agg_init(&va, s, ds);
	for (int k = 0; k < NAKIND; k++) {
		phase_acc av = {0}, as = {0}, aa = {0};
		bool arr = k == A_EPCI || k == A_DEP;
		for (int round = 0; round < PHASE_ROUNDS; round++) {
			if (rv->ran)
				run_agg_round(vig_agg_query, &va, ds, aw,
					      (akind)k, rv->agg[k], &av);
			if (rs->ran)
				run_agg_round(sql_agg_query, &e, ds, aw,
					      (akind)k, rs->agg[k], &as);
			if (arr)
				run_agg_round(array_agg_query, ar, ds, aw,
					      (akind)k, ar->out[k], &aa);
		}
		rv->aps[k] = phase_qps(&av);
		rs->aps[k] = phase_qps(&as);
		if (arr)
			ar->aps[k] = phase_qps(&aa);
	}
	if (rv->ran) {
		rv->agg_stray = va.stray;
		vig_agg_free(&va);
	}
	if (rs->ran)
		rs->agg_stray = e.agg_stray;

	if (rv->ran)
		vg_store_close(s);
	if (rs->ran)
		sql_close(&e);
}

/* ---- the report ------------------------------------------------------- */

static void fmt_num(char *buf, size_t n, double v)
{
	if (v >= 1000)
		snprintf(buf, n, "%.0f", v);
	else if (v >= 10)
		snprintf(buf, n, "%.1f", v);
	else
		snprintf(buf, n, "%.2f", v);
}

static void row(const char *phase, const results *v, const results *s,
		double fv, double fs)
{
	char a[32] = "-", b[32] = "-", c[32] = "-";
	if (v->ran)
		fmt_num(a, sizeof(a), fv);
	if (s->ran)
		fmt_num(b, sizeof(b), fs);
	if (v->ran && s->ran && fs > 0)
		snprintf(c, sizeof(c), "%.2f", fv / fs);
	printf("| %-44s | %12s | %12s | %8s |\n", phase, a, b, c);
}

static void machine_info(const options *o, const dataset *ds)
{
	struct utsname u;
	char cpu[128] = "?";
	long mem_kb = 0;
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (f) {
		char line[256];
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "model name", 10) == 0) {
				char *p = strchr(line, ':');
				if (p) {
					p += 1 + (p[1] == ' ');
					p[strcspn(p, "\n")] = 0;
					snprintf(cpu, sizeof(cpu), "%s", p);
				}
				break;
			}
		fclose(f);
	}
	f = fopen("/proc/meminfo", "r");
	if (f) {
		if (fscanf(f, "MemTotal: %ld kB", &mem_kb) != 1)
			mem_kb = 0;
		fclose(f);
	}
	uname(&u);
	printf("machine: %ld cores (nproc), %s, %.1f GiB RAM, %s %s, "
	       "cc %s, SQLite %s\n",
	       sysconf(_SC_NPROCESSORS_ONLN), cpu,
	       (double)mem_kb / (1024.0 * 1024.0), u.sysname, u.release,
	       __VERSION__, sqlite3_libversion());
	printf("data set: scale %g, seed %" PRIu64 ": %u régions, %u "
	       "départements, %" PRIu32 " EPCI, %" PRIu32 " communes; "
	       "%u indicators x %u years (%u-%u) = %" PRIu64 " points\n",
	       o->scale, o->seed, NREG, NDEP, ds->nepci, ds->ncom, NIND, NYEAR,
	       YEAR0, YEAR0 + NYEAR - 1, ds->npoints);
	printf("queries: %zu series, %zu slices (level com), %zu slices "
	       "within one département (each list repeated until it has run "
	       "%.1f s); one read transaction per query\n",
	       o->n[0], o->n[1], o->n[2], MIN_PHASE_S);
	unsigned dmin = NDEP, dmax = 0;
	for (unsigned p = 0; p < NPERIM; p++) {
		dmin = ds->perim_ndep[p] < dmin ? ds->perim_ndep[p] : dmin;
		dmax = ds->perim_ndep[p] > dmax ? ds->perim_ndep[p] : dmax;
	}
	char span[32];
	if (dmin == dmax)
		snprintf(span, sizeof(span), "%u", dmin);
	else
		snprintf(span, sizeof(span), "%u-%u", dmin, dmax);
	printf("aggregations: %u years x (population to every EPCI, to every "
	       "département; gp_density to every département), %u years x %u "
	       "perimeters of %u communes spanning %s départements; "
	       "same repetition\n",
	       NYEAR, NYEAR, NPERIM, PERIM_SIZE, span);
	printf("data dir: %s\n", g_dir);
	fflush(stdout);
}

static void report(const dataset *ds, const aggwork *aw, const array_ref *ar,
		   const results *v, const results *s)
{
	double np = (double)ds->npoints;
	printf("\n| %-44s | %12s | %12s | %8s |\n", "phase", "Vigie", "SQLite",
	       "ratio");
	printf("|%s|%s|%s|%s|\n",
	       "----------------------------------------"
	       "------",
	       "-------------:", "-------------:", "---------:");
	row("load, points/s", v, s, v->load_s > 0 ? np / v->load_s : 0,
	    s->load_s > 0 ? np / s->load_s : 0);
	row("full scan, first read after load, points/s", v, s,
	    v->scan_s[0] > 0 ? np / v->scan_s[0] : 0,
	    s->scan_s[0] > 0 ? np / s->scan_s[0] : 0);
	row("full scan, warm, points/s", v, s,
	    v->scan_s[1] > 0 ? np / v->scan_s[1] : 0,
	    s->scan_s[1] > 0 ? np / s->scan_s[1] : 0);
	row("series (1 commune, 25 years), queries/s", v, s, v->qps[0],
	    s->qps[0]);
	char lbl[96];
	snprintf(lbl, sizeof(lbl), "slice, all %" PRIu32 " communes, q/s",
		 ds->ncom);
	row(lbl, v, s, v->qps[1], s->qps[1]);
	row("  same, SQLite without the join (id range)", v, s, v->qps[1],
	    s->qps_range);
	row("slice, communes of one dep, queries/s", v, s, v->qps[2],
	    s->qps[2]);
	snprintf(lbl, sizeof(lbl),
		 "sum to all %" PRIu32 " EPCI, aggregations/s", ds->nepci);
	row(lbl, v, s, v->aps[A_EPCI], s->aps[A_EPCI]);
	row("  same, EPCI values/s", v, s, v->aps[A_EPCI] * ds->nepci,
	    s->aps[A_EPCI] * ds->nepci);
	snprintf(lbl, sizeof(lbl), "sum to all %u dep, aggregations/s", NDEP);
	row(lbl, v, s, v->aps[A_DEP], s->aps[A_DEP]);
	row("  same, dep values/s", v, s, v->aps[A_DEP] * NDEP,
	    s->aps[A_DEP] * NDEP);
	snprintf(lbl, sizeof(lbl), "sum over a %u-commune perimeter, aggr./s",
		 PERIM_SIZE);
	row(lbl, v, s, v->aps[A_PERIM], s->aps[A_PERIM]);
	snprintf(lbl, sizeof(lbl), "ratio to all %u dep, aggregations/s", NDEP);
	row(lbl, v, s, v->aps[A_RATIO], s->aps[A_RATIO]);
	row("disk, bytes/point (used / file)", v, s, v->bytes_per_point,
	    s->bytes_per_point);
	row("disk, bytes/point (allocated blocks)", v, s,
	    v->bytes_per_point_alloc, s->bytes_per_point_alloc);
	row("setup (territories + indicators), ms", v, s, v->setup_s * 1e3,
	    s->setup_s * 1e3);
	printf("\nratio = Vigie / SQLite: higher is better for rates, lower "
	       "for bytes and ms.\n");
	printf("aggregations: population (sum) %u-%u, one year per query, "
	       "from the communes; ratio = gp_density = ratio(gp_count, "
	       "population, 1e5); perimeters: %u of %u communes (cls, across "
	       "départements). Vigie's unit: vg_read_begin, vg_agg_ctx_new, "
	       "the aggregation, vg_agg_ctx_free, vg_read_end.\n",
	       YEAR0, YEAR0 + NYEAR - 1, NPERIM, PERIM_SIZE);
	for (int k = 0; k < 2; k++) {
		const char *what = k == A_EPCI ? "EPCI" : "dep";
		printf("in-memory array reference (sum of a double array into "
		       "group slots by a precomputed commune->group index), "
		       "to all %" PRIu32 " %s: %.0f aggregations/s",
		       aw->ng[k], what, ar->aps[k]);
		if (v->ran && ar->aps[k] > 0 && v->aps[k] > 0)
			printf("; Vigie/array = %.4f (array %.0fx faster)",
			       v->aps[k] / ar->aps[k], ar->aps[k] / v->aps[k]);
		printf("\n");
	}
	printf("load includes every commit (and for SQLite the index build, "
	       "ANALYZE and the final WAL checkpoint); Vigie bytes/point "
	       "counts the pages LMDB uses (vg_store_stat.used), SQLite the "
	       "file after checkpoint.\n");
	if (v->ran)
		printf("Vigie: data.mdb %" PRIu64 " bytes (%" PRIu64
		       " allocated)\n",
		       v->file_size, v->alloc_size);
	if (s->ran)
		printf("SQLite: bench.sqlite %" PRIu64 " bytes; load = %.1f s "
		       "of inserts + %.1f s of index build, ANALYZE and "
		       "checkpoint\n",
		       s->file_size, s->load_s - s->index_s, s->index_s);
}

static void usage(FILE *f)
{
	fputs("usage: bench_store [--scale F] [--quick] [--dir PATH] [--keep]\n"
	      "                   [--seed N] [--series N] [--slices N] "
	      "[--within N]\n"
	      "                   [--engine both|vigie|sqlite] [--verbose]\n"
	      "  --scale F    fraction of the 34 900 communes (default 1)\n"
	      "  --quick      same as --scale 0.05\n"
	      "  --dir PATH   data directory (default: a fresh mkdtemp under "
	      "/tmp)\n"
	      "  --keep       do not remove the data at the end\n"
	      "  --series N   random series queries (default 20000)\n"
	      "  --slices N   random France-wide commune slices (default "
	      "200)\n"
	      "  --within N   random slices of one département's communes "
	      "(default 2000)\n"
	      "  --engine E   run only one engine (checks against the "
	      "generator still run)\n"
	      "  --verbose    store statistics and SQLite query plans on "
	      "stderr\n",
	      f);
}

static double parse_double(const char *flag, const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0))
		die("%s: '%s' is not a positive number", flag, s);
	return v;
}

static void parse_args(int argc, char **argv, options *o)
{
	memset(o, 0, sizeof(*o));
	o->scale = 1.0;
	o->seed = 20240101;
	o->run_vigie = o->run_sqlite = true;
	o->n[Q_SERIES] = 20000;
	o->n[Q_SLICE] = 200;
	o->n[Q_WITHIN] = 2000;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool more = i + 1 < argc;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--quick")) {
			o->scale = 0.05;
		} else if (!strcmp(a, "--keep")) {
			o->keep = true;
		} else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
			o->verbose = true;
		} else if (!strcmp(a, "--scale") && more) {
			o->scale = parse_double(a, argv[++i]);
			if (o->scale > 4)
				die("--scale: at most 4");
		} else if (!strcmp(a, "--dir") && more) {
			o->dir = argv[++i];
		} else if (!strcmp(a, "--seed") && more) {
			o->seed = (uint64_t)parse_double(a, argv[++i]);
		} else if (!strcmp(a, "--series") && more) {
			o->n[Q_SERIES] = (size_t)parse_double(a, argv[++i]);
		} else if (!strcmp(a, "--slices") && more) {
			o->n[Q_SLICE] = (size_t)parse_double(a, argv[++i]);
		} else if (!strcmp(a, "--within") && more) {
			o->n[Q_WITHIN] = (size_t)parse_double(a, argv[++i]);
		} else if (!strcmp(a, "--engine") && more) {
			const char *e = argv[++i];
			o->run_vigie =
			    !strcmp(e, "both") || !strcmp(e, "vigie");
			o->run_sqlite =
			    !strcmp(e, "both") || !strcmp(e, "sqlite");
			if (!o->run_vigie && !o->run_sqlite) {
				usage(stderr);
				exit(2);
			}
		} else {
			fprintf(stderr, "bench_store: bad argument '%s'\n", a);
			usage(stderr);
			exit(2);
		}
	}
}

static void prepare_dir(const options *o)
{
	struct stat st;
	if (o->dir) {
		snprintf(g_dir, sizeof(g_dir), "%s", o->dir);
		if (mkdir(g_dir, 0755) != 0 && errno != EEXIST)
			die("mkdir %s: %s", g_dir, strerror(errno));
	} else {
		snprintf(g_dir, sizeof(g_dir), "/tmp/vigie-bench-XXXXXX");
		if (!mkdtemp(g_dir))
			die("mkdtemp: %s", strerror(errno));
		g_dir_is_ours = true;
	}
	snprintf(g_vig_dir, sizeof(g_vig_dir), "%s/vigie", g_dir);
	snprintf(g_sql_path, sizeof(g_sql_path), "%s/bench.sqlite", g_dir);
	/* A load into existing data would measure "unchanged" points, not a
	 * load: refuse rather than guess. */
	if (lstat(g_vig_dir, &st) == 0 || lstat(g_sql_path, &st) == 0)
		die("%s already holds benchmark data (vigie/ or "
		    "bench.sqlite): remove it or pick another --dir",
		    g_dir);
	if (mkdir(g_vig_dir, 0755) != 0)
		die("mkdir %s: %s", g_vig_dir, strerror(errno));
	g_cleanup_dir = g_dir;
	g_keep = o->keep;
}

int main(int argc, char **argv)
{
	options o;
	dataset ds;
	workload w;
	results rv, rs;
	double t0 = now_s();

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv, &o);
	prepare_dir(&o);
	dataset_build(&ds, o.scale, o.seed);
	workload_build(&w, &ds, o.n);
	machine_info(&o, &ds);
	aggwork aw;
	aggwork_build(&aw, &ds);
	array_ref ar;
	array_ref_init(&ar, &ds, &aw);
	results_init(&rv, &w, &aw);
	results_init(&rs, &w, &aw);

	run(&o, &ds, &w, &aw, &ar, &rv, &rs);

	/* The ground truth of the warm-up slices and of the scan. */
	check *xs_truth = xcalloc(NIND * NYEAR, sizeof(check));
	check scan_truth = {0};
	for (unsigned i = 0; i < NIND; i++)
		for (unsigned y = 0; y < NYEAR; y++) {
			query q = {.ind = i, .year = y};
			check *c = &xs_truth[i * NYEAR + y];
			*c = truth_of(&ds, Q_SLICE, &q);
			scan_truth.n += c->n;
			scan_truth.nnan += c->nnan;
			scan_truth.stsum += c->stsum;
			scan_truth.sum += c->sum;
			scan_truth.wsum += c->wsum;
		}
	const check *nil = NULL;
	for (int pass = 0; pass < 2; pass++)
		verify("full scan", 1, &scan_truth,
		       rv.ran ? &rv.scan[pass] : nil,
		       rs.ran ? &rs.scan[pass] : nil, describe_scan, NULL);
	verify("warm-up slices", NIND * NYEAR, xs_truth, rv.ran ? rv.xs : nil,
	       rs.ran ? rs.xs : nil, describe_xs, NULL);
	for (int k = 0; k < 3; k++) {
		describe_ctx dc = {&ds, w.q[k], (qkind)k};
		verify(qkind_name[k], w.n[k], w.truth[k],
		       rv.ran ? rv.per_query[k] : nil,
		       rs.ran ? rs.per_query[k] : nil, describe_query, &dc);
	}
	describe_ctx dcr = {&ds, w.q[Q_SLICE], Q_SLICE};
	verify("slice com, SQLite id range", w.n[Q_SLICE], w.truth[Q_SLICE],
	       nil, rs.ran ? rs.range_pq : nil, describe_query, &dcr);
	free(xs_truth);
	for (int k = 0; k < NAKIND; k++) {
		if (rv.ran)
			verify_agg(&ds, &aw, (akind)k, "vigie", rv.agg[k],
				   false);
		if (rs.ran)
			verify_agg(&ds, &aw, (akind)k, "sqlite", rs.agg[k],
				   false);
		if (k == A_EPCI || k == A_DEP)
			verify_agg(&ds, &aw, (akind)k, "array", ar.out[k],
				   true);
	}
	if (rv.agg_stray || rs.agg_stray) {
		fprintf(stderr,
			"MISMATCH: aggregation answers for territories not "
			"asked: vigie %" PRIu64 ", sqlite %" PRIu64 "\n",
			rv.agg_stray, rs.agg_stray);
		g_mismatches += (int)(rv.agg_stray + rs.agg_stray);
	}

	report(&ds, &aw, &ar, &rv, &rs);
	printf("total run time %.1f s\n", now_s() - t0);

	results_free(&rv);
	results_free(&rs);
	array_ref_free(&ar);
	aggwork_free(&aw);
	workload_free(&w);
	dataset_free(&ds);
	cleanup_dir();
	if (g_mismatches) {
		printf("\nINVALID: %d result(s) differ from the ground truth "
		       "(details on stderr); the figures above are "
		       "meaningless.\n",
		       g_mismatches);
		return 1;
	}
	printf("all results checked: both engines agree with the generator\n");
	return 0;
}
