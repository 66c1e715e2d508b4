/* Metadata records: statuses, aggregation rules, code syntax, and the
 * JSON forms of indicators and territories. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store_int.h"
#include "vigie/common.h"

static const char *const status_names[] = {
	[VG_STATUS_OK] = "ok",
	[VG_STATUS_PROVISIONAL] = "provisional",
	[VG_STATUS_ESTIMATED] = "estimated",
	[VG_STATUS_SUPPRESSED] = "suppressed",
	[VG_STATUS_MISSING] = "missing",
};

int vg_status_parse(const char *s, size_t len, vg_status *out)
{
	for (size_t i = 0; i < sizeof(status_names) / sizeof(*status_names);
	     i++) {
		if (strlen(status_names[i]) == len &&
		    strncasecmp(s, status_names[i], len) == 0) {
			*out = (vg_status)i;
			return 0;
		}
	}
	return VG_EINVAL;
}

const char *vg_status_name(vg_status st)
{
	if ((unsigned)st < sizeof(status_names) / sizeof(*status_names))
		return status_names[st];
	return "unknown";
}

/* ---- codes ----------------------------------------------------------- */

int vg_indicator_code_check(const char *code, vg_error *err)
{
	size_t n = strlen(code);
	if (n == 0 || n >= VG_CODE_MAX)
		return vg_error_set(err, VG_EINVAL,
				    "indicator code '%s' must have 1 to %d "
				    "characters", code, VG_CODE_MAX - 1);
	if (!(code[0] >= 'a' && code[0] <= 'z'))
		return vg_error_set(err, VG_EINVAL,
				    "indicator code '%s' must start with a "
				    "lowercase letter", code);
	for (size_t i = 0; i < n; i++) {
		char c = code[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return vg_error_set(err, VG_EINVAL,
					    "indicator code '%s': character "
					    "'%c' not allowed (use a-z, 0-9, "
					    "_)", code, c);
	}
	return 0;
}

static bool level_ok(const char *l, size_t n)
{
	if (n == 0 || n >= VG_LEVEL_MAX || !(l[0] >= 'a' && l[0] <= 'z'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((l[i] >= 'a' && l[i] <= 'z') ||
		      (l[i] >= '0' && l[i] <= '9') || l[i] == '_'))
			return false;
	return true;
}

int vg_territory_code_canon(const char *level, const char *raw, char *out,
			    char *level_out, vg_error *err)
{
	char lv[VG_LEVEL_MAX] = "";
	const char *code = raw;
	const char *colon = strchr(raw, ':');

	if (strcasecmp(raw, "fr") == 0 ||
	    (level && strcasecmp(level, "fr") == 0 &&
	     (!*raw || strcasecmp(raw, "fr") == 0))) {
		if (out)
			strcpy(out, "fr");
		if (level_out)
			strcpy(level_out, "fr");
		return 0;
	}
	if (colon) {
		size_t n = (size_t)(colon - raw);
		if (n >= VG_LEVEL_MAX)
			return vg_error_set(err, VG_EINVAL,
					    "territory code '%s': level too "
					    "long", raw);
		for (size_t i = 0; i < n; i++)
			lv[i] = (char)tolower((unsigned char)raw[i]);
		lv[n] = '\0';
		code = colon + 1;
		if (level && *level && strcasecmp(level, lv) != 0)
			return vg_error_set(err, VG_EINVAL,
					    "territory code '%s' has level "
					    "'%s' but the level given is '%s'",
					    raw, lv, level);
	} else {
		if (!level || !*level)
			return vg_error_set(err, VG_EINVAL,
					    "territory code '%s' needs a level "
					    "(write it as level:code, e.g. "
					    "com:%s)", raw, raw);
		size_t n = strlen(level);
		if (n >= VG_LEVEL_MAX)
			return vg_error_set(err, VG_EINVAL,
					    "level '%s' too long", level);
		for (size_t i = 0; i <= n; i++)
			lv[i] = (char)tolower((unsigned char)level[i]);
	}
	if (!level_ok(lv, strlen(lv)))
		return vg_error_set(err, VG_EINVAL,
				    "territory code '%s': level '%s' must be "
				    "lowercase letters, digits or _", raw, lv);
	size_t cn = strlen(code);
	if (cn == 0)
		return vg_error_set(err, VG_EINVAL,
				    "territory code '%s' has no code after "
				    "the level", raw);
	for (size_t i = 0; i < cn; i++) {
		char c = code[i];
		if (!(isalnum((unsigned char)c) || c == '_' || c == '-' ||
		      c == '.'))
			return vg_error_set(err, VG_EINVAL,
					    "territory code '%s': character "
					    "'%c' not allowed", raw, c);
	}
	if (strlen(lv) + 1 + cn >= VG_CODE_MAX)
		return vg_error_set(err, VG_EINVAL,
				    "territory code '%s' is too long", raw);
	size_t ln = strlen(lv);
	if (out) {
		/* Lengths checked above; raw may alias out. */
		char tmp[VG_CODE_MAX];
		memcpy(tmp, lv, ln);
		tmp[ln] = ':';
		memcpy(tmp + ln + 1, code, cn + 1);
		memcpy(out, tmp, ln + cn + 2);
	}
	if (level_out)
		memcpy(level_out, lv, ln + 1);
	return 0;
}

void vg_territory_clear(vg_territory *t)
{
	if (!t)
		return;
	free(t->members);
	for (size_t i = 0; i < t->nversions; i++)
		free(t->versions[i].members);
	free(t->versions);
	memset(t, 0, sizeof(*t));
}

/* ---- aggregation rules ----------------------------------------------- */

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Reads an identifier or a number into buf; returns the end. */
static const char *read_arg(const char *p, char *buf, size_t n)
{
	size_t i = 0;
	p = skip_ws(p);
	while (*p && *p != ',' && *p != ')' && *p != ' ' && *p != '\t') {
		if (i + 1 < n)
			buf[i++] = *p;
		p++;
	}
	buf[i] = '\0';
	return skip_ws(p);
}

int vg_agg_parse(const char *s, const char *self, vg_agg_rule *out,
		 vg_error *err)
{
	static const struct {
		const char *name;
		vg_agg_kind kind;
		int nargs_min, nargs_max;
	} rules[] = {
		{ "none", VG_AGG_NONE, 0, 0 },	 { "sum", VG_AGG_SUM, 0, 0 },
		{ "min", VG_AGG_MIN, 0, 0 },	 { "max", VG_AGG_MAX, 0, 0 },
		{ "ratio", VG_AGG_RATIO, 2, 3 }, { "wmean", VG_AGG_WMEAN, 1, 2 },
	};
	memset(out, 0, sizeof(*out));
	out->scale = 1;
	const char *p = skip_ws(s);
	size_t n = 0;
	while (isalpha((unsigned char)p[n]))
		n++;
	int r = -1;
	for (size_t i = 0; i < VG_ARRAY_LEN(rules); i++)
		if (strlen(rules[i].name) == n &&
		    strncmp(p, rules[i].name, n) == 0)
			r = (int)i;
	if (r < 0)
		return vg_error_set(err, VG_EPARSE,
				    "aggregation rule '%s': unknown rule "
				    "(expected sum, ratio(num, den, scale), "
				    "wmean(value, weight), min, max or none)",
				    s);
	out->kind = rules[r].kind;
	p = skip_ws(p + n);
	char args[3][VG_CODE_MAX];
	int nargs = 0;
	if (*p == '(') {
		p++;
		for (;;) {
			if (nargs == 3)
				return vg_error_set(err, VG_EPARSE,
						    "aggregation rule '%s': "
						    "too many arguments", s);
			p = read_arg(p, args[nargs], sizeof(args[0]));
			if (!args[nargs][0])
				return vg_error_set(err, VG_EPARSE,
						    "aggregation rule '%s': "
						    "empty argument", s);
			nargs++;
			if (*p == ',') {
				p++;
				continue;
			}
			if (*p == ')') {
				p = skip_ws(p + 1);
				break;
			}
			return vg_error_set(err, VG_EPARSE,
					    "aggregation rule '%s': expected "
					    "',' or ')'", s);
		}
	}
	if (*p)
		return vg_error_set(err, VG_EPARSE,
				    "aggregation rule '%s': unexpected '%s'",
				    s, p);
	if (nargs < rules[r].nargs_min || nargs > rules[r].nargs_max)
		return vg_error_set(err, VG_EPARSE,
				    "aggregation rule '%s': %s takes %d to %d "
				    "arguments, got %d", s, rules[r].name,
				    rules[r].nargs_min, rules[r].nargs_max,
				    nargs);
	if (out->kind == VG_AGG_RATIO) {
		snprintf(out->a, sizeof(out->a), "%s", args[0]);
		snprintf(out->b, sizeof(out->b), "%s", args[1]);
		if (nargs == 3) {
			char *end;
			out->scale = strtod(args[2], &end);
			if (*end || !isfinite(out->scale) || out->scale <= 0)
				return vg_error_set(err, VG_EPARSE,
						    "aggregation rule '%s': "
						    "scale '%s' is not a "
						    "positive number", s,
						    args[2]);
		}
	} else if (out->kind == VG_AGG_WMEAN) {
		if (nargs == 1) {
			snprintf(out->a, sizeof(out->a), "%s",
				 self ? self : "");
			snprintf(out->b, sizeof(out->b), "%s", args[0]);
		} else {
			snprintf(out->a, sizeof(out->a), "%s", args[0]);
			snprintf(out->b, sizeof(out->b), "%s", args[1]);
		}
	}
	for (int i = 0; i < 2; i++) {
		const char *c = i ? out->b : out->a;
		if (*c && vg_indicator_code_check(c, NULL))
			return vg_error_set(err, VG_EPARSE,
					    "aggregation rule '%s': '%s' is "
					    "not an indicator code", s, c);
	}
	return 0;
}

void vg_agg_format(const vg_agg_rule *r, char *buf, size_t n)
{
	switch (r->kind) {
	case VG_AGG_NONE: snprintf(buf, n, "none"); break;
	case VG_AGG_SUM: snprintf(buf, n, "sum"); break;
	case VG_AGG_MIN: snprintf(buf, n, "min"); break;
	case VG_AGG_MAX: snprintf(buf, n, "max"); break;
	case VG_AGG_RATIO:
		if (r->scale == 1)
			snprintf(buf, n, "ratio(%s, %s)", r->a, r->b);
		else
			snprintf(buf, n, "ratio(%s, %s, %.15g)", r->a, r->b,
				 r->scale);
		break;
	case VG_AGG_WMEAN: snprintf(buf, n, "wmean(%s, %s)", r->a, r->b); break;
	}
}

/* ---- JSON ------------------------------------------------------------ */

static void add_str(cJSON *o, const char *k, const char *v)
{
	if (v && *v)
		cJSON_AddStringToObject(o, k, v);
}

cJSON *vg_indicator_to_json(const vg_indicator *ind)
{
	cJSON *o = cJSON_CreateObject();
	char agg[200];
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "code", ind->code);
	add_str(o, "label", ind->label);
	add_str(o, "unit", ind->unit);
	add_str(o, "description", ind->description);
	add_str(o, "source", ind->source);
	add_str(o, "licence", ind->licence);
	cJSON_AddStringToObject(o, "periodicity",
				vg_periodicity_name(ind->periodicity));
	if (ind->decimals >= 0)
		cJSON_AddNumberToObject(o, "decimals", ind->decimals);
	vg_agg_format(&ind->agg, agg, sizeof(agg));
	cJSON_AddStringToObject(o, "aggregate", agg);
	return o;
}

/* One table drives which keys an indicator object may have: a key not in
 * it is an error, so a typo ("licence" vs "license") is caught. */
typedef struct {
	const char *key;
	size_t off, size; /* string fields: where in vg_indicator */
} str_field;

static const str_field ind_str_fields[] = {
	{ "code", offsetof(vg_indicator, code), VG_CODE_MAX },
	{ "label", offsetof(vg_indicator, label), 256 },
	{ "unit", offsetof(vg_indicator, unit), 64 },
	{ "description", offsetof(vg_indicator, description), 2048 },
	{ "source", offsetof(vg_indicator, source), 256 },
	{ "licence", offsetof(vg_indicator, licence), 128 },
};

static int ind_err(vg_error *err, const char *where, long index,
		   const char *fmt, const char *a, const char *b)
{
	char msg[400];
	snprintf(msg, sizeof(msg), fmt, a, b);
	if (index >= 0)
		return vg_error_at(err, VG_EINVAL, where, 0, 0,
				   "indicator #%ld: %s", index + 1, msg);
	return vg_error_at(err, VG_EINVAL, where, 0, 0, "indicator: %s", msg);
}

int vg_indicator_from_json(const cJSON *obj, vg_indicator *out,
			   const char *where, long index, vg_error *err)
{
	memset(out, 0, sizeof(*out));
	out->decimals = -1;
	out->periodicity = VG_YEAR;
	if (!cJSON_IsObject(obj))
		return ind_err(err, where, index, "%s%sis not an object", "",
			       "");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
	const char *cname = cJSON_IsString(code) ? code->valuestring : "?";
	const char *agg = "none";

	for (const cJSON *it = obj->child; it; it = it->next) {
		const char *k = it->string;
		bool known = false;
		for (size_t i = 0; i < VG_ARRAY_LEN(ind_str_fields); i++) {
			const str_field *f = &ind_str_fields[i];
			if (strcmp(k, f->key) != 0)
				continue;
			known = true;
			if (!cJSON_IsString(it))
				return ind_err(err, where, index,
					       "'%s' (%s): must be a string",
					       k, cname);
			if (strlen(it->valuestring) >= f->size) {
				char lim[32];
				snprintf(lim, sizeof(lim), "%zu", f->size - 1);
				return ind_err(err, where, index,
					       "'%s' longer than %s bytes", k,
					       lim);
			}
			strcpy((char *)out + f->off, it->valuestring);
		}
		if (known)
			continue;
		if (strcmp(k, "periodicity") == 0) {
			if (!cJSON_IsString(it) ||
			    vg_periodicity_parse(it->valuestring,
						 &out->periodicity))
				return ind_err(err, where, index,
					       "'periodicity' of %s must be "
					       "one of year, quarter, month, "
					       "day%s", cname, "");
		} else if (strcmp(k, "decimals") == 0) {
			if (!cJSON_IsNumber(it) || it->valuedouble < 0 ||
			    it->valuedouble > 15 ||
			    it->valuedouble != (int)it->valuedouble)
				return ind_err(err, where, index,
					       "'decimals' of %s must be an "
					       "integer from 0 to 15%s", cname,
					       "");
			out->decimals = (int)it->valuedouble;
		} else if (strcmp(k, "aggregate") == 0) {
			if (!cJSON_IsString(it))
				return ind_err(err, where, index,
					       "'aggregate' of %s must be a "
					       "string%s", cname, "");
			agg = it->valuestring;
		} else {
			return ind_err(err, where, index,
				       "unknown key '%s' (in %s); known keys: "
				       "code, label, unit, description, source, "
				       "licence, periodicity, decimals, "
				       "aggregate", k, cname);
		}
	}
	if (!out->code[0])
		return ind_err(err, where, index, "'code' is missing%s%s", "",
			       "");
	int rc = vg_indicator_code_check(out->code, err);
	if (rc) {
		if (err) {
			vg_error e2 = *err;
			return ind_err(err, where, index, "%s%s", e2.msg, "");
		}
		return rc;
	}
	vg_error aerr;
	vg_error_clear(&aerr);
	if (vg_agg_parse(agg, out->code, &out->agg, &aerr))
		return ind_err(err, where, index, "%s (in %s)", aerr.msg,
			       out->code);
	return 0;
}

char *vg__indicator_json(const vg_indicator *ind)
{
	cJSON *o = vg_indicator_to_json(ind);
	char *s = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	return s;
}

int vg__indicator_parse(const char *json, size_t len, vg_indicator *out,
			vg_error *err)
{
	cJSON *o = cJSON_ParseWithLength(json, len);
	if (!o)
		return vg_error_set(err, VG_ESTORE,
				    "corrupt indicator record in the store");
	int rc = vg_indicator_from_json(o, out, NULL, -1, err);
	cJSON_Delete(o);
	return rc;
}

cJSON *vg_territory_to_json(const vg_territory *t)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "code", t->code);
	cJSON_AddStringToObject(o, "level", t->level);
	cJSON_AddStringToObject(o, "name", t->name);
	cJSON *p = cJSON_AddArrayToObject(o, "parents");
	for (size_t i = 0; i < t->nparents; i++)
		cJSON_AddItemToArray(p, cJSON_CreateString(t->parents[i]));
	if (t->nmembers) {
		cJSON *m = cJSON_AddArrayToObject(o, "members");
		for (size_t i = 0; i < t->nmembers; i++)
			cJSON_AddItemToArray(m,
					     cJSON_CreateString(t->members[i]));
	}
	/* Versions only when membership changes over time: a perimeter
	 * defined once keeps the record it always had. */
	if (t->nversions > 1 || (t->nversions == 1 && t->versions[0].has_from)) {
		cJSON *vs = cJSON_AddArrayToObject(o, "versions");
		for (size_t i = 0; i < t->nversions; i++) {
			const vg_membership *v = &t->versions[i];
			cJSON *e = cJSON_CreateObject();
			char buf[VG_PERIOD_STRLEN];
			if (v->has_from &&
			    vg_period_format(v->from, buf, sizeof(buf)) == 0)
				cJSON_AddStringToObject(e, "from", buf);
			else
				cJSON_AddNullToObject(e, "from");
			cJSON *m = cJSON_AddArrayToObject(e, "members");
			for (size_t k = 0; k < v->nmembers; k++)
				cJSON_AddItemToArray(
					m, cJSON_CreateString(v->members[k]));
			cJSON_AddItemToArray(vs, e);
		}
	}
	if (t->nsuccessors) {
		cJSON *su = cJSON_AddArrayToObject(o, "successors");
		for (size_t i = 0; i < t->nsuccessors; i++) {
			cJSON *e = cJSON_CreateObject();
			cJSON_AddStringToObject(e, "code",
						t->successors[i].code);
			cJSON_AddNumberToObject(e, "weight",
						t->successors[i].weight);
			cJSON_AddItemToArray(su, e);
		}
	}
	return o;
}

