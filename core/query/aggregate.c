/* Aggregation of an indicator to any territory with its rule, with
 * coverage. See include/vigie/query.h for the contract. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "query/query_int.h"
#include "vigie/acc.h"
#include "vigie/query.h"

#define ABSENT 0xFF /* no point for this territory */

/* One indicator's values for one period, by territory id. */
typedef struct arr {
	double *val;
	uint8_t *st; /* vg_status, or ABSENT */
} arr;

#define MAX_LOADED 16

/* The per-territory arrays of a context, kept between contexts. A context
 * is made for every query; allocating and clearing arrays of every
 * territory (~36 000) each time cost more than aggregating a 50-commune
 * perimeter. A scratch handed out has every `st` slot ABSENT and `seen`
 * below `stamp`; whoever gives it back restores that. */
#define NARR 3
typedef struct scratch {
	uint32_t n; /* capacity, in territories */
	arr arr[NARR];
	uint32_t stamp;
	uint32_t *seen;
	uint8_t *contrib;
	/* Memos, valid while their stamp equals the scratch's: `wstamp`
	 * per target (is t within it: wbits), `lstamp` per context (does a
	 * leaf below t store input x: lbits, two bits per input). They turn
	 * per-leaf searches into array look-ups: without them a France
	 * walked 35 000 leaves through the dictionary's index each time. */
	uint32_t *wstamp, *lstamp;
	uint8_t *wbits, *lbits;
	uint32_t lgen;
	/* Per target and input: the holder found above territory t
	 * (hval, 0: none) and how many steps up (hdep), valid when
	 * hstamp[x][t] is the stamp. Leaves share their parents, so the
	 * search above an EPCI runs once per target, not once per commune. */
	uint32_t *hstamp[2], *hval[2];
	uint8_t *hdep[2];
	/* Slots written while only parts were loaded: the ones to restore
	 * on release. Past `touched_cap`, the whole arrays are cleared. */
	uint32_t *touched;
	size_t ntouched, touched_cap;
	bool dirty_all;
	struct scratch *next;
} scratch;

/* Returned scratches, reused across contexts and threads. A few are
 * enough: one per concurrent query. Reachable from here until exit. */
#define POOL_MAX 4
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static scratch *pool;
static unsigned pool_len;

static void scratch_free(scratch *sc)
{
	if (!sc)
		return;
	for (int i = 0; i < NARR; i++) {
		free(sc->arr[i].val);
		free(sc->arr[i].st);
	}
	free(sc->seen);
	free(sc->contrib);
	free(sc->wstamp);
	free(sc->lstamp);
	free(sc->wbits);
	free(sc->lbits);
	for (int x = 0; x < 2; x++) {
		free(sc->hstamp[x]);
		free(sc->hval[x]);
		free(sc->hdep[x]);
	}
	free(sc->touched);
	free(sc);
}

static scratch *scratch_new(uint32_t n)
{
	scratch *sc = calloc(1, sizeof(*sc));
	if (!sc)
		return NULL;
	sc->n = n ? n : 1;
	sc->touched_cap = sc->n / 16 + 64;
	bool ok = true;
	for (int i = 0; i < NARR && ok; i++) {
		sc->arr[i].val = malloc(sc->n * sizeof(double));
		sc->arr[i].st = malloc(sc->n);
		ok = sc->arr[i].val && sc->arr[i].st;
		if (ok)
			memset(sc->arr[i].st, ABSENT, sc->n);
	}
	sc->seen = calloc(sc->n, sizeof(uint32_t));
	sc->contrib = calloc(sc->n, 1);
	sc->wstamp = calloc(sc->n, sizeof(uint32_t));
	sc->lstamp = calloc(sc->n, sizeof(uint32_t));
	sc->wbits = calloc(sc->n, 1);
	sc->lbits = calloc(sc->n, 1);
	for (int x = 0; x < 2; x++) {
		sc->hstamp[x] = calloc(sc->n, sizeof(uint32_t));
		sc->hval[x] = malloc(sc->n * sizeof(uint32_t));
		sc->hdep[x] = malloc(sc->n);
		ok = ok && sc->hstamp[x] && sc->hval[x] && sc->hdep[x];
	}
	sc->touched = malloc(sc->touched_cap * sizeof(uint32_t));
	if (!ok || !sc->seen || !sc->contrib || !sc->touched || !sc->wstamp ||
	    !sc->lstamp || !sc->wbits || !sc->lbits) {
		scratch_free(sc);
		return NULL;
	}
	return sc;
}

/* A scratch for n territories: a pooled one if it is big enough. */
static scratch *scratch_take(uint32_t n)
{
	scratch *sc = NULL, **pp;
	pthread_mutex_lock(&pool_mu);
	for (pp = &pool; *pp; pp = &(*pp)->next)
		if ((*pp)->n >= n) {
			sc = *pp;
			*pp = sc->next;
			pool_len--;
			break;
		}
	pthread_mutex_unlock(&pool_mu);
	return sc ? sc : scratch_new(n);
}

/* Restore the invariant, then pool it (or free it when the pool is
 * full). */
static void scratch_give(scratch *sc)
{
	if (!sc)
		return;
	if (sc->dirty_all) {
		for (int i = 0; i < NARR; i++)
			memset(sc->arr[i].st, ABSENT, sc->n);
	} else {
		for (size_t k = 0; k < sc->ntouched; k++)
			for (int i = 0; i < NARR; i++)
				sc->arr[i].st[sc->touched[k]] = ABSENT;
	}
	sc->ntouched = 0;
	sc->dirty_all = false;
	pthread_mutex_lock(&pool_mu);
	if (pool_len < POOL_MAX) {
		sc->next = pool;
		pool = sc;
		pool_len++;
		sc = NULL;
	}
	pthread_mutex_unlock(&pool_mu);
	scratch_free(sc);
}

