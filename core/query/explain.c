/* Why a value is missing, as a sentence for the answers (vg_agg_explain,
 * vigie/query.h). The engine finds the reason (vg_why); this names the
 * indicators and territories. */
#include <stdio.h>
#include <string.h>

#include "vigie/query.h"

/* The code of input x of `ind`'s rule: the indicator itself for rules of
 * one input. */
static const char *input_code(const vg_indicator *m, int x)
{
	if (m->agg.kind == VG_AGG_RATIO || m->agg.kind == VG_AGG_WMEAN)
		return x ? m->agg.b : m->agg.a;
	return m->code;
}

char *vg_agg_explain(vg_read *r, uint32_t ind, const vg_agg_value *v, char *buf,
		     size_t n)
{
	if (!n)
		return buf;
	buf[0] = '\0';
	if (v->why == VG_WHY_NONE)
		return buf;
	vg_indicator m;
	if (vg_read_indicator(r, ind, &m, NULL)) {
		snprintf(buf, n, "no value");
		return buf;
	}
	const char *t = vg_read_territory_code(r, v->terr);
	const char *in = input_code(&m, v->why_input);
	t = t ? t : "?";
	switch (v->why) {
	case VG_WHY_NONE: break;
	case VG_WHY_NO_DATA:
		snprintf(buf, n,
			 "nothing is stored for %s within %s for this "
			 "period",
			 m.code, t);
		break;
	case VG_WHY_ABOVE: {
		const char *at = vg_read_territory_code(r, v->why_terr);
		uint16_t l;
		const char *lv =
		    vg_read_territory_level(r, v->why_terr, &l) == 0
			? vg_read_level_name(r, l)
			: NULL;
		snprintf(buf, n,
			 "%s is stored for %s (level %s) and not below it: a "
			 "value for %s cannot be derived from it",
			 in, at ? at : "?", lv ? lv : "?", t);
		break;
	}
	case VG_WHY_SUPPRESSED:
		snprintf(buf, n,
			 "every member of %s with data is suppressed (secret "
			 "statistique)",
			 t);
		break;
	case VG_WHY_MISSING:
		snprintf(buf, n, "no member of %s has a usable value of %s", t,
			 m.code);
		break;
	case VG_WHY_RULE_NONE:
		snprintf(buf, n,
			 "%s is never computed (rule none: published values "
			 "only) and nothing is published for %s",
			 m.code, t);
		break;
	case VG_WHY_UNDEFINED_INPUT:
		snprintf(buf, n,
			 "the rule of %s names '%s', which is not defined (the "
			 "plugin or import that defines it has not run)",
			 m.code, in);
		break;
	case VG_WHY_ZERO_DENOMINATOR:
		snprintf(buf, n, "the %s of %s adds up to zero over %s",
			 m.agg.kind == VG_AGG_RATIO ? "denominator" : "weight",
			 m.code, t);
		break;
	case VG_WHY_NO_PERIOD:
		snprintf(buf, n, "%s has no value for %s in any period", m.code,
			 t);
		break;
	}
	return buf;
}