char *vg__territory_json(const vg_territory *t, uint32_t rank)
{
	cJSON *o = vg_territory_to_json(t);
	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "rank", rank);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

static int copy_str(const cJSON *o, const char *k, char *dst, size_t n)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!cJSON_IsString(it) || strlen(it->valuestring) >= n)
		return -1;
	strcpy(dst, it->valuestring);
	return 0;
}

int64_t vg__version_start(const vg_membership *v)
{
	return v->has_from ? vg_period_first_day(v->from) : INT64_MIN;
}

int vg__versions_put(vg_membership **vs, size_t *n, vg_membership *v)
{
	int64_t start = vg__version_start(v);
	size_t i = 0;
	while (i < *n && vg__version_start(&(*vs)[i]) < start)
		i++;
	if (i < *n && vg__version_start(&(*vs)[i]) == start) {
		free((*vs)[i].members);
		(*vs)[i] = *v;
		return 0;
	}
	vg_membership *nv = realloc(*vs, (*n + 1) * sizeof(**vs));
	if (!nv)
		return -1;
	memmove(nv + i + 1, nv + i, (*n - i) * sizeof(*nv));
	nv[i] = *v;
	*vs = nv;
	(*n)++;
	return 0;
}

static int copy_codes(const cJSON *arr, vg_membership *v)
{
	int n = cJSON_GetArraySize(arr);
	v->members = n > 0 ? calloc((size_t)n, VG_CODE_MAX) : NULL;
	if (n > 0 && !v->members)
		return -1;
	const cJSON *it;
	cJSON_ArrayForEach(it, arr)
	{
		if (!cJSON_IsString(it))
			return -1;
		snprintf(v->members[v->nmembers++], VG_CODE_MAX, "%s",
			 it->valuestring);
	}
	return 0;
}