struct vg_agg_ctx {
	vg_read *r;
	uint32_t n; /* territory ids are < n */
	vg_period period;
	int64_t as_of;
	uint32_t ind_ids[3]; /* self, a, b (a/b: 0 when the rule has none) */
	vg_membership_mode membership;
	/* What is loaded: everything (a whole level was asked for), or the
	 * territories below a few targets. One target only needs its own
	 * slots: reading a 50-commune perimeter must not cost a France. */
	bool loaded_all;
	size_t nloaded;
	uint32_t loaded[MAX_LOADED];
	vg_indicator ind;
	arr self, a, b; /* a, b: ratio num/den, wmean value/weight */
	/* Per-target bookkeeping, reset by bumping `stamp` instead of
	 * clearing arrays of n entries for every target. */
	uint32_t *seen;	  /* holder already counted for this target */
	uint8_t *contrib; /* ...and whether it entered the result */
	scratch *sc;	  /* owns the arrays of self, a, b, seen, contrib */
	int narr;	  /* scratch arrays handed to inputs so far */
	/* ratio and wmean: an input the rule names that is not defined
	 * (a plugin that has not run yet): its values are missing, and the
	 * answers say why. */
	bool undefined[2];
	/* The contexts of inputs a and b, made the first time a unit needs
	 * an input computed from below with its own rule (a count published
	 * by département over populations by commune). Owned. */
	vg_agg_ctx *sub[2];
	bool sub_failed[2];
	int depth; /* nesting: an input's context is one deeper */
	/* Slots loaded for self, a, b: an input with none needs no search
	 * for holders. */
	uint32_t filled[3];
};

#define MAX_DEPTH 4 /* nesting of input contexts (rules naming rules) */

const char *vg_value_source_name(vg_value_source s)
{
	switch (s) {
	case VG_SOURCE_PUBLISHED: return "published";
	case VG_SOURCE_COMPUTED: return "computed";
	default: return "none";
	}
}

/* Remember that slot t was written, so that releasing the scratch
 * restores only what was touched. */
static void touch(scratch *sc, uint32_t t)
{
	if (sc->dirty_all)
		return;
	if (sc->ntouched == sc->touched_cap)
		sc->dirty_all = true;
	else
		sc->touched[sc->ntouched++] = t;
}

typedef struct fill_ctx {
	vg_agg_ctx *c;
	arr *a;
	uint32_t *count;
} fill_ctx;

static int fill_cb(void *ud, const vg_point *p)
{
	fill_ctx *f = ud;
	f->a->val[p->terr] = p->value;
	f->a->st[p->terr] = (uint8_t)p->status;
	(*f->count)++;
	touch(f->c->sc, p->terr);
	return 0;
}

/* Allocate the arrays of one input and remember its indicator id. */
static int prepare(vg_agg_ctx *c, arr *a, uint32_t *id, const char *code,
		   vg_error *err)
{
	*a = c->sc->arr[c->narr++]; /* all ABSENT: see scratch */
	if (vg_read_indicator_id(c->r, code, id, NULL)) {
		/* Not defined (yet): accepted at definition when another
		 * plugin will define it; its values stay ABSENT and the
		 * answers name it (VG_WHY_UNDEFINED_INPUT). */
		*id = 0;
		return 1;
	}
	(void)err;
	return 0;
}

/* Read the slots of the territories within `within` (0: all) of every
 * level, for every input: one block read per level and input. */
static int fill(vg_agg_ctx *c, uint32_t within, vg_error *err)
{
	arr *arrs[3] = {&c->self, &c->a, &c->b};
	uint16_t nl = vg_read_level_count(c->r);
	if (!within)
		c->sc->dirty_all = true; /* everything will be written */
	for (int i = 0; i < 3; i++) {
		if (!c->ind_ids[i] || (i > 0 && arrs[i]->val == c->self.val) ||
		    (i == 2 && arrs[2]->val == c->a.val))
			continue; /* no such input, or an alias */
		fill_ctx f = {c, arrs[i], &c->filled[i]};
		for (uint16_t l = 0; l < nl; l++) {
			int rc =
			    vg_read_slice(c->r, c->ind_ids[i], c->period, l,
					  within, c->as_of, fill_cb, &f);
			if (rc)
				return vg_error_set(err, rc,
						    "cannot read indicator #%u",
						    c->ind_ids[i]);
		}
	}
	return 0;
}

/* Old codes' points (passage table) are not within any target (an old
 * code has no parents), so a partial load reads them one by one: the
 * predecessors, and theirs for chains, of the territories within the
 * target. A handful per commune nouvelle; none in most of France. */
static void load_point(vg_agg_ctx *c, uint32_t t)
{
	arr *arrs[3] = {&c->self, &c->a, &c->b};
	for (int i = 0; i < 3; i++) {
		vg_point p;
		if (c->ind_ids[i] && arrs[i]->val &&
		    vg_read_point(c->r, c->ind_ids[i], t, c->period, c->as_of,
				  &p) == 0) {
			arrs[i]->val[t] = p.value;
			arrs[i]->st[t] = (uint8_t)p.status;
			c->filled[i]++;
			touch(c->sc, t);
		}
	}
}

