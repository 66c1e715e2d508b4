/* The query engine: values of an indicator at any territory, computed with
 * the indicator's aggregation rule when not published there.
 *
 * Rules (see docs/indicators.md): `sum`; `ratio(num, den, scale)` is
 * sum(num)/sum(den)*scale over the members that have both, never a mean
 * of the members' ratios; `wmean(value, weight)` is sum(v*w)/sum(w);
 * `min`, `max`; `none` publishes only.
 *
 * Members are the *leaves* within the target: territories with nothing
 * below them (communes, and the arrondissements of Paris, Lyon and
 * Marseille instead of their communes). A leaf without a value of its own
 * is covered by the nearest territory above it, inside the target, that
 * has one (Paris published as commune 75056 covers its arrondissements),
 * unless some leaf below that territory has its own value: mixing the two
 * would count people twice, so those leaves stay uncovered (partial).
 * For `ratio` and `wmean`, when both inputs are published at the target
 * itself, the value is computed from them (coverage: one member). The
 * inputs of a ratio are paired member by member: a member counts only
 * when it has both, so numerator and denominator cover the same people;
 * inputs published at different levels (counts by département,
 * population by commune) therefore do not combine below the target.
 *
 * Passage table (commune mergers and splits, vigie/store.h successors):
 * when old codes a leaf replaced hold values for the period (following
 * chains A -> B -> C), the period was published in an older geography:
 * the leaf's value is the sum of theirs, each multiplied by the share
 * that went to it (ratio inputs each weighted; a wmean's weight weighted,
 * its value not; min/max only through whole successions, weight 1), plus
 * its own if it has one (then it is the old commune that kept the code:
 * Oullins in Oullins-Pierre-Bénite). Either every one of them can enter,
 * or none does and the leaf is partial. Such leaves are counted in
 * cov.via_passage, and a target that is such a leaf is computed, not
 * published. When no old code has a value, nothing changes. Old codes
 * themselves are never members of anything, and vg_aggregate_level does
 * not list them. One indicator's period must therefore be in one
 * geography: points of old codes and a republication of the same period
 * in the current geography would be added up.
 *
 * A value published at the target itself takes precedence; the answer
 * says which it is. Every computed value carries its coverage. The engine
 * never writes. */
#ifndef VIGIE_QUERY_H
#define VIGIE_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "vigie/acc.h"
#include "vigie/store.h"

typedef enum vg_value_source {
	VG_SOURCE_NONE = 0,  /* no value: nothing published, nothing to compute */
	VG_SOURCE_PUBLISHED, /* stored at the target */
	VG_SOURCE_COMPUTED,  /* aggregated from the members */
} vg_value_source;

const char *vg_value_source_name(vg_value_source s);

/* vg_coverage (members, with_data, suppressed, missing, via_passage,
 * weight_total/covered, partial) is in vigie/acc.h. */

/* Why a value is missing, when there is something more precise to say
 * than "no value" (vg_agg_explain writes it as a sentence). */
typedef enum vg_why {
	VG_WHY_NONE = 0,	/* a value, or nothing more to say */
	VG_WHY_NO_DATA,		/* nothing stored within the target */
	VG_WHY_ABOVE,		/* an input is stored only above the target
				   (why_terr: the nearest territory that has
				   it): a commune's value cannot be derived
				   from a département's */
	VG_WHY_SUPPRESSED,	/* every member is suppressed */
	VG_WHY_MISSING,		/* no member has a usable value */
	VG_WHY_RULE_NONE,	/* rule none: only published values, and
				   none is published at the target */
	VG_WHY_UNDEFINED_INPUT, /* the rule names an indicator that is not
				   defined (its plugin has not run) */
	VG_WHY_ZERO_DENOMINATOR, /* ratio/wmean: the denominator or the
				    weight adds up to zero */
	VG_WHY_NO_PERIOD,	/* period=latest: no period has a value */
} vg_why;

/* How one input of a ratio or wmean was obtained for a computed value:
 * the units the numerator and denominator were paired in (communes when
 * both are stored by commune; départements when a count is published by
 * département and the population by commune), and at how many of them
 * the input was stored, or computed from below with its own rule. */