/* The membership versions of a record. A record without "versions" (one
 * written before they existed, or a perimeter defined once) has one
 * version from the beginning: its members. Returns -1 on a bad record or
 * no memory (the caller reports a corrupt record either way). */
static int parse_versions(const cJSON *o, vg_territory *out)
{
	const cJSON *vs = cJSON_GetObjectItemCaseSensitive(o, "versions");
	int n = cJSON_GetArraySize(vs);
	if (n <= 0) {
		if (!out->nmembers)
			return 0;
		out->versions = calloc(1, sizeof(*out->versions));
		if (!out->versions)
			return -1;
		out->nversions = 1;
		vg_membership *v = &out->versions[0];
		v->members = malloc(out->nmembers * VG_CODE_MAX);
		if (!v->members)
			return -1;
		memcpy(v->members, out->members, out->nmembers * VG_CODE_MAX);
		v->nmembers = out->nmembers;
		return 0;
	}
	out->versions = calloc((size_t)n, sizeof(*out->versions));
	if (!out->versions)
		return -1;
	const cJSON *it;
	cJSON_ArrayForEach(it, vs)
	{
		vg_membership *v = &out->versions[out->nversions++];
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(it, "from");
		if (cJSON_IsString(f)) {
			if (vg_period_parse(f->valuestring,
					    strlen(f->valuestring), &v->from))
				return -1;
			v->has_from = true;
		}
		if (copy_codes(cJSON_GetObjectItemCaseSensitive(it, "members"),
			       v))
			return -1;
	}
	return 0;
}