static void load_predecessors(vg_agg_ctx *c, uint32_t t, int depth)
{
	const vg_passage *p;
	size_t n = vg_read_territory_predecessors(c->r, t, &p);
	for (size_t i = 0; i < n && depth < 8; i++) {
		if (p[i].terr >= c->n)
			continue;
		load_point(c, p[i].terr);
		load_predecessors(c, p[i].terr, depth + 1);
	}
}

static int load_pred_cb(void *ud, uint32_t id)
{
	load_predecessors(ud, id, 0);
	return 0;
}

/* Make sure everything `target` needs is loaded. */
static int ensure_loaded(vg_agg_ctx *c, uint32_t target, vg_error *err)
{
	if (c->loaded_all)
		return 0;
	for (size_t i = 0; i < c->nloaded; i++)
		if (c->loaded[i] == target ||
		    vg_read_territory_within(c->r, target, c->loaded[i]))
			return 0;
	/* France, or too many targets: load everything once. */
	uint32_t fr = 0;
	vg_read_territory_id(c->r, "fr", &fr, NULL);
	if (target == 0 || target == fr || c->nloaded == MAX_LOADED) {
		c->loaded_all = true;
		return fill(c, 0, err);
	}
	c->loaded[c->nloaded++] = target;
	int rc = fill(c, target, err);
	uint16_t nl = vg_read_level_count(c->r);
	for (uint16_t l = 0; !rc && l < nl; l++)
		vg_read_descendants(c->r, target, l, load_pred_cb, c);
	return rc;
}

void vg_agg_ctx_set_membership(vg_agg_ctx *c, vg_membership_mode m)
{
	c->membership = m;
}

vg_membership_mode vg_agg_ctx_membership(const vg_agg_ctx *c)
{
	return c->membership;
}

vg_period vg_agg_ctx_period(const vg_agg_ctx *c)
{
	return c->period;
}

vg_read *vg_agg_ctx_read(vg_agg_ctx *c)
{
	return c->r;
}

void vg_agg_ctx_free(vg_agg_ctx *c)
{
	if (!c)
		return;
	vg_agg_ctx_free(c->sub[0]);
	vg_agg_ctx_free(c->sub[1]);
	scratch_give(c->sc);
	free(c);
}