typedef struct vg_input_info {
	uint32_t ind;	   /* the input indicator; 0 when undefined */
	uint32_t stored;   /* units where it was stored */
	uint32_t computed; /* units where it was computed from below */
	uint32_t computed_partial; /* ... of which with partial coverage */
	int32_t level;	   /* level of those units; -1: none, -2: several */
} vg_input_info;

typedef struct vg_agg_value {
	uint32_t terr;
	double value;	  /* NaN when none */
	vg_status status; /* computed: the worst member status (ok <
			     provisional < estimated), missing if no value */
	vg_value_source source;
	vg_coverage cov; /* zero for published values */
	vg_why why;	 /* when value is NaN: why, if it can be said */
	uint8_t why_input; /* VG_WHY_ABOVE/UNDEFINED_INPUT: which input (0:
			      the indicator or its rule's first, 1: the
			      second) */
	uint32_t why_terr; /* VG_WHY_ABOVE: where the input is stored */
	/* ratio and wmean, computed values: the rule's two inputs. */
	vg_input_info inputs[2];
} vg_agg_value;

/* A sentence for v->why ("physicians is stored for dep:85 and above, not
 * below: a value for com:85146 cannot be derived from it"), naming the
 * indicators of `ind`'s rule. Writes "" when v->why is VG_WHY_NONE.
 * Returns buf. */
char *vg_agg_explain(vg_read *r, uint32_t ind, const vg_agg_value *v,
		     char *buf, size_t n);

/* The inputs of one indicator for one period, loaded once (one dense
 * block read per level) and reused for any number of targets. */
typedef struct vg_agg_ctx vg_agg_ctx;

/* Prepare `ind` for `period` as of `as_of` (VG_LATEST: now). The context
 * borrows `r`; free it before vg_read_end. */
int vg_agg_ctx_new(vg_read *r, uint32_t ind, vg_period period, int64_t as_of,
		   vg_agg_ctx **out, vg_error *err);
void vg_agg_ctx_free(vg_agg_ctx *c);
/* The read transaction the context borrows. */
vg_read *vg_agg_ctx_read(vg_agg_ctx *c);

/* Which membership of a perimeter (vigie/store.h, vg_membership) the
 * context uses. IN_FORCE (the default): at each period the version in
 * force then (the perimeter as it was: a CLS's 2019 figures over its 2019
 * communes). LATEST: the latest version for every period (a series on a
 * constant perimeter). When the version used is not the latest, the
 * value is computed over that version's members with the explicit-list
 * aggregator (vg_agg_value_list: same rules, coverage and passage table),
 * unless a value is published at the perimeter itself for the period.
 * With LATEST, a value published at the perimeter for a period whose
 * membership in force is an older version is skipped (it counts other
 * communes) and the latest members are computed.
 * vg_read_perimeter_membership says which version a target gets. */
typedef enum vg_membership_mode {
	VG_MEMBERSHIP_IN_FORCE = 0,
	VG_MEMBERSHIP_LATEST,
} vg_membership_mode;
void vg_agg_ctx_set_membership(vg_agg_ctx *c, vg_membership_mode m);
/* The membership mode and period of a context. */
vg_membership_mode vg_agg_ctx_membership(const vg_agg_ctx *c);
vg_period vg_agg_ctx_period(const vg_agg_ctx *c);

/* The value at one territory (a commune, an EPCI, a perimeter...). */
int vg_agg_value_at(vg_agg_ctx *c, uint32_t target, vg_agg_value *out,
		    vg_error *err);

/* Every territory of `level`, optionally within `within` (0: all), in
 * rank order; the callback gets each value. A perimeter `within` whose
 * membership in force at the context's period is an older version (mode
 * IN_FORCE) gives that version's members and their descendants. */
typedef int (*vg_agg_cb)(void *ud, const vg_agg_value *v);
int vg_aggregate_level(vg_agg_ctx *c, uint16_t level, uint32_t within,
		       vg_agg_cb cb, void *ud, vg_error *err);


/* ---- period=latest ------------------------------------------------------- */

/* The periods worth trying for `ind`, newest first: those for which it,
 * or an input of its rule, has stored points (of its periodicity). *out
 * is malloc'd (the caller frees it), NULL when *n is 0. */
int vg_agg_periods(vg_read *r, uint32_t ind, vg_period **out, size_t *n,
		   vg_error *err);