int vg__territory_parse(const char *json, size_t len, vg_territory *out,
			uint32_t *rank, vg_error *err)
{
	memset(out, 0, sizeof(*out));
	cJSON *o = cJSON_ParseWithLength(json, len);
	int rc = VG_ESTORE;
	if (!o)
		goto bad;
	if (copy_str(o, "code", out->code, sizeof(out->code)) ||
	    copy_str(o, "level", out->level, sizeof(out->level)) ||
	    copy_str(o, "name", out->name, sizeof(out->name)))
		goto bad;
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "parents");
	const cJSON *it;
	cJSON_ArrayForEach(it, p)
	{
		if (out->nparents == VG_MAX_PARENTS || !cJSON_IsString(it))
			goto bad;
		snprintf(out->parents[out->nparents++], VG_CODE_MAX, "%s",
			 it->valuestring);
	}
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "members");
	int nm = cJSON_GetArraySize(m);
	if (nm > 0) {
		out->members = calloc((size_t)nm, VG_CODE_MAX);
		if (!out->members) {
			rc = VG_ENOMEM;
			goto bad;
		}
		cJSON_ArrayForEach(it, m)
		{
			if (!cJSON_IsString(it))
				goto bad;
			snprintf(out->members[out->nmembers++], VG_CODE_MAX,
				 "%s", it->valuestring);
		}
	}
	if (parse_versions(o, out)) {
		rc = VG_ENOMEM;
		goto bad;
	}
	const cJSON *su = cJSON_GetObjectItemCaseSensitive(o, "successors");
	cJSON_ArrayForEach(it, su)
	{
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(it, "weight");
		if (out->nsuccessors == VG_MAX_SUCCESSORS ||
		    copy_str(it, "code",
			     out->successors[out->nsuccessors].code,
			     VG_CODE_MAX) ||
		    !cJSON_IsNumber(w))
			goto bad;
		out->successors[out->nsuccessors++].weight = w->valuedouble;
	}
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "rank");
	if (rank)
		*rank = cJSON_IsNumber(r) ? (uint32_t)r->valuedouble : 0;
	cJSON_Delete(o);
	return 0;
bad:
	cJSON_Delete(o);
	vg_territory_clear(out);
	return vg_error_set(err, rc, "corrupt territory record in the store");
}