int vg_agg_ctx_new(vg_read *r, uint32_t ind, vg_period period, int64_t as_of,
		   vg_agg_ctx **out, vg_error *err)
{
	*out = NULL;
	vg_agg_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	c->r = r;
	c->n = vg_read_territory_max(r);
	c->period = period;
	c->as_of = as_of;
	c->ind_ids[0] = ind;
	c->sc = scratch_take(c->n);
	if (!c->sc) {
		free(c);
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	}
	c->seen = c->sc->seen;
	c->contrib = c->sc->contrib;
	if (++c->sc->lgen == 0) { /* wrapped: the memos of every context */
		memset(c->sc->lstamp, 0, c->sc->n * sizeof(uint32_t));
		c->sc->lgen = 1;
	}
	int rc = vg_read_indicator(r, ind, &c->ind, err);
	if (!rc && vg_period_kind(period) != c->ind.periodicity)
		rc = vg_error_set(
		    err, VG_EPERIOD, "indicator '%s' is %s: period must be too",
		    c->ind.code, vg_periodicity_name(c->ind.periodicity));
	if (!rc && prepare(c, &c->self, &c->ind_ids[0], c->ind.code, err))
		rc = vg_error_set(err, VG_ENOTFOUND, "no indicator #%u", ind);
	const vg_agg_rule *rule = &c->ind.agg;
	if (!rc && (rule->kind == VG_AGG_RATIO || rule->kind == VG_AGG_WMEAN)) {
		if (!strcmp(rule->a, c->ind.code)) {
			c->a = c->self;
			c->ind_ids[1] = ind;
		} else {
			c->undefined[0] =
			    prepare(c, &c->a, &c->ind_ids[1], rule->a, err);
		}
		if (!strcmp(rule->b, c->ind.code)) {
			c->b = c->self;
			c->ind_ids[2] = ind;
		} else if (!strcmp(rule->b, rule->a)) {
			c->b = c->a;
			c->ind_ids[2] = c->ind_ids[1];
			c->undefined[1] = c->undefined[0];
		} else {
			c->undefined[1] =
			    prepare(c, &c->b, &c->ind_ids[2], rule->b, err);
		}
	}
	if (rc) {
		vg_agg_ctx_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* One target's computation: the accumulator (vigie/acc.h) and where it
 * stands. */
typedef struct acc {
	vg_agg_ctx *c;
	uint32_t target;
	vg_acc acc;
	/* ratio and wmean: may the target's own stored inputs serve as a
	 * unit (not when the target is a commune whose old codes hold the
	 * period, nor a perimeter computed on another membership). */
	bool target_unit;
	bool found[2];	    /* some leaf found a holder of input 0 / 1 */
	bool any_stored[2]; /* input x has a stored value in the context */
	vg_input_info inputs[2];
	vg_error *err;
	int rc;
} acc;

static bool usable(uint8_t st)
{
	return vg_acc_status_usable(st);
}

static bool two_inputs(const vg_agg_ctx *c)
{
	return c->ind.agg.kind == VG_AGG_RATIO ||
	       c->ind.agg.kind == VG_AGG_WMEAN;
}

/* Input x of the rule: 0 is the value (sum, min, max: the indicator
 * itself) or the numerator / wmean value; 1 the denominator / weight. */
static const arr *input(const vg_agg_ctx *c, int x)
{
	return x ? &c->b : two_inputs(c) ? &c->a : &c->self;
}

/* Has input x any value loaded (for the targets loaded so far)? */
static bool input_filled(const vg_agg_ctx *c, int x)
{
	const arr *ar = input(c, x);
	if (ar->val == c->self.val)
		return c->filled[0] > 0;
	return c->filled[ar->val == c->a.val ? 1 : 2] > 0;
}

static bool stored(const vg_agg_ctx *c, int x, uint32_t t)
{
	return input(c, x)->st[t] != ABSENT;
}

/* Does territory t hold the inputs of this rule (any of them)? */
static bool holds(const vg_agg_ctx *c, uint32_t t)
{
	return stored(c, 0, t) || (two_inputs(c) && stored(c, 1, t));
}

/* Add unit h's stored inputs with share w; returns the outcome. */
static vg_acc_outcome add_unit(acc *a, uint32_t h, double w)
{
	const vg_agg_ctx *c = a->c;
	const arr *x = input(c, 0);
	bool two = two_inputs(c);
	return vg_acc_add(&a->acc, x->val[h], x->st[h], two ? c->b.val[h] : NAN,
			  two ? c->b.st[h] : ABSENT, w);
}

/* Why unit h cannot enter with share w (VG_ACC_ENTERED: it can). */
static vg_acc_outcome unit_check(const vg_agg_ctx *c, uint32_t h, double w)
{
	bool two = two_inputs(c);
	return vg_acc_check(c->ind.agg.kind, input(c, 0)->st[h],
			    two ? c->b.st[h] : ABSENT, w);
}

/* ---- passage table ------------------------------------------------------ */

enum { PASS_SCAN, PASS_ADD, PASS_WEIGHT };

typedef struct pass_state {
	bool any; /* some old code holds inputs */
	/* ...and whether they can all enter: VG_ACC_ENTERED, or why not
	 * (suppressed wins over missing: it is the reason to report). */
	vg_acc_outcome outcome;
} pass_state;

static void pass_note(pass_state *ps, vg_acc_outcome o)
{
	if (o == VG_ACC_SUPPRESSED ||
	    (o == VG_ACC_MISSING && ps->outcome == VG_ACC_ENTERED))
		ps->outcome = o;
}

/* Walk the old codes that `t` replaced, and theirs (chains: A merged
 * into B, B into C: C counts A's and B's values), with the product of
 * the shares along the way. Every old code that holds a value counts:
 * before B absorbed A both published, after it only B did. */
static void passage_walk(acc *a, uint32_t t, double w, int mode, int depth,
			 pass_state *ps)
{
	vg_agg_ctx *c = a->c;
	const vg_passage *p;
	size_t n = vg_read_territory_predecessors(c->r, t, &p);
	for (size_t i = 0; i < n && depth < 8; i++) {
		uint32_t o = p[i].terr;
		double ww = w * p[i].weight;
		if (o >= c->n)
			continue;
		if (holds(c, o)) {
			if (mode == PASS_SCAN) {
				ps->any = true;
				pass_note(ps, unit_check(c, o, ww));
			} else if (mode == PASS_ADD) {
				add_unit(a, o, ww);
			} else if (two_inputs(c)) {
				vg_acc_add_weight(&a->acc, c->b.val[o],
						  c->b.st[o], ww);
			}
		}
		passage_walk(a, o, ww, mode, depth + 1, ps);
	}
}

/* Do old codes the leaf replaced hold values for this period? Then the
 * period was published in an older geography (no file in the current
 * one has those codes), and the leaf's own value, if any, is that of the
 * old commune that kept the code (Culoz in Culoz-Béon, Oullins in
 * Oullins-Pierre-Bénite: the APL 2021 file has both codes): the leaf is
 * its own value plus its old codes' (all of them, or none: a part would
 * be a silent undercount). Returns false when no old code holds any. */
static bool via_passage(acc *a, uint32_t leaf)
{
	vg_agg_ctx *c = a->c;
	const vg_passage *p;
	if (!vg_read_territory_predecessors(c->r, leaf, &p))
		return false;
	pass_state ps = {false, VG_ACC_ENTERED};
	passage_walk(a, leaf, 1.0, PASS_SCAN, 0, &ps);
	if (!ps.any)
		return false;
	a->found[0] = a->found[1] = true;
	bool own = holds(c, leaf);
	if (own)
		pass_note(&ps, unit_check(c, leaf, 1.0));
	if (ps.outcome != VG_ACC_ENTERED) {
		passage_walk(a, leaf, 1.0, PASS_WEIGHT, 0, &ps);
		if (own && two_inputs(c))
			vg_acc_add_weight(&a->acc, c->b.val[leaf],
					  c->b.st[leaf], 1.0);
		vg_acc_member(&a->acc, ps.outcome, false);
	} else {
		if (own)
			add_unit(a, leaf, 1.0);
		passage_walk(a, leaf, 1.0, PASS_ADD, 0, &ps);
		vg_acc_member(&a->acc, VG_ACC_ENTERED, true);
	}
	return true;
}

/* ---- holders --------------------------------------------------------------
 */

typedef struct below_ctx {
	vg_agg_ctx *c;
	int x;
	bool found;
} below_ctx;

static int below_cb(void *ud, uint32_t id)
{
	below_ctx *b = ud;
	if (vg_read_territory_is_leaf(b->c->r, id) && stored(b->c, b->x, id)) {
		b->found = true;
		return 1; /* stop */
	}
	return 0;
}

/* Does some leaf below p store input x? Then p's value covers territory
 * that is also counted leaf by leaf, and using it for the other leaves
 * would count people twice. Remembered for the context: it depends on
 * the data only. */
static bool leaves_below_hold(vg_agg_ctx *c, int x, uint32_t p)
{
	scratch *sc = c->sc;
	uint8_t known = (uint8_t)(1u << (2 * x)),
		yes = (uint8_t)(2u << (2 * x));
	if (sc->lstamp[p] != sc->lgen) {
		sc->lstamp[p] = sc->lgen;
		sc->lbits[p] = 0;
	}
	if (!(sc->lbits[p] & known)) {
		below_ctx b = {c, x, false};
		uint16_t nl = vg_read_level_count(c->r);
		for (uint16_t l = 0; l < nl && !b.found; l++)
			vg_read_descendants(c->r, p, l, below_cb, &b);
		sc->lbits[p] |= known | (b.found ? yes : 0);
	}
	return sc->lbits[p] & yes;
}

/* Is p within the target? Remembered for the target. */
static bool within_target(acc *a, uint32_t p)
{
	scratch *sc = a->c->sc;
	if (sc->wstamp[p] != sc->stamp) {
		sc->wstamp[p] = sc->stamp;
		sc->wbits[p] = vg_read_territory_within(a->c->r, p, a->target);
	}
	return sc->wbits[p];
}

#define NO_DEPTH 0xFF

/* The holder of input x found at or above territory p (p being a parent
 * of a leaf, `depth` steps above it): p itself when it stores x, else the
 * nearest above it, breadth first as seen from the leaf (fewest steps,
 * then the order of the parents). Remembered per target. *dep gets the
 * steps from p (NO_DEPTH: none). */
static uint32_t holder_above(acc *a, int x, uint32_t p, int depth, uint8_t *dep)
{
	vg_agg_ctx *c = a->c;
	scratch *sc = c->sc;
	*dep = NO_DEPTH;
	if (depth >= 4)
		return 0;
	if (sc->hstamp[x][p] == sc->stamp) {
		*dep = sc->hdep[x][p];
		return sc->hval[x][p];
	}
	uint32_t h = 0;
	uint8_t hd = NO_DEPTH;
	if (p == a->target) {
		/* The target itself: only for the inputs of a ratio or wmean
		 * (a count published by département is the unit of the
		 * département's density), and never above it. */
		if (a->target_unit && stored(c, x, p) &&
		    !leaves_below_hold(c, x, p)) {
			h = p;
			hd = 0;
		}
	} else if (!within_target(a, p)) {
		/* outside: neither p nor what is above it */
	} else if (stored(c, x, p)) {
		if (!leaves_below_hold(c, x, p)) {
			h = p;
			hd = 0;
		}
	} else {
		uint32_t up[VG_MAX_PARENTS];
		size_t k = vg_read_territory_parents(c->r, p, up);
		for (size_t j = 0; j < k; j++) {
			uint8_t d;
			uint32_t q = holder_above(a, x, up[j], depth + 1, &d);
			if (q && (hd == NO_DEPTH || d + 1 < hd)) {
				h = q;
				hd = (uint8_t)(d + 1);
			}
		}
	}
	/* A search cut short by the depth limit is not remembered: from a
	 * shallower start it may go further. */
	if (depth == 0 || hd != NO_DEPTH) {
		sc->hstamp[x][p] = sc->stamp;
		sc->hval[x][p] = h;
		sc->hdep[x][p] = hd;
	}
	*dep = hd;
	return h;
}

/* The territory holding input x for a leaf: the leaf, or the nearest
 * territory above it, inside the target, that stores it and none of
 * whose leaves stores it. The target itself only for the inputs of a
 * ratio or wmean. 0: none. */
static uint32_t holder_of(acc *a, int x, uint32_t leaf)
{
	vg_agg_ctx *c = a->c;
	if (stored(c, x, leaf))
		return leaf;
	if (!a->any_stored[x])
		return 0;
	uint32_t ps[VG_MAX_PARENTS];
	size_t k = vg_read_territory_parents(c->r, leaf, ps);
	uint32_t h = 0;
	uint8_t hd = NO_DEPTH;
	for (size_t i = 0; i < k; i++) {
		uint8_t d;
		uint32_t q = holder_above(a, x, ps[i], 0, &d);
		if (q && (hd == NO_DEPTH || d < hd)) {
			h = q;
			hd = d;
		}
	}
	return h;
}

/* Is `hi` above `lo` through parents (within a few steps)? */
static bool above(vg_read *r, uint32_t hi, uint32_t lo)
{
	uint32_t frontier[VG_MAX_PARENTS * 4], next[VG_MAX_PARENTS * 4];
	size_t nf = vg_read_territory_parents(r, lo, frontier);
	for (int depth = 0; depth < 5 && nf; depth++) {
		size_t nn = 0;
		for (size_t i = 0; i < nf; i++) {
			if (frontier[i] == hi)
				return true;
			uint32_t up[VG_MAX_PARENTS];
			size_t k =
			    vg_read_territory_parents(r, frontier[i], up);
			for (size_t j = 0;
			     j < k && nn < (sizeof(next) / sizeof(*next)); j++)
				next[nn++] = up[j];
		}
		memcpy(frontier, next, nn * sizeof(uint32_t));
		nf = nn;
	}
	return false;
}

/* ---- members ----------------------------------------------------------------
 */

static int member_cb(void *ud, uint32_t id)
{
	acc *a = ud;
	vg_agg_ctx *c = a->c;
	const vg_passage *succ;
	if (!vg_read_territory_is_leaf(c->r, id) ||
	    vg_read_territory_successors(c->r, id, &succ))
		return 0; /* an old code counts through its successors */
	if (via_passage(a, id))
		return 0;
	uint32_t h = holder_of(a, 0, id);
	if (!h) {
		/* No value for this member at all. */
		vg_acc_member(&a->acc, VG_ACC_MISSING, false);
		return 0;
	}
	a->found[0] = true;
	if (c->seen[h] != c->sc->stamp) {
		c->seen[h] = c->sc->stamp;
		c->contrib[h] = (uint8_t)add_unit(a, h, 1.0);
	}
	vg_acc_member(&a->acc, (vg_acc_outcome)c->contrib[h], false);
	return 0;
}

static void note_level(vg_read *r, vg_input_info *in, uint32_t unit)
{
	uint16_t l;
	if (vg_read_territory_level(r, unit, &l))
		return;
	if (in->level == -1)
		in->level = l;
	else if (in->level != l)
		in->level = -2;
}

/* The context of input x, made on first use. NULL when the input cannot
 * be computed from below: undefined, the indicator itself (wmean(self,
 * w) has no other rule to compute its value with), too deep. */
static vg_agg_ctx *input_ctx(vg_agg_ctx *c, int x)
{
	uint32_t id = c->ind_ids[1 + x];
	if (c->sub[x] || c->sub_failed[x])
		return c->sub[x];
	if (!id || id == c->ind_ids[0] || c->depth + 1 >= MAX_DEPTH ||
	    vg_agg_ctx_new(c->r, id, c->period, c->as_of, &c->sub[x], NULL)) {
		c->sub_failed[x] = true;
		return NULL;
	}
	c->sub[x]->depth = c->depth + 1;
	c->sub[x]->membership = c->membership;
	return c->sub[x];
}

/* The pair of inputs at `unit`: each stored there, or computed from
 * below with its own rule (published values where they exist). */
static vg_acc_outcome pair_at(acc *a, uint32_t unit)
{
	vg_agg_ctx *c = a->c;
	double v[2];
	unsigned st[2];
	for (int x = 0; x < 2; x++) {
		vg_input_info *in = &a->inputs[x];
		note_level(c->r, in, unit);
		if (stored(c, x, unit) &&
		    (unit != a->target || a->target_unit)) {
			v[x] = input(c, x)->val[unit];
			st[x] = input(c, x)->st[unit];
			in->stored++;
			continue;
		}
		vg_agg_ctx *sub = input_ctx(c, x);
		v[x] = NAN;
		st[x] = ABSENT;
		if (!sub)
			continue;
		vg_agg_value sv;
		int rc = vg_agg_value_at(sub, unit, &sv, a->err);
		if (rc) {
			a->rc = rc;
			continue;
		}
		in->computed++;
		if (sv.source == VG_SOURCE_COMPUTED && sv.cov.partial) {
			in->computed_partial++;
			a->acc.cov.partial = true;
		}
		v[x] = sv.value;
		st[x] =
		    !isnan(sv.value) ? sv.status
		    : sv.cov.suppressed && !sv.cov.missing && !sv.cov.with_data
			? VG_STATUS_SUPPRESSED
			: VG_STATUS_MISSING;
		if (sv.source == VG_SOURCE_PUBLISHED)
			st[x] = sv.status;
	}
	return vg_acc_add(&a->acc, v[0], st[0], v[1], st[1], 1.0);
}

/* ratio and wmean: each leaf's inputs are paired in a unit, the finest
 * territory where both can be had: the leaf when both are stored there;
 * a département when a count is published by département and the
 * population by commune (the population is then summed over the
 * département's communes, with its own rule); the target itself when
 * the two inputs' holders are not nested. A unit enters once; its
 * numerator and denominator cover the same people. */
static int member2_cb(void *ud, uint32_t id)
{
	acc *a = ud;
	vg_agg_ctx *c = a->c;
	const vg_passage *succ;
	if (!vg_read_territory_is_leaf(c->r, id) ||
	    vg_read_territory_successors(c->r, id, &succ))
		return 0;
	if (via_passage(a, id))
		return 0;
	uint32_t ha = holder_of(a, 0, id), hb = holder_of(a, 1, id);
	a->found[0] |= ha != 0;
	a->found[1] |= hb != 0;
	if (!ha || !hb) {
		/* One input has nothing for this member. Its denominator
		 * still counts in the total when stored at the leaf. */
		uint32_t h = ha ? ha : hb;
		vg_acc_outcome o = VG_ACC_MISSING;
		if (h && input(c, ha ? 0 : 1)->st[h] == VG_STATUS_SUPPRESSED)
			o = VG_ACC_SUPPRESSED;
		if (hb == id && c->seen[id] != c->sc->stamp) {
			c->seen[id] = c->sc->stamp;
			c->contrib[id] = (uint8_t)o;
			vg_acc_add_weight(&a->acc, c->b.val[id], c->b.st[id],
					  1.0);
		}
		vg_acc_member(&a->acc, o, false);
		return 0;
	}
	uint32_t unit = ha == hb	      ? ha
			: above(c->r, hb, ha) ? hb
			: above(c->r, ha, hb) ? ha
					      : a->target;
	if (c->seen[unit] != c->sc->stamp) {
		c->seen[unit] = c->sc->stamp;
		c->contrib[unit] =
		    (uint8_t)(ha == hb ? (a->inputs[0].stored++,
					  a->inputs[1].stored++,
					  note_level(c->r, &a->inputs[0], unit),
					  note_level(c->r, &a->inputs[1], unit),
					  add_unit(a, unit, 1.0))
				       : pair_at(a, unit));
	}
	vg_acc_member(&a->acc, (vg_acc_outcome)c->contrib[unit], false);
	return a->rc;
}

/* A member of a target for which an input has nothing stored: counted,
 * missing. */
static int count_cb(void *ud, uint32_t id)
{
	acc *a = ud;
	const vg_passage *succ;
	if (vg_read_territory_is_leaf(a->c->r, id) &&
	    !vg_read_territory_successors(a->c->r, id, &succ))
		vg_acc_member(&a->acc, VG_ACC_MISSING, false);
	return 0;
}

/* ---- why no value
 * ------------------------------------------------------------ */

/* The nearest territory above `t` (parents, breadth first) storing input
 * x for the period; 0: none. */
static uint32_t stored_above(vg_agg_ctx *c, int x, uint32_t t)
{
	uint32_t id =
	    x == 0 && !two_inputs(c) ? c->ind_ids[0] : c->ind_ids[1 + x];
	if (!id)
		return 0;
	uint32_t frontier[VG_MAX_PARENTS * 4], next[VG_MAX_PARENTS * 4];
	size_t nf = vg_read_territory_parents(c->r, t, frontier);
	for (int depth = 0; depth < 5 && nf; depth++) {
		size_t nn = 0;
		for (size_t i = 0; i < nf; i++) {
			vg_point p;
			if (vg_read_point(c->r, id, frontier[i], c->period,
					  c->as_of, &p) == 0)
				return frontier[i];
			uint32_t up[VG_MAX_PARENTS];
			size_t k =
			    vg_read_territory_parents(c->r, frontier[i], up);
			for (size_t j = 0;
			     j < k && nn < (sizeof(next) / sizeof(*next)); j++)
				next[nn++] = up[j];
		}
		memcpy(frontier, next, nn * sizeof(uint32_t));
		nf = nn;
	}
	return 0;
}

/* Fill out->why for a value that is missing. */
static void explain(vg_agg_ctx *c, const acc *a, vg_agg_value *out)
{
	if (!isnan(out->value))
		return;
	int nin = two_inputs(c) ? 2 : 1;
	for (int x = 0; x < nin; x++)
		if (two_inputs(c) && c->undefined[x]) {
			out->why = VG_WHY_UNDEFINED_INPUT;
			out->why_input = (uint8_t)x;
			return;
		}
	for (int x = 0; x < nin; x++) {
		if (a && a->found[x])
			continue;
		uint32_t t = stored_above(c, x, out->terr);
		if (t) {
			out->why = VG_WHY_ABOVE;
			out->why_input = (uint8_t)x;
			out->why_terr = t;
			return;
		}
	}
	bool found = a && (a->found[0] || (nin == 2 && a->found[1]));
	if (c->ind.agg.kind == VG_AGG_NONE)
		out->why = VG_WHY_RULE_NONE;
	else if (!found)
		out->why = VG_WHY_NO_DATA;
	else if (out->cov.with_data)
		out->why = VG_WHY_ZERO_DENOMINATOR; /* entered, no ratio */
	else if (out->cov.suppressed && !out->cov.missing)
		out->why = VG_WHY_SUPPRESSED;
	else
		out->why = VG_WHY_MISSING;
}

int vg_agg_value_at(vg_agg_ctx *c, uint32_t target, vg_agg_value *out,
		    vg_error *err)
{
	memset(out, 0, sizeof(*out));
	out->terr = target;
	out->value = NAN;
	out->status = VG_STATUS_MISSING;
	out->cov.weight_total = out->cov.weight_covered = NAN;
	out->inputs[0].level = out->inputs[1].level = -1;
	if (target == 0 || target >= c->n)
		return vg_error_set(err, VG_ENOTFOUND, "no territory #%u",
				    target);
	int lrc = ensure_loaded(c, target, err);
	if (lrc)
		return lrc;
	/* A commune whose old codes hold values for this period: what is
	 * published under its code is only the old commune that kept it. */
	acc pa = {.c = c, .target = target};
	vg_acc_init(&pa.acc, c->ind.agg.kind);
	pass_state ps = {false, VG_ACC_ENTERED};
	passage_walk(&pa, target, 1.0, PASS_SCAN, 0, &ps);
	/* A perimeter whose membership at this period is an older version
	 * (one array look-up for any other territory). What is published at
	 * it for the period is a figure of that older membership: right for
	 * the perimeter as it was, wrong for a constant perimeter, which is
	 * then computed from the latest members. */
	vg_membership_info mi;
	bool older = vg_read_perimeter_membership(c->r, target, c->period,
						  false, &mi) == 0 &&
		     !mi.latest;
	bool own = !ps.any && !(older && c->membership == VG_MEMBERSHIP_LATEST);
	if (c->self.st[target] != ABSENT && own) {
		out->source = VG_SOURCE_PUBLISHED;
		out->value = c->self.val[target];
		out->status = (vg_status)c->self.st[target];
		return 0;
	}
	vg_agg_kind k = c->ind.agg.kind;
	if (k == VG_AGG_NONE) {
		explain(c, NULL, out);
		return 0;
	}
	bool two = two_inputs(c);
	acc a = {
	    .c = c, .target = target, .target_unit = two && own, .err = err};
	a.inputs[0].level = a.inputs[1].level = -1;
	a.inputs[0].ind = c->ind_ids[1];
	a.inputs[1].ind = c->ind_ids[2];
	vg_acc_init(&a.acc, k);
	a.any_stored[0] = input_filled(c, 0);
	a.any_stored[1] = two && input_filled(c, 1);
	if (two && own && usable(c->a.st[target]) && usable(c->b.st[target])) {
		/* Both inputs are published at the target itself: they are
		 * the best numbers there are for it. Coverage counts the
		 * target as its one member. */
		vg_acc_member(&a.acc, add_unit(&a, target, 1.0), false);
		for (int x = 0; x < 2; x++) {
			a.inputs[x].stored = 1;
			note_level(c->r, &a.inputs[x], target);
		}
		out->source = VG_SOURCE_COMPUTED;
		out->cov = a.acc.cov;
		memcpy(out->inputs, a.inputs, sizeof(out->inputs));
		out->value =
		    vg_acc_result(&a.acc, c->ind.agg.scale, &out->status);
		explain(c, &a, out);
		return 0;
	}
	/* As it was: the descendants index holds the latest members, so
	 * compute over that version's members as a list (same rules and
	 * coverage). */
	if (older && c->membership == VG_MEMBERSHIP_IN_FORCE) {
		int rc = vg__agg_value_members(c->r, c->ind_ids[0], c->period,
					       c->as_of, mi.members,
					       mi.nmembers, out, err);
		out->terr = target;
		return rc;
	}
	if (two && (c->undefined[0] || c->undefined[1])) {
		/* An input is not defined: no value anywhere, and the
		 * answer says why without visiting the members. */
		explain(c, &a, out);
		return 0;
	}
	bool empty = !a.any_stored[0] || (two && !a.any_stored[1]);
	if (++c->sc->stamp == 0) { /* wrapped: clear once every 4 G targets */
		memset(c->seen, 0, c->sc->n * sizeof(uint32_t));
		memset(c->sc->wstamp, 0, c->sc->n * sizeof(uint32_t));
		for (int x = 0; x < 2; x++)
			memset(c->sc->hstamp[x], 0,
			       c->sc->n * sizeof(uint32_t));
		c->sc->stamp = 1;
	}
	uint16_t nl = vg_read_level_count(c->r);
	/* Nothing stored for an input within the target (nor for the old
	 * codes it replaced): its members are only counted, as missing. */
	vg_id_cb cb = empty ? count_cb : two ? member2_cb : member_cb;
	for (uint16_t l = 0; l < nl && !a.rc; l++)
		a.rc = vg_read_descendants(c->r, target, l, cb, &a);
	if (a.rc)
		return err && err->code
			   ? a.rc
			   : vg_error_set(err, a.rc, "cannot read the members");
	out->cov = a.acc.cov;
	if (two)
		memcpy(out->inputs, a.inputs, sizeof(out->inputs));
	if (a.acc.cov.members) {
		out->source = VG_SOURCE_COMPUTED;
		out->value =
		    vg_acc_result(&a.acc, c->ind.agg.scale, &out->status);
	}
	explain(c, &a, out);
	return 0;
}

typedef struct level_ctx {
	vg_agg_ctx *c;
	uint16_t level;
	vg_agg_cb cb;
	void *ud;
	vg_error *err;
} level_ctx;

static int level_cb(void *ud, uint32_t id)
{
	level_ctx *x = ud;
	vg_agg_value v;
	const vg_passage *succ;
	/* Old codes have the level of what replaced them (com) but are not
	 * territories of the current geography: a level lists only those. */
	if (vg_read_territory_successors(x->c->r, id, &succ))
		return 0;
	int rc = vg_agg_value_at(x->c, id, &v, x->err);
	return rc ? rc : x->cb(x->ud, &v);
}

typedef struct idvec {
	uint32_t *v;
	size_t n, cap;
	bool oom;
} idvec;

static int collect_cb(void *ud, uint32_t id)
{
	idvec *iv = ud;
	if (iv->n == iv->cap) {
		size_t ncap = iv->cap ? iv->cap * 2 : 256;
		uint32_t *nv = realloc(iv->v, ncap * sizeof(*nv));
		if (!nv) {
			iv->oom = true;
			return 1; /* stop */
		}
		iv->v = nv;
		iv->cap = ncap;
	}
	iv->v[iv->n++] = id;
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The territories of `level` within perimeter p as it was at the
 * context's period, when that membership is an older version: the
 * descendants index holds the latest one only. Members never overlap
 * (checked when the version was written), so nothing comes twice. */
static int level_within_version(vg_agg_ctx *c, const vg_membership_info *mi,
				level_ctx *x)
{
	idvec iv = {0};
	int rc = 0;
	for (uint32_t m = 0; m < mi->nmembers && !rc; m++) {
		rc = ensure_loaded(c, mi->members[m], x->err);
		if (!rc)
			rc = vg_read_descendants(c->r, mi->members[m], x->level,
						 collect_cb, &iv);
		if (iv.oom)
			rc = vg_error_set(x->err, VG_ENOMEM, "out of memory");
	}
	if (!rc && iv.n > 1)
		qsort(iv.v, iv.n, sizeof(*iv.v), cmp_id); /* definition order */
	for (size_t i = 0; i < iv.n && !rc; i++)
		rc = level_cb(x, iv.v[i]);
	free(iv.v);
	return rc;
}

int vg_aggregate_level(vg_agg_ctx *c, uint16_t level, uint32_t within,
		       vg_agg_cb cb, void *ud, vg_error *err)
{
	level_ctx x = {c, level, cb, ud, err};
	vg_membership_info mi;
	if (within && c->membership == VG_MEMBERSHIP_IN_FORCE &&
	    vg_read_perimeter_membership(c->r, within, c->period, false, &mi) ==
		0 &&
	    !mi.latest)
		return level_within_version(c, &mi, &x);
	int rc = ensure_loaded(c, within, err);
	if (rc)
		return rc;
	if (within)
		return vg_read_descendants(c->r, within, level, level_cb, &x);
	const char *name = vg_read_level_name(c->r, level);
	if (!name)
		return vg_error_set(err, VG_ENOTFOUND, "no level #%u", level);
	return vg_read_territories(c->r, name, level_cb, &x);
}