/* The most recent period at which `target` has a value of `ind`
 * (published or computed), as of `as_of`; *out = 0 when none. */
int vg_agg_latest(vg_read *r, uint32_t ind, uint32_t target, int64_t as_of,
		  vg_membership_mode mode, vg_period *out, vg_error *err);

/* The most recent period at which some territory of `level` within
 * `within` (0: all) has a value of `ind`, stored or computed; *out = 0
 * when none. */
int vg_agg_latest_level(vg_read *r, uint32_t ind, uint16_t level,
			uint32_t within, int64_t as_of,
			vg_membership_mode mode, vg_period *out,
			vg_error *err);

/* ---- an explicit list of territories ----------------------------------- */

#define VG_AGG_LIST_MAX 2000

/* The value of `ind` over a list of territories that is not stored as a
 * perimeter (e.g. communes picked on a map): each member computed with
 * the engine, then combined with the indicator's rule (ratio: summed
 * numerators over summed denominators; wmean: weighted by the summed
 * weights; never a mean of the members' rates). out->terr is 0; the
 * coverage adds up the members'. Errors: VG_EINVAL (empty list, a member
 * within another, rule none), VG_ETOOBIG (more than VG_AGG_LIST_MAX). */
int vg_agg_value_list(vg_read *r, uint32_t ind, vg_period period,
		      int64_t as_of, const uint32_t *ids, size_t n,
		      vg_agg_value *out, vg_error *err);

/* ---- compare and rank -------------------------------------------------- */

/* The target first, then each territory above it (its parents, their
 * parents..., nearest first, each once), then France (`fr`) if not
 * already listed: the "compare with the département, the région and
 * France" of a portrait de territoire. Calls cb for each value in that
 * order; `depth` is 0 for the target, 1 for its parents... */
typedef int (*vg_compare_cb)(void *ud, const vg_agg_value *v, int depth);
int vg_compare(vg_agg_ctx *c, uint32_t target, vg_compare_cb cb, void *ud,
	       vg_error *err);

typedef struct vg_rank {
	uint32_t position; /* 1 = highest value; 0 when the target has none */
	uint32_t position_asc; /* 1 = lowest value (ties share it); 0 too */
	uint32_t count;    /* territories of its level within `within` with a
			      value */
	double percentile; /* share of those with a lower value, 0-100 */
	vg_agg_value value;
} vg_rank;

/* Rank of `target` among the territories of its level within `within`
 * (e.g. a commune among the communes of its EPCI), by value, highest
 * first; ties share the better position. */
int vg_rank_of(vg_agg_ctx *c, uint32_t target, uint32_t within, vg_rank *out,
	       vg_error *err);

/* ---- profile and disparities --------------------------------------------- */

/* The portrait of a territory: for every indicator of the period's
 * periodicity, the vg_compare rows (the territory, its containers,
 * France), each with the period used. `period` 0 means latest: for every
 * indicator, the most recent period at which the territory has a value;
 * when it has none in any period (a count published only by
 * département, asked for a commune), the most recent at which one of its
 * containers has one, so that the rows still compare; when no row has a
 * value in any period, one row for the territory with VG_WHY_NO_PERIOD
 * and period 0. An indicator whose rule names an undefined indicator
 * gives rows without values that say so (VG_WHY_UNDEFINED_INPUT). */
typedef int (*vg_profile_cb)(void *ud, uint32_t ind, vg_period period,
			     const vg_agg_value *v, int depth);
int vg_profile(vg_read *r, uint32_t target, vg_period period, int64_t as_of,
	       vg_membership_mode mode, vg_profile_cb cb, void *ud,
	       vg_error *err);

typedef struct vg_disparity {
	uint32_t count;     /* territories of the level within the target */
	uint32_t with_data; /* ... that have a value */
	double min, q1, median, q3, max; /* NaN when with_data == 0 */
	double max_min_ratio;            /* NaN when min <= 0 */
	uint32_t min_terr, max_terr;
} vg_disparity;

/* Spread of the values of the territories of `level` within `target`
 * (socio-territorial inequalities: its communes, its EPCI...). Quartiles
 * by linear interpolation between order statistics (R type 7). */
int vg_disparity_of(vg_agg_ctx *c, uint32_t target, uint16_t level,
		    vg_disparity *out, vg_error *err);

#endif
