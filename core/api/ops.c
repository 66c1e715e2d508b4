/* The operations of protocol v1: one handler per op and the table that
 * describes them. Handlers read their (already type-checked) arguments
 * from req->args, open one read transaction, and build req->result.
 * Numbers that are NaN or missing are written as null beside a status. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "api/api_int.h"
#include "vigie/common.h"
#include "vigie/io.h"
#include "vigie/query.h"

/* ---- arguments ---------------------------------------------------------- */

static const char *sarg(const vg_api_req *q, const char *name)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(q->args, name);
	return cJSON_IsString(it) ? it->valuestring : NULL;
}

static bool iarg(const vg_api_req *q, const char *name, int64_t *v)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(q->args, name);
	if (!cJSON_IsNumber(it))
		return false;
	*v = (int64_t)it->valuedouble;
	return true;
}

int vg__api_fail(vg_api_req *q, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(q->emsg, sizeof(q->emsg), fmt, ap);
	va_end(ap);
	q->ecode = code;
	return -1;
}

/* A store error: the message is the store's. */
static int store_fail(vg_api_req *q, const vg_error *e)
{
	const char *code = "storage";
	if (e->code == VG_ENOTFOUND)
		code = "not_found";
	else if (e->code == VG_EINVAL || e->code == VG_EPERIOD ||
		 e->code == VG_EPARSE)
		code = "bad_argument";
	else if (e->code == VG_ENOMEM)
		code = "internal";
	char buf[600];
	return vg__api_fail(q, code, "%s", vg_error_format(e, buf, sizeof(buf)));
}

static int get_ind(vg_api_req *q, vg_read *r, uint32_t *id, int *decimals)
{
	const char *code = sarg(q, "indicator");
	if (vg_read_indicator_id(r, code, id, NULL))
		return vg__api_fail(q, "unknown_indicator",
				    "unknown indicator '%s' (op \"indicators\" "
				    "lists them)",
				    code);
	if (decimals) {
		vg_indicator m;
		*decimals = vg_read_indicator(r, *id, &m, NULL) ? -1
								: m.decimals;
	}
	return 0;
}

/* An optional territory argument: 0 when absent. */
static int get_terr(vg_api_req *q, vg_read *r, const char *name, uint32_t *id)
{
	const char *code = sarg(q, name);
	*id = 0;
	if (!code)
		return 0;
	char canon[VG_CODE_MAX];
	if (vg_territory_code_canon(NULL, code, canon, NULL, NULL))
		return vg__api_fail(q, "bad_argument",
				    "%s: '%s' is not a territory code (level:code, "
				    "e.g. com:85146, dep:2A, fr)",
				    name, code);
	if (vg_read_territory_id(r, canon, id, NULL))
		return vg__api_fail(q, "unknown_territory",
				    "unknown territory '%s' (argument %s)", code,
				    name);
	return 0;
}

static int get_period(vg_api_req *q, const char *name, vg_period *p)
{
	const char *s = sarg(q, name);
	*p = 0;
	if (!s)
		return 0;
	if (vg_period_parse(s, strlen(s), p))
		return vg__api_fail(q, "bad_argument",
				    "%s: '%s' is not a period (2024, 2024-Q1, "
				    "2024-03, 2024-03-15)",
				    name, s);
	return 0;
}

/* The `period` of the value queries: a period, or "latest" (*latest set,
 * *p = 0): the most recent period with data, resolved by the op. */
static int get_period_latest(vg_api_req *q, vg_period *p, bool *latest)
{
	const char *s = sarg(q, "period");
	*latest = s && !strcmp(s, "latest");
	if (*latest) {
		*p = 0;
		return 0;
	}
	if (get_period(q, "period", p))
		return -1;
	return 0;
}

static int get_as_of(vg_api_req *q, int64_t *t)
{
	const char *s = sarg(q, "as_of");
	*t = VG_LATEST;
	if (s && vg_time_parse(s, t))
		return vg__api_fail(q, "bad_argument",
				    "as_of: '%s' is not a date (2024-05-01) or "
				    "a UTC date-time (2024-05-01T12:00:00Z)",
				    s);
	return 0;
}

static int get_membership(vg_api_req *q, vg_membership_mode *m)
{
	const char *s = sarg(q, "membership");
	*m = VG_MEMBERSHIP_IN_FORCE;
	if (!s || !strcmp(s, "in_force"))
		return 0;
	if (!strcmp(s, "latest")) {
		*m = VG_MEMBERSHIP_LATEST;
		return 0;
	}
	return vg__api_fail(q, "bad_argument",
			    "membership: '%s' is not in_force (each period "
			    "on the perimeter as it was) or latest (every "
			    "period on the latest membership)",
			    s);
}

static int get_level(vg_api_req *q, vg_read *r, const char *name,
		     const char *dflt, uint16_t *lv)
{
	const char *s = sarg(q, name);
	if (!s)
		s = dflt;
	if (vg_read_level_id(r, s, lv, NULL))
		return vg__api_fail(q, "unknown_level",
				    "%s: no level '%s' (levels are com, arm, "
				    "epci, dep, reg, fr and those of custom "
				    "perimeters)",
				    name, s);
	return 0;
}

typedef struct page {
	size_t offset, limit, seen;
} page;

static int get_page(vg_api_req *q, page *pg)
{
	int64_t v;
	pg->offset = 0;
	pg->limit = VG_API_LIMIT_DEFAULT;
	pg->seen = 0;
	if (iarg(q, "offset", &v)) {
		if (v < 0)
			return vg__api_fail(q, "bad_argument",
					    "offset: must be >= 0, got %lld",
					    (long long)v);
		pg->offset = (size_t)v;
	}
	if (iarg(q, "limit", &v)) {
		if (v < 1 || v > VG_API_LIMIT_MAX)
			return vg__api_fail(q, "bad_argument",
					    "limit: must be between 1 and %d, "
					    "got %lld",
					    VG_API_LIMIT_MAX, (long long)v);
		pg->limit = (size_t)v;
	}
	return 0;
}

/* True when the row numbered pg->seen (then counted) is on the page. */
static bool page_take(page *pg)
{
	size_t i = pg->seen++;
	return i >= pg->offset && i - pg->offset < pg->limit;
}

static void page_result(cJSON *res, const page *pg)
{
	cJSON_AddNumberToObject(res, "total", (double)pg->seen);
	cJSON_AddNumberToObject(res, "offset", (double)pg->offset);
	if (pg->offset + pg->limit < pg->seen)
		cJSON_AddNumberToObject(res, "next_offset",
					(double)(pg->offset + pg->limit));
	else
		cJSON_AddNullToObject(res, "next_offset");
}

/* ---- JSON helpers --------------------------------------------------------- */

static void add_num(cJSON *o, const char *k, double v)
{
	if (isnan(v) || isinf(v))
		cJSON_AddNullToObject(o, k);
	else
		cJSON_AddNumberToObject(o, k, v);
}

static void add_str_or_null(cJSON *o, const char *k, const char *s)
{
	if (s && *s)
		cJSON_AddStringToObject(o, k, s);
	else
		cJSON_AddNullToObject(o, k);
}

static void add_period(cJSON *o, const char *k, vg_period p)
{
	char ps[VG_PERIOD_STRLEN];
	vg_period_format(p, ps, sizeof(ps));
	cJSON_AddStringToObject(o, k, ps);
}

static cJSON *new_result(vg_api_req *q, cJSON **rows)
{
	q->result = cJSON_CreateObject();
	*rows = cJSON_AddArrayToObject(q->result, "rows");
	return q->result;
}

static void echo_args(vg_api_req *q, const char *const *names)
{
	for (; *names; names++) {
		const cJSON *it =
			cJSON_GetObjectItemCaseSensitive(q->args, *names);
		if (it)
			cJSON_AddItemToObject(q->result, *names,
					      cJSON_Duplicate(it, true));
	}
}

/* ---- ping, stats, indicators, territories ------------------------------- */

static int op_ping(vg_api_req *q)
{
	q->result = cJSON_CreateObject();
	cJSON_AddStringToObject(q->result, "pong", "vigie");
	cJSON_AddNumberToObject(q->result, "protocol", VG_API_VERSION);
	return 0;
}

static int op_stats(vg_api_req *q)
{
	vg_store_stat st;
	vg_error e = { 0 };
	if (vg_store_stat_get(q->store, &st, &e))
		return store_fail(q, &e);
	cJSON *rows;
	new_result(q, &rows);
	cJSON *so = cJSON_AddObjectToObject(q->result, "store");
	struct {
		const char *k;
		uint64_t v;
	} kv[] = {
		{ "indicators", st.indicators }, { "territories", st.territories },
		{ "points", st.points },	 { "revisions", st.history },
		{ "blocks", st.blocks },	 { "vintages", st.vintages },
		{ "map_size", st.map_size },	 { "used_bytes", st.used },
		{ "file_bytes", st.file_size },	 { "map_grows", st.map_grows },
	};
	for (size_t i = 0; i < VG_ARRAY_LEN(kv); i++) {
		cJSON_AddNumberToObject(so, kv[i].k, (double)kv[i].v);
		cJSON *row = cJSON_CreateObject();
		cJSON_AddStringToObject(row, "key", kv[i].k);
		cJSON_AddNumberToObject(row, "value", (double)kv[i].v);
		cJSON_AddItemToArray(rows, row);
	}
	if (q->hooks && q->hooks->stats) {
		cJSON *srv = q->hooks->stats(q->hooks->ud);
		if (srv)
			cJSON_AddItemToObject(q->result, "server", srv);
	}
	return 0;
}

typedef struct list_ctx {
	vg_api_req *q;
	vg_read *r;
	cJSON *rows;
	page pg;
	uint32_t within;
	int decimals;
	const cJSON *only; /* territories: the codes asked for, or NULL */
} list_ctx;

static int indicator_row(void *ud, uint32_t id)
{
	list_ctx *x = ud;
	vg_indicator *m = malloc(sizeof(*m));
	if (!m || vg_read_indicator(x->r, id, m, NULL)) {
		free(m);
		return VG_ESTORE;
	}
	char agg[200];
	vg_agg_format(&m->agg, agg, sizeof(agg));
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "code", m->code);
	cJSON_AddStringToObject(o, "label", m->label);
	cJSON_AddStringToObject(o, "unit", m->unit);
	cJSON_AddStringToObject(o, "periodicity",
				vg_periodicity_name(m->periodicity));
	cJSON_AddStringToObject(o, "aggregate", agg);
	if (m->decimals >= 0)
		cJSON_AddNumberToObject(o, "decimals", m->decimals);
	else
		cJSON_AddNullToObject(o, "decimals");
	cJSON_AddStringToObject(o, "source", m->source);
	cJSON_AddStringToObject(o, "licence", m->licence);
	cJSON_AddStringToObject(o, "description", m->description);
	cJSON_AddItemToArray(x->rows, o);
	free(m);
	return 0;
}

static int op_indicators(vg_api_req *q)
{
	vg_read *r;
	vg_error e = { 0 };
	if (vg_read_begin(q->store, &r, &e))
		return store_fail(q, &e);
	list_ctx x = { .q = q, .r = r };
	new_result(q, &x.rows);
	int rc = vg_read_indicators(r, indicator_row, &x);
	vg_read_end(r);
	if (rc)
		return vg__api_fail(q, "storage", "cannot list indicators: %s",
				    vg_strerror(rc));
	return 0;
}

static cJSON *territory_obj(vg_read *r, const vg_territory *t)
{
	cJSON *o = cJSON_CreateObject();
	char parents[VG_MAX_PARENTS * VG_CODE_MAX] = "";
	for (size_t i = 0; i < t->nparents; i++) {
		if (i)
			strcat(parents, ",");
		strcat(parents, t->parents[i]);
	}
	(void)r;
	cJSON_AddStringToObject(o, "code", t->code);
	cJSON_AddStringToObject(o, "level", t->level);
	cJSON_AddStringToObject(o, "name", t->name);
	cJSON_AddStringToObject(o, "parent_codes", parents);
	cJSON_AddNumberToObject(o, "members", (double)t->nmembers);
	if (t->nversions > 1 || (t->nversions == 1 && t->versions[0].has_from)) {
		/* Membership by period: "members" above is the latest. */
		cJSON *vs = cJSON_AddArrayToObject(o, "versions");
		for (size_t i = 0; i < t->nversions; i++) {
			cJSON *e = cJSON_CreateObject();
			if (t->versions[i].has_from)
				add_period(e, "from", t->versions[i].from);
			else
				cJSON_AddNullToObject(e, "from");
			cJSON_AddNumberToObject(e, "members",
						(double)t->versions[i].nmembers);
			cJSON_AddItemToArray(vs, e);
		}
	}
	if (t->nsuccessors) {
		/* An old commune code: where its points are counted. */
		cJSON *su = cJSON_AddArrayToObject(o, "successors");
		for (size_t i = 0; i < t->nsuccessors; i++) {
			cJSON *e = cJSON_CreateObject();
			cJSON_AddStringToObject(e, "code", t->successors[i].code);
			cJSON_AddNumberToObject(e, "weight",
						t->successors[i].weight);
			cJSON_AddItemToArray(su, e);
		}
	}
	return o;
}

static int territory_row(void *ud, uint32_t id)
{
	list_ctx *x = ud;
	if (x->within && !vg_read_territory_within(x->r, id, x->within))
		return 0;
	if (!page_take(&x->pg))
		return 0;
	vg_territory t;
	if (vg_read_territory(x->r, id, &t, NULL))
		return VG_ESTORE;
	cJSON_AddItemToArray(x->rows, territory_obj(x->r, &t));
	vg_territory_clear(&t);
	return 0;
}

static int search_row(void *ud, uint32_t id)
{
	list_ctx *x = ud;
	vg_territory t;
	if (vg_read_territory(x->r, id, &t, NULL))
		return VG_ESTORE;
	cJSON_AddItemToArray(x->rows, territory_obj(x->r, &t));
	vg_territory_clear(&t);
	return 0;
}

/* Name search: best matches first (vg_read_territory_search), paged by
 * the store so only the page's records are read. */
static int search_territories(list_ctx *x, const char *search,
			      const char *level)
{
	size_t total = 0;
	int rc = vg_read_territory_search(x->r, search, level, x->within,
					  x->pg.offset, x->pg.limit,
					  search_row, x, &total);
	if (rc == VG_EINVAL)
		return vg__api_fail(x->q, "bad_argument",
				    "search: at most 16 words");
	x->pg.seen = total;
	return rc;
}

static int op_territories(vg_api_req *q)
{
	vg_read *r;
	vg_error e = { 0 };
	list_ctx x = { .q = q };
	if (get_page(q, &x.pg))
		return -1;
	if (vg_read_begin(q->store, &r, &e))
		return store_fail(q, &e);
	x.r = r;
	const char *level = sarg(q, "level");
	uint16_t lv;
	if (get_terr(q, r, "within", &x.within) ||
	    (level && get_level(q, r, "level", NULL, &lv))) {
		vg_read_end(r);
		return -1;
	}
	new_result(q, &x.rows);
	const char *search = sarg(q, "search");
	int rc = search ? search_territories(&x, search, level)
			: vg_read_territories(r, level, territory_row, &x);
	vg_read_end(r);
	if (rc)
		return q->ecode ? -1
				: vg__api_fail(q, "storage",
					       "cannot list territories: %s",
					       vg_strerror(rc));
	page_result(q->result, &x.pg);
	return 0;
}

/* ---- series, history, slice --------------------------------------------- */

typedef struct pt_ctx {
	vg_read *r;
	cJSON *rows;
	page pg;
	bool paged;
} pt_ctx;

static int point_row(void *ud, const vg_point *p)
{
	pt_ctx *x = ud;
	if (x->paged && !page_take(&x->pg))
		return 0;
	cJSON *o = cJSON_CreateObject();
	int64_t t;
	add_period(o, "period", p->period);
	add_num(o, "value", p->value);
	cJSON_AddStringToObject(o, "status", vg_status_name(p->status));
	cJSON_AddNumberToObject(o, "vintage", p->vintage);
	char when[32] = "";
	if (!vg_read_vintage_time(x->r, p->vintage, &t))
		vg_time_format(t, when, sizeof(when));
	add_str_or_null(o, "published", when);
	cJSON_AddItemToArray(x->rows, o);
	return 0;
}

static int begin_point(vg_api_req *q, vg_read **r, uint32_t *ind,
		       uint32_t *terr, int *dec)
{
	vg_error e = { 0 };
	if (vg_read_begin(q->store, r, &e))
		return store_fail(q, &e);
	if (get_ind(q, *r, ind, dec) || get_terr(q, *r, "territory", terr)) {
		vg_read_end(*r);
		return -1;
	}
	return 0;
}

static void add_decimals(cJSON *res, int dec)
{
	if (dec >= 0)
		cJSON_AddNumberToObject(res, "decimals", dec);
	else
		cJSON_AddNullToObject(res, "decimals");
}

static int op_series(vg_api_req *q)
{
	vg_period from, to;
	int64_t as_of;
	if (get_period(q, "from", &from) || get_period(q, "to", &to) ||
	    get_as_of(q, &as_of))
		return -1;
	vg_read *r;
	uint32_t ind, terr;
	int dec;
	if (begin_point(q, &r, &ind, &terr, &dec))
		return -1;
	pt_ctx x = { .r = r };
	new_result(q, &x.rows);
	static const char *const echo[] = { "indicator", "territory", NULL };
	echo_args(q, echo);
	add_decimals(q->result, dec);
	int rc = vg_read_series(r, ind, terr, from, to, as_of, point_row, &x);
	vg_read_end(r);
	if (rc)
		return vg__api_fail(q, "storage", "cannot read the series: %s",
				    vg_strerror(rc));
	return 0;
}

static int op_history(vg_api_req *q)
{
	vg_period period;
	if (get_period(q, "period", &period))
		return -1;
	vg_read *r;
	uint32_t ind, terr;
	int dec;
	if (begin_point(q, &r, &ind, &terr, &dec))
		return -1;
	pt_ctx x = { .r = r };
	new_result(q, &x.rows);
	static const char *const echo[] = { "indicator", "territory", "period",
					    NULL };
	echo_args(q, echo);
	add_decimals(q->result, dec);
	int rc = vg_read_history(r, ind, terr, period, point_row, &x);
	vg_point cur;
	if (!rc && !vg_read_point(r, ind, terr, period, VG_LATEST, &cur))
		rc = point_row(&x, &cur);
	vg_read_end(r);
	if (rc)
		return vg__api_fail(q, "storage", "cannot read the history: %s",
				    vg_strerror(rc));
	return 0;
}

/* A map of every commune is 35 000 rows: they are written straight as
 * JSON text (embedded raw in the answer), not built as 140 000 cJSON
 * nodes and printed again. Same keys and number format as cJSON. */
typedef struct jbuf {
	char *s;
	size_t len, cap;
	bool oom;
} jbuf;

static void jb_put(jbuf *b, const char *p, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 65536;
		while (nc < b->len + n + 1)
			nc *= 2;
		char *ns = realloc(b->s, nc);
		if (!ns) {
			b->oom = true;
			return;
		}
		b->s = ns;
		b->cap = nc;
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void jb_str(jbuf *b, const char *p)
{
	jb_put(b, "\"", 1);
	const char *run = p;
	for (; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		jb_put(b, run, (size_t)(p - run));
		char esc[8];
		int n = ch == '"'    ? snprintf(esc, sizeof(esc), "\\\"")
			: ch == '\\' ? snprintf(esc, sizeof(esc), "\\\\")
				      : snprintf(esc, sizeof(esc), "\\u%04x", ch);
		jb_put(b, esc, (size_t)n);
		run = p + 1;
	}
	jb_put(b, run, (size_t)(p - run));
	jb_put(b, "\"", 1);
}

static void jb_num(jbuf *b, double v)
{
	char buf[40];
	if (isnan(v) || isinf(v))
		snprintf(buf, sizeof(buf), "null");
	else if (v == (double)(long long)v && fabs(v) < 1e15)
		snprintf(buf, sizeof(buf), "%lld", (long long)v);
	else
		vg_value_format(v, buf, sizeof(buf));
	jb_put(b, buf, strlen(buf));
}

/* ---- the fields of values ------------------------------------------------- */

static const char *coverage_name(const vg_agg_value *v)
{
	if (v->source != VG_SOURCE_COMPUTED)
		return NULL;
	return v->cov.partial ? "partial" : "complete";
}

static void inputs_field(cJSON *o, vg_read *r, uint32_t ind,
			 const vg_agg_value *v)
{
	vg_indicator m;
	if (v->source != VG_SOURCE_COMPUTED ||
	    vg_read_indicator(r, ind, &m, NULL) ||
	    (m.agg.kind != VG_AGG_RATIO && m.agg.kind != VG_AGG_WMEAN))
		return;
	/* How each input of the rule was obtained: stored at the units it
	 * was paired in, or computed there from below with its own rule. */
	cJSON *arr = cJSON_AddArrayToObject(o, "inputs");
	const char *codes[2] = { m.agg.a, m.agg.b };
	for (int x = 0; x < 2; x++) {
		const vg_input_info *in = &v->inputs[x];
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "indicator", codes[x]);
		cJSON_AddStringToObject(e, "role",
					m.agg.kind == VG_AGG_RATIO
						? (x ? "denominator" : "numerator")
						: (x ? "weight" : "value"));
		cJSON_AddNumberToObject(e, "stored", in->stored);
		cJSON_AddNumberToObject(e, "computed", in->computed);
		cJSON_AddNumberToObject(e, "computed_partial",
					in->computed_partial);
		const char *lv = in->level >= 0
					 ? vg_read_level_name(r, (uint16_t)in->level)
					 : NULL;
		if (in->level == -2)
			cJSON_AddStringToObject(e, "level", "several");
		else
			add_str_or_null(e, "level", lv);
		cJSON_AddItemToArray(arr, e);
	}
}

/* The columns every aggregated value carries, and why there is none
 * when it can be said. */
static void agg_fields_why(cJSON *o, vg_read *r, uint32_t ind,
			   const vg_agg_value *v);

static void agg_fields(cJSON *o, const vg_agg_value *v)
{
	add_num(o, "value", v->value);
	cJSON_AddStringToObject(o, "status", vg_status_name(v->status));
	cJSON_AddStringToObject(o, "source", vg_value_source_name(v->source));
	bool computed = v->source == VG_SOURCE_COMPUTED;
	if (computed) {
		cJSON_AddNumberToObject(o, "members", v->cov.members);
		cJSON_AddNumberToObject(o, "with_data", v->cov.with_data);
		cJSON_AddNumberToObject(o, "suppressed", v->cov.suppressed);
		cJSON_AddNumberToObject(o, "missing", v->cov.missing);
		/* Members counted through the passage table (old commune
		 * codes of a period published in an older geography). */
		cJSON_AddNumberToObject(o, "via_passage", v->cov.via_passage);
	} else {
		cJSON_AddNullToObject(o, "members");
		cJSON_AddNullToObject(o, "with_data");
		cJSON_AddNullToObject(o, "suppressed");
		cJSON_AddNullToObject(o, "missing");
		cJSON_AddNullToObject(o, "via_passage");
	}
	if (computed && !isnan(v->cov.weight_total) && v->cov.weight_total > 0)
		cJSON_AddNumberToObject(o, "weight_covered_pct",
					100 * v->cov.weight_covered /
						v->cov.weight_total);
	else
		cJSON_AddNullToObject(o, "weight_covered_pct");
	add_str_or_null(o, "coverage", coverage_name(v));
}

static void agg_fields_why(cJSON *o, vg_read *r, uint32_t ind,
			   const vg_agg_value *v)
{
	agg_fields(o, v);
	char why[400];
	add_str_or_null(o, "reason", vg_agg_explain(r, ind, v, why,
						    sizeof(why)));
	inputs_field(o, r, ind, v);
}

static void terr_fields(cJSON *o, vg_read *r, uint32_t id)
{
	const char *code = vg_read_territory_code(r, id);
	cJSON_AddStringToObject(o, "territory", code ? code : "");
	add_str_or_null(o, "name", vg_read_territory_name(r, id));
}

/* For a perimeter: which membership version the value used, so a series
 * shows where the perimeter changed. Nothing for other territories. */
static void membership_fields(cJSON *o, vg_read *r, uint32_t id,
			      vg_period period, vg_membership_mode mode)
{
	vg_membership_info mi;
	if (vg_read_perimeter_membership(r, id, period,
					 mode == VG_MEMBERSHIP_LATEST, &mi))
		return;
	cJSON_AddStringToObject(o, "membership",
				mode == VG_MEMBERSHIP_LATEST ? "latest"
							     : "in_force");
	if (mi.has_from)
		add_period(o, "membership_from", mi.from);
	else
		cJSON_AddNullToObject(o, "membership_from");
	cJSON_AddNumberToObject(o, "membership_members", mi.nmembers);
	cJSON_AddNumberToObject(o, "membership_versions", mi.nversions);
	/* Before the first version the first one stands in: say so rather
	 * than pass it off as the membership of the time. */
	cJSON_AddBoolToObject(o, "membership_before_first", mi.before_first);
}

/* ---- sorting ---------------------------------------------------------------- */

/* `sort` (value, territory, name) and `order` (asc, desc) of the tabular
 * value ops. Rows without a value come last whatever the order. */
typedef enum { SORT_NONE, SORT_VALUE, SORT_TERRITORY, SORT_NAME } sort_key;

typedef struct sort_spec {
	sort_key key;
	bool desc;
} sort_spec;

static int get_sort(vg_api_req *q, sort_spec *s)
{
	const char *k = sarg(q, "sort"), *o = sarg(q, "order");
	s->key = SORT_NONE;
	s->desc = false;
	if (k) {
		if (!strcmp(k, "value"))
			s->key = SORT_VALUE;
		else if (!strcmp(k, "territory"))
			s->key = SORT_TERRITORY;
		else if (!strcmp(k, "name"))
			s->key = SORT_NAME;
		else
			return vg__api_fail(q, "bad_argument",
					    "sort: '%s' is not value, territory "
					    "or name",
					    k);
	}
	if (o && strcmp(o, "asc") && strcmp(o, "desc"))
		return vg__api_fail(q, "bad_argument",
				    "order: '%s' is not asc or desc", o);
	if (o && !k)
		return vg__api_fail(q, "bad_argument",
				    "order: only with sort (value, territory "
				    "or name)");
	s->desc = o && !strcmp(o, "desc");
	return 0;
}

/* One row to sort: its territory, value and position in the engine's
 * order (the tie-breaker, so that equal keys keep rank order). */
typedef struct sort_item {
	uint32_t terr;
	double value;
	size_t pos;
} sort_item;

typedef struct sort_env {
	vg_read *r;
	sort_spec spec;
} sort_env;

static int cmp_text(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

static int sort_cmp(const void *pa, const void *pb, void *ud)
{
	const sort_item *a = pa, *b = pb;
	const sort_env *env = ud;
	int c = 0;
	switch (env->spec.key) {
	case SORT_VALUE: {
		bool na = isnan(a->value), nb = isnan(b->value);
		if (na || nb) {
			c = na - nb; /* no value: last in both orders */
			return c ? c : (a->pos > b->pos) - (a->pos < b->pos);
		}
		c = (a->value > b->value) - (a->value < b->value);
		break;
	}
	case SORT_TERRITORY:
		c = cmp_text(vg_read_territory_code(env->r, a->terr),
			     vg_read_territory_code(env->r, b->terr));
		break;
	case SORT_NAME:
		c = cmp_text(vg_read_territory_name(env->r, a->terr),
			     vg_read_territory_name(env->r, b->terr));
		break;
	case SORT_NONE: break;
	}
	if (env->spec.desc)
		c = -c;
	return c ? c : (a->pos > b->pos) - (a->pos < b->pos);
}

static void sort_items(vg_read *r, const sort_spec *spec, sort_item *it,
		       size_t n)
{
	if (spec->key == SORT_NONE || n < 2)
		return;
	sort_env env = { r, *spec };
	qsort_r(it, n, sizeof(*it), sort_cmp, &env);
}

/* ---- slice ------------------------------------------------------------------ */

/* One row of a slice: stored (published) or computed with the rule. */
typedef struct slice_item {
	uint32_t terr;
	double value;
	vg_status status;
	vg_value_source source;
	bool partial;
} slice_item;

typedef struct slice_ctx {
	vg_api_req *q;
	vg_read *r;
	slice_item *it;
	size_t n, cap;
} slice_ctx;

static int slice_push(slice_ctx *sc, slice_item si)
{
	if (sc->n == sc->cap) {
		size_t nc = sc->cap ? sc->cap * 2 : 1024;
		slice_item *ni = realloc(sc->it, nc * sizeof(*ni));
		if (!ni)
			return VG_ENOMEM;
		sc->it = ni;
		sc->cap = nc;
	}
	sc->it[sc->n++] = si;
	return 0;
}

static int slice_point(void *ud, const vg_point *p)
{
	return slice_push(ud, (slice_item){ p->terr, p->value, p->status,
					    VG_SOURCE_PUBLISHED, false });
}

static int slice_value(void *ud, const vg_agg_value *v)
{
	return slice_push(ud, (slice_item){ v->terr, v->value, v->status,
					    v->source,
					    v->source == VG_SOURCE_COMPUTED &&
						    v->cov.partial });
}

/* A map of every commune is 35 000 rows: they are written straight as
 * JSON text (embedded raw in the answer), not built as 140 000 cJSON
 * nodes and printed again. Same keys and number format as cJSON. */
static void slice_row_json(jbuf *b, vg_read *r, const slice_item *si)
{
	const char *code = vg_read_territory_code(r, si->terr);
	const char *name = vg_read_territory_name(r, si->terr);
	jb_put(b, b->len > 1 ? ",{\"territory\":" : "{\"territory\":",
	       b->len > 1 ? 14 : 13);
	jb_str(b, code ? code : "");
	jb_put(b, ",\"name\":", 8);
	if (name)
		jb_str(b, name);
	else
		jb_put(b, "null", 4);
	jb_put(b, ",\"value\":", 9);
	jb_num(b, si->value);
	jb_put(b, ",\"status\":", 10);
	jb_str(b, vg_status_name(si->status));
	jb_put(b, ",\"source\":", 10);
	jb_str(b, vg_value_source_name(si->source));
	jb_put(b, ",\"coverage\":", 12);
	if (si->source == VG_SOURCE_COMPUTED)
		jb_str(b, si->partial ? "partial" : "complete");
	else
		jb_put(b, "null", 4);
	jb_put(b, "}", 1);
}

/* The stored values of a level; when the level holds none in the scope
 * (a map of départements from commune data), the values computed there
 * with the indicator's rule, each row saying which it is. */
static int op_slice(vg_api_req *q)
{
	vg_period period;
	bool latest;
	int64_t as_of;
	vg_membership_mode mode;
	page pg;
	sort_spec sort;
	slice_ctx sc = { .q = q };
	if (get_period_latest(q, &period, &latest) || get_as_of(q, &as_of) ||
	    get_page(q, &pg) || get_membership(q, &mode) ||
	    get_sort(q, &sort))
		return -1;
	vg_read *r;
	vg_error e = { 0 };
	if (vg_read_begin(q->store, &r, &e))
		return store_fail(q, &e);
	sc.r = r;
	uint32_t ind, within;
	uint16_t level;
	int decimals;
	if (get_ind(q, r, &ind, &decimals) || get_terr(q, r, "within", &within) ||
	    get_level(q, r, "level", NULL, &level)) {
		vg_read_end(r);
		return -1;
	}
	if (latest) {
		if (vg_agg_latest_level(r, ind, level, within, as_of, mode,
					&period, &e)) {
			vg_read_end(r);
			return store_fail(q, &e);
		}
		if (!period) {
			vg_read_end(r);
			return vg__api_fail(q, "no_data",
					    "%s has no value at level %s%s%s in "
					    "any period",
					    sarg(q, "indicator"),
					    sarg(q, "level"),
					    within ? " within " : "",
					    within ? sarg(q, "within") : "");
		}
	}
	/* Within a perimeter whose membership at the period is an older
	 * version: that version's members (the store's index holds the
	 * latest), as the aggregation engine does. */
	vg_membership_info mi;
	int rc = 0;
	if (within && mode == VG_MEMBERSHIP_IN_FORCE &&
	    vg_read_perimeter_membership(r, within, period, false, &mi) == 0 &&
	    !mi.latest) {
		for (uint32_t m = 0; m < mi.nmembers && !rc; m++)
			rc = vg_read_slice(r, ind, period, level, mi.members[m],
					   as_of, slice_point, &sc);
	} else {
		rc = vg_read_slice(r, ind, period, level, within, as_of,
				   slice_point, &sc);
	}
	vg_indicator m;
	if (!rc && sc.n == 0 && vg_read_indicator(r, ind, &m, NULL) == 0 &&
	    m.agg.kind != VG_AGG_NONE) {
		/* Nothing stored at this level: computed with the rule. */
		vg_agg_ctx *c;
		rc = vg_agg_ctx_new(r, ind, period, as_of, &c, &e);
		if (!rc) {
			vg_agg_ctx_set_membership(c, mode);
			rc = vg_aggregate_level(c, level, within, slice_value,
						&sc, &e);
			vg_agg_ctx_free(c);
		}
	}
	jbuf rows = { 0 };
	jb_put(&rows, "[", 1);
	if (!rc) {
		sort_item *si = malloc((sc.n ? sc.n : 1) * sizeof(*si));
		if (!si)
			rc = VG_ENOMEM;
		for (size_t i = 0; !rc && i < sc.n; i++)
			si[i] = (sort_item){ sc.it[i].terr, sc.it[i].value, i };
		if (!rc)
			sort_items(r, &sort, si, sc.n);
		for (size_t i = 0; !rc && i < sc.n; i++)
			if (page_take(&pg))
				slice_row_json(&rows, r, &sc.it[si[i].pos]);
		free(si);
	}
	vg_read_end(r);
	free(sc.it);
	jb_put(&rows, "]", 1);
	if (rc || rows.oom) {
		free(rows.s);
		return e.code ? store_fail(q, &e)
			      : vg__api_fail(q, "storage",
					     "cannot read the slice: %s",
					     vg_strerror(rc ? rc : VG_ENOMEM));
	}
	q->result = cJSON_CreateObject();
	cJSON *raw = cJSON_CreateRaw(rows.s);
	free(rows.s);
	if (!raw)
		return vg__api_fail(q, "internal", "out of memory");
	cJSON_AddItemToObject(q->result, "rows", raw);
	static const char *const echo[] = { "indicator", "level", "within",
					    "membership", NULL };
	echo_args(q, echo);
	add_period(q->result, "period", period);
	if (latest)
		cJSON_AddStringToObject(q->result, "period_requested", "latest");
	add_decimals(q->result, decimals);
	page_result(q->result, &pg);
	return 0;
}

/* ---- aggregate, compare, rank, disparities, profile ----------------------- */

typedef struct agg_q {
	vg_api_req *q;
	vg_read *r;
	vg_agg_ctx *ac;
	cJSON *rows;
	page pg;
	int decimals;
	uint32_t ind, terr, within;
	uint16_t level;
	vg_period period;
	bool latest;
	double target; /* compare/profile: the first row's value */
	/* aggregate --level: the values, sorted and paged at the end */
	vg_agg_value *vals;
	size_t nvals, capvals;
	sort_spec sort;
} agg_q;

/* Where `period=latest` looks for the most recent data. */
enum {
	AT_TERRITORY,	/* the territory argument has a value */
	AT_LEVEL,	/* some territory of `level` within `within` has one */
	AT_LEVEL_IN,	/* ... within the territory argument (disparities) */
};

static void add_period_fields(agg_q *a)
{
	add_period(a->q->result, "period", a->period);
	if (a->latest)
		cJSON_AddStringToObject(a->q->result, "period_requested",
					"latest");
}

/* Shared start of the value queries: read, indicator, territory, level,
 * period (or latest, resolved per `at`), as_of and the aggregation
 * context. `level_dflt` NULL: no level argument. */
static int begin_agg(vg_api_req *q, agg_q *a, int at, const char *level_dflt)
{
	int64_t as_of;
	vg_membership_mode mode;
	vg_error e = { 0 };
	if (get_period_latest(q, &a->period, &a->latest) ||
	    get_as_of(q, &as_of) || get_membership(q, &mode))
		return -1;
	a->q = q;
	a->target = NAN;
	if (vg_read_begin(q->store, &a->r, &e))
		return store_fail(q, &e);
	if (get_ind(q, a->r, &a->ind, &a->decimals) ||
	    get_terr(q, a->r, "territory", &a->terr) ||
	    get_terr(q, a->r, "within", &a->within) ||
	    (level_dflt && get_level(q, a->r, "level", level_dflt, &a->level)))
		goto fail;
	if (a->latest) {
		int rc = at == AT_TERRITORY
				 ? vg_agg_latest(a->r, a->ind, a->terr, as_of,
						 mode, &a->period, &e)
				 : vg_agg_latest_level(
					   a->r, a->ind, a->level,
					   at == AT_LEVEL ? a->within : a->terr,
					   as_of, mode, &a->period, &e);
		if (rc) {
			store_fail(q, &e);
			goto fail;
		}
		if (!a->period) {
			const char *where =
				at == AT_LEVEL && !a->within
					? NULL
					: vg_read_territory_code(
						  a->r, at == AT_LEVEL ? a->within
								       : a->terr);
			vg__api_fail(q, "no_data",
				     "%s has no value %s%s%s in any period%s",
				     sarg(q, "indicator"),
				     at == AT_TERRITORY ? "for " : "at level ",
				     at == AT_TERRITORY
					     ? where
					     : vg_read_level_name(a->r, a->level),
				     at != AT_TERRITORY && where ? " within "
								 : "",
				     at != AT_TERRITORY && where ? where : "");
			goto fail;
		}
	}
	if (vg_agg_ctx_new(a->r, a->ind, a->period, as_of, &a->ac, &e)) {
		store_fail(q, &e);
		goto fail;
	}
	vg_agg_ctx_set_membership(a->ac, mode);
	cJSON *rows;
	new_result(q, &rows);
	a->rows = rows;
	static const char *const echo[] = { "indicator", "territory", "level",
					    "within", "membership", NULL };
	echo_args(q, echo);
	add_period_fields(a);
	add_decimals(q->result, a->decimals);
	return 0;
fail:
	vg_read_end(a->r);
	a->r = NULL;
	return -1;
}

static int end_agg(agg_q *a, int rc, const vg_error *e)
{
	vg_agg_ctx_free(a->ac);
	vg_read_end(a->r);
	free(a->vals);
	if (rc && !a->q->ecode)
		return e && e->code ? store_fail(a->q, e)
				    : vg__api_fail(a->q, "internal", "%s",
						   vg_strerror(rc));
	return rc ? -1 : 0;
}

static cJSON *agg_obj(agg_q *a, const vg_agg_value *v)
{
	cJSON *o = cJSON_CreateObject();
	terr_fields(o, a->r, v->terr);
	agg_fields_why(o, a->r, a->ind, v);
	membership_fields(o, a->r, v->terr, vg_agg_ctx_period(a->ac),
			  vg_agg_ctx_membership(a->ac));
	return o;
}

/* aggregate --level: keep every value; sorted and paged at the end. */
static int agg_keep(void *ud, const vg_agg_value *v)
{
	agg_q *a = ud;
	if (a->nvals == a->capvals) {
		size_t nc = a->capvals ? a->capvals * 2 : 256;
		vg_agg_value *nv = realloc(a->vals, nc * sizeof(*nv));
		if (!nv)
			return VG_ENOMEM;
		a->vals = nv;
		a->capvals = nc;
	}
	a->vals[a->nvals++] = *v;
	return 0;
}

static int agg_emit(agg_q *a)
{
	sort_item *it = malloc((a->nvals ? a->nvals : 1) * sizeof(*it));
	if (!it)
		return VG_ENOMEM;
	for (size_t i = 0; i < a->nvals; i++)
		it[i] = (sort_item){ a->vals[i].terr, a->vals[i].value, i };
	sort_items(a->r, &a->sort, it, a->nvals);
	for (size_t i = 0; i < a->nvals; i++)
		if (page_take(&a->pg))
			cJSON_AddItemToArray(a->rows,
					     agg_obj(a, &a->vals[it[i].pos]));
	free(it);
	return 0;
}

/* `territories`: one value over an ad hoc list (vg_agg_value_list). */
static int aggregate_list(vg_api_req *q, const cJSON *list)
{
	vg_period period;
	bool latest;
	int64_t as_of;
	if (get_period_latest(q, &period, &latest) || get_as_of(q, &as_of))
		return -1;
	int n = cJSON_GetArraySize(list);
	if (n < 1 || n > VG_AGG_LIST_MAX)
		return vg__api_fail(q, "bad_argument",
				    "territories: between 1 and %d codes",
				    VG_AGG_LIST_MAX);
	uint32_t *ids = calloc((size_t)n, sizeof(*ids));
	vg_read *r;
	vg_error e = { 0 };
	if (!ids)
		return vg__api_fail(q, "internal", "out of memory");
	if (vg_read_begin(q->store, &r, &e)) {
		free(ids);
		return store_fail(q, &e);
	}
	uint32_t ind;
	int dec, rc = get_ind(q, r, &ind, &dec);
	const cJSON *it;
	size_t k = 0;
	cJSON_ArrayForEach(it, list)
	{
		if (rc)
			break;
		char canon[VG_CODE_MAX];
		if (vg_territory_code_canon(NULL, it->valuestring, canon, NULL,
					    NULL) ||
		    vg_read_territory_id(r, canon, &ids[k++], NULL))
			rc = vg__api_fail(q, "unknown_territory",
					  "unknown territory '%s' (in "
					  "territories)",
					  it->valuestring);
	}
	vg_agg_value v;
	if (!rc && latest) {
		/* The most recent period with a value over the list. */
		vg_period *ps = NULL;
		size_t np = 0;
		if (vg_agg_periods(r, ind, &ps, &np, &e))
			rc = store_fail(q, &e);
		for (size_t i = 0; !rc && i < np && !period; i++) {
			if (vg_agg_value_list(r, ind, ps[i], as_of, ids, k, &v,
					      &e))
				rc = store_fail(q, &e);
			else if (!isnan(v.value))
				period = ps[i];
		}
		free(ps);
		if (!rc && !period)
			rc = vg__api_fail(q, "no_data",
					  "%s has no value over these %zu "
					  "territories in any period",
					  sarg(q, "indicator"), k);
	}
	if (!rc && vg_agg_value_list(r, ind, period, as_of, ids, k, &v, &e))
		rc = store_fail(q, &e);
	if (!rc) {
		cJSON *rows;
		new_result(q, &rows);
		static const char *const echo[] = { "indicator", "territories",
						    NULL };
		echo_args(q, echo);
		add_period(q->result, "period", period);
		if (latest)
			cJSON_AddStringToObject(q->result, "period_requested",
						"latest");
		add_decimals(q->result, dec);
		cJSON *o = cJSON_CreateObject();
		char name[64];
		snprintf(name, sizeof(name), "%zu territories", k);
		cJSON_AddStringToObject(o, "territory", "list");
		cJSON_AddStringToObject(o, "name", name);
		agg_fields_why(o, r, ind, &v);
		cJSON_AddItemToArray(rows, o);
	}
	vg_read_end(r);
	free(ids);
	return rc ? -1 : 0;
}

static int op_aggregate(vg_api_req *q)
{
	agg_q a = { 0 };
	const char *level = sarg(q, "level");
	const char *terr = sarg(q, "territory");
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(q->args,
							     "territories");
	if (!!level + !!terr + !!list != 1)
		return vg__api_fail(q, "bad_argument",
				    "give one of level (all territories of a "
				    "level, optionally within a territory), "
				    "territory (one target) or territories (a "
				    "list of codes, e.g. communes picked on a "
				    "map)");
	if (!level && (sarg(q, "sort") || sarg(q, "order")))
		return vg__api_fail(q, "bad_argument",
				    "sort, order: only with level (one row "
				    "otherwise)");
	if (list) {
		if (cJSON_GetObjectItemCaseSensitive(q->args, "within"))
			return vg__api_fail(q, "bad_argument",
					    "within: only with level");
		return aggregate_list(q, list);
	}
	if (terr && cJSON_GetObjectItemCaseSensitive(q->args, "within"))
		return vg__api_fail(q, "bad_argument",
				    "within: only with level");
	if (get_page(q, &a.pg) || get_sort(q, &a.sort) ||
	    begin_agg(q, &a, terr ? AT_TERRITORY : AT_LEVEL,
		      level ? level : NULL))
		return -1;
	vg_error e = { 0 };
	int rc;
	if (terr) {
		vg_agg_value v;
		rc = vg_agg_value_at(a.ac, a.terr, &v, &e);
		if (!rc && page_take(&a.pg))
			cJSON_AddItemToArray(a.rows, agg_obj(&a, &v));
	} else {
		rc = vg_aggregate_level(a.ac, a.level, a.within, agg_keep, &a,
					&e);
		if (!rc)
			rc = agg_emit(&a);
	}
	if (!rc)
		page_result(q->result, &a.pg);
	return end_agg(&a, rc, &e);
}

static void gap_fields(cJSON *o, double target, double v, int depth)
{
	if (depth > 0 && !isnan(v) && !isnan(target)) {
		cJSON_AddNumberToObject(o, "gap", target - v);
		add_num(o, "ratio", v != 0 ? target / v : NAN);
	} else {
		cJSON_AddNullToObject(o, "gap");
		cJSON_AddNullToObject(o, "ratio");
	}
}

static int compare_row(void *ud, const vg_agg_value *v, int depth)
{
	agg_q *a = ud;
	if (depth == 0)
		a->target = v->value;
	cJSON *o = cJSON_CreateObject();
	terr_fields(o, a->r, v->terr);
	cJSON_AddNumberToObject(o, "depth", depth);
	add_period(o, "period", a->period);
	agg_fields_why(o, a->r, a->ind, v);
	gap_fields(o, a->target, v->value, depth);
	membership_fields(o, a->r, v->terr, vg_agg_ctx_period(a->ac),
			  vg_agg_ctx_membership(a->ac));
	cJSON_AddItemToArray(a->rows, o);
	return 0;
}

static int op_compare(vg_api_req *q)
{
	agg_q a = { 0 };
	if (begin_agg(q, &a, AT_TERRITORY, NULL))
		return -1;
	vg_error e = { 0 };
	int rc = vg_compare(a.ac, a.terr, compare_row, &a, &e);
	return end_agg(&a, rc, &e);
}

static int op_rank(vg_api_req *q)
{
	agg_q a = { 0 };
	const char *order = sarg(q, "order");
	if (order && strcmp(order, "asc") && strcmp(order, "desc"))
		return vg__api_fail(q, "bad_argument",
				    "order: '%s' is not desc (position 1 = "
				    "highest value) or asc (position 1 = "
				    "lowest)",
				    order);
	bool asc = order && !strcmp(order, "asc");
	if (begin_agg(q, &a, AT_TERRITORY, NULL))
		return -1;
	vg_error e = { 0 };
	vg_rank rk;
	int rc = vg_rank_of(a.ac, a.terr, a.within, &rk, &e);
	if (!rc) {
		cJSON *o = cJSON_CreateObject();
		terr_fields(o, a.r, a.terr);
		const char *in = a.within ? vg_read_territory_code(a.r, a.within)
					  : NULL;
		add_str_or_null(o, "within", in);
		add_period(o, "period", a.period);
		add_num(o, "value", rk.value.value);
		cJSON_AddStringToObject(o, "status",
					vg_status_name(rk.value.status));
		if (rk.position) {
			cJSON_AddNumberToObject(o, "position",
						asc ? rk.position_asc
						    : rk.position);
			cJSON_AddNumberToObject(o, "percentile", rk.percentile);
		} else {
			cJSON_AddNullToObject(o, "position");
			cJSON_AddNullToObject(o, "percentile");
		}
		cJSON_AddNumberToObject(o, "count", rk.count);
		cJSON_AddStringToObject(o, "order", asc ? "asc" : "desc");
		char why[400];
		add_str_or_null(o, "reason",
				vg_agg_explain(a.r, a.ind, &rk.value, why,
					       sizeof(why)));
		cJSON_AddItemToArray(a.rows, o);
	}
	return end_agg(&a, rc, &e);
}

static int op_disparities(vg_api_req *q)
{
	agg_q a = { 0 };
	if (begin_agg(q, &a, AT_LEVEL_IN, "com"))
		return -1;
	vg_error e = { 0 };
	vg_disparity d = { 0 };
	uint16_t lv = a.level;
	int rc = vg_disparity_of(a.ac, a.terr, lv, &d, &e);
	if (!rc) {
		cJSON *o = cJSON_CreateObject();
		terr_fields(o, a.r, a.terr);
		cJSON_AddStringToObject(o, "level", vg_read_level_name(a.r, lv));
		cJSON_AddNumberToObject(o, "count", d.count);
		cJSON_AddNumberToObject(o, "with_data", d.with_data);
		add_num(o, "min", d.min);
		add_num(o, "q1", d.q1);
		add_num(o, "median", d.median);
		add_num(o, "q3", d.q3);
		add_num(o, "max", d.max);
		add_num(o, "max_min_ratio", d.max_min_ratio);
		add_str_or_null(o, "min_territory",
				d.with_data ? vg_read_territory_code(a.r, d.min_terr)
					    : NULL);
		add_str_or_null(o, "max_territory",
				d.with_data ? vg_read_territory_code(a.r, d.max_terr)
					    : NULL);
		cJSON_AddItemToArray(a.rows, o);
	}
	return end_agg(&a, rc, &e);
}

typedef struct prof_q {
	vg_read *r;
	cJSON *rows;
	double target;
	vg_membership_mode mode;
} prof_q;

static int profile_row(void *ud, uint32_t ind, vg_period period,
		       const vg_agg_value *v, int depth)
{
	prof_q *x = ud;
	vg_indicator *m = malloc(sizeof(*m));
	if (!m || vg_read_indicator(x->r, ind, m, NULL)) {
		free(m);
		return VG_ESTORE;
	}
	if (depth == 0)
		x->target = v->value;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "indicator", m->code);
	cJSON_AddStringToObject(o, "label", m->label);
	cJSON_AddStringToObject(o, "unit", m->unit);
	if (m->decimals >= 0)
		cJSON_AddNumberToObject(o, "decimals", m->decimals);
	else
		cJSON_AddNullToObject(o, "decimals");
	terr_fields(o, x->r, v->terr);
	cJSON_AddNumberToObject(o, "depth", depth);
	if (period)
		add_period(o, "period", period);
	else
		cJSON_AddNullToObject(o, "period");
	agg_fields_why(o, x->r, ind, v);
	gap_fields(o, x->target, v->value, depth);
	if (period)
		membership_fields(o, x->r, v->terr, period, x->mode);
	cJSON_AddItemToArray(x->rows, o);
	free(m);
	return 0;
}

static int op_profile(vg_api_req *q)
{
	vg_period period;
	bool latest;
	int64_t as_of;
	vg_membership_mode mode;
	vg_error e = { 0 };
	if (get_period_latest(q, &period, &latest) || get_as_of(q, &as_of) ||
	    get_membership(q, &mode))
		return -1;
	prof_q x = { .target = NAN, .mode = mode };
	if (vg_read_begin(q->store, &x.r, &e))
		return store_fail(q, &e);
	uint32_t terr;
	if (get_terr(q, x.r, "territory", &terr)) {
		vg_read_end(x.r);
		return -1;
	}
	new_result(q, &x.rows);
	static const char *const echo[] = { "territory", "period",
					    "membership", NULL };
	echo_args(q, echo);
	int rc = vg_profile(x.r, terr, period, as_of, mode, profile_row, &x, &e);
	vg_read_end(x.r);
	if (rc)
		return e.code ? store_fail(q, &e)
			      : vg__api_fail(q, "internal", "%s",
					     vg_strerror(rc));
	return 0;
}

/* ---- daemon operations ---------------------------------------------------- */

static int no_daemon(vg_api_req *q, const char *op)
{
	return vg__api_fail(q, "unavailable",
			    "%s: needs the daemon (vigied); this is offline "
			    "mode",
			    op);
}

static int hook_result(vg_api_req *q, cJSON *res, const char *code)
{
	if (!res)
		return vg__api_fail(q, code ? code : "internal", "%s",
				    q->emsg[0] ? q->emsg : "failed");
	q->result = res;
	return 0;
}

static int op_plugins(vg_api_req *q)
{
	if (!q->hooks || !q->hooks->plugins)
		return no_daemon(q, "plugins");
	cJSON *res = cJSON_CreateObject();
	cJSON *rows = q->hooks->plugins(q->hooks->ud);
	cJSON_AddItemToObject(res, "rows", rows ? rows : cJSON_CreateArray());
	q->result = res;
	return 0;
}

static int op_jobs(vg_api_req *q)
{
	if (!q->hooks || !q->hooks->jobs)
		return no_daemon(q, "jobs");
	int64_t lim = 50;
	if (iarg(q, "limit", &lim) && (lim < 1 || lim > 10000))
		return vg__api_fail(q, "bad_argument",
				    "limit: must be between 1 and 10000");
	cJSON *res = cJSON_CreateObject();
	cJSON *rows = q->hooks->jobs(q->hooks->ud, (size_t)lim);
	cJSON_AddItemToObject(res, "rows", rows ? rows : cJSON_CreateArray());
	q->result = res;
	return 0;
}

static int op_run(vg_api_req *q)
{
	if (!q->hooks || !q->hooks->run)
		return no_daemon(q, "run");
	const char *code = NULL;
	q->emsg[0] = '\0';
	cJSON *res = q->hooks->run(q->hooks->ud, sarg(q, "plugin"),
				   cJSON_GetObjectItemCaseSensitive(q->args,
								    "config"),
				   &code, q->emsg, sizeof(q->emsg));
	return hook_result(q, res, code);
}

static int op_reload(vg_api_req *q)
{
	if (!q->hooks || !q->hooks->reload)
		return no_daemon(q, "reload");
	const char *code = NULL;
	q->emsg[0] = '\0';
	cJSON *res = q->hooks->reload(q->hooks->ud, &code, q->emsg,
				      sizeof(q->emsg));
	return hook_result(q, res, code);
}

/* A path argument that must stay inside the data directory: relative,
 * no "..". Writes the full path into out. */
static int data_path(vg_api_req *q, const char *arg, char *out, size_t n)
{
	const char *p = sarg(q, arg);
	if (!q->data_dir)
		return vg__api_fail(q, "unavailable", "%s: no data directory",
				    arg);
	if (!*p || p[0] == '/' || strstr(p, "..") || strchr(p, '\\'))
		return vg__api_fail(q, "bad_argument",
				    "%s: '%s' must be a relative path inside "
				    "the data directory, without '..'",
				    arg, p);
	if (snprintf(out, n, "%s/%s", q->data_dir, p) >= (int)n)
		return vg__api_fail(q, "bad_argument", "%s: path too long", arg);
	return 0;
}

static int op_backup(vg_api_req *q)
{
	char dir[4096];
	if (data_path(q, "path", dir, sizeof(dir)))
		return -1;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return vg__api_fail(q, "storage", "path: cannot create %s", dir);
	vg_error e = { 0 };
	if (vg_store_backup(q->store, dir, &e))
		return e.code == VG_EEXIST
			       ? vg__api_fail(q, "conflict", "%s", e.msg)
			       : store_fail(q, &e);
	struct stat st;
	char f[4200];
	snprintf(f, sizeof(f), "%s/data.mdb", dir);
	q->result = cJSON_CreateObject();
	cJSON_AddStringToObject(q->result, "path", dir);
	cJSON_AddNumberToObject(q->result, "bytes",
				stat(f, &st) ? 0 : (double)st.st_size);
	return 0;
}

static int op_import(vg_api_req *q)
{
	const char *kind = sarg(q, "kind");
	int (*fn)(vg_store *, const char *, const vg_import_opts *,
		  vg_import_report *, vg_error *);
	if (!strcmp(kind, "indicators"))
		fn = vg_import_indicators;
	else if (!strcmp(kind, "territories"))
		fn = vg_import_territories;
	else if (!strcmp(kind, "points"))
		fn = vg_import_points;
	else
		return vg__api_fail(q, "bad_argument",
				    "kind: '%s' is not indicators, territories "
				    "or points",
				    kind);
	char path[4096];
	if (data_path(q, "path", path, sizeof(path)))
		return -1;
	vg_import_opts io = { 0 };
	const cJSON *sb = cJSON_GetObjectItemCaseSensitive(q->args, "skip_bad");
	io.skip_bad = cJSON_IsTrue(sb);
	vg_import_report *rep = calloc(1, sizeof(*rep));
	if (!rep)
		return vg__api_fail(q, "internal", "out of memory");
	vg_error e = { 0 };
	int rc = fn(q->store, path, &io, rep, &e);
	if (rc) {
		char buf[600];
		size_t off = (size_t)snprintf(q->emsg, sizeof(q->emsg), "%s",
					      vg_error_format(&e, buf,
							      sizeof(buf)));
		for (size_t i = 0; i < rep->nerrors && off < sizeof(q->emsg);
		     i++)
			off += (size_t)snprintf(
				q->emsg + off, sizeof(q->emsg) - off, "; %s",
				vg_error_format(&rep->errors[i], buf,
						sizeof(buf)));
		q->ecode = rc == VG_EBADROWS || rc == VG_EPARSE ||
					   rc == VG_EINVAL
				   ? "bad_input"
			   : rc == VG_ENOTFOUND ? "not_found"
						: "storage";
		free(rep);
		return -1;
	}
	q->result = cJSON_CreateObject();
	cJSON_AddNumberToObject(q->result, "rows", (double)rep->rows);
	cJSON_AddNumberToObject(q->result, "skipped", (double)rep->bad_rows);
	cJSON_AddNumberToObject(q->result, "vintage", rep->commit.vintage);
	cJSON_AddNumberToObject(q->result, "points_new",
				(double)rep->commit.points_new);
	cJSON_AddNumberToObject(q->result, "points_changed",
				(double)rep->commit.points_changed);
	cJSON_AddNumberToObject(q->result, "points_unchanged",
				(double)rep->commit.points_unchanged);
	free(rep);
	return 0;
}

/* ---- perimeters ------------------------------------------------------------ */

/* `perimeter`: a perimeter's membership versions, oldest first, each with
 * the period it runs until (the next version's start) and its members. */
static int op_perimeter(vg_api_req *q)
{
	vg_read *r;
	vg_error e = { 0 };
	if (vg_read_begin(q->store, &r, &e))
		return store_fail(q, &e);
	uint32_t id;
	vg_territory t;
	int rc = get_terr(q, r, "territory", &id);
	if (rc) {
		vg_read_end(r);
		return -1;
	}
	if (vg_read_territory(r, id, &t, &e)) {
		vg_read_end(r);
		return store_fail(q, &e);
	}
	vg_read_end(r);
	if (!t.nversions) {
		vg_territory_clear(&t);
		return vg__api_fail(q, "bad_argument",
				    "territory: '%s' is not a perimeter (it "
				    "has no members)",
				    sarg(q, "territory"));
	}
	cJSON *rows;
	new_result(q, &rows);
	cJSON_AddStringToObject(q->result, "territory", t.code);
	cJSON_AddStringToObject(q->result, "name", t.name);
	for (size_t i = 0; i < t.nversions; i++) {
		const vg_membership *v = &t.versions[i];
		cJSON *o = cJSON_CreateObject();
		if (v->has_from)
			add_period(o, "from", v->from);
		else
			cJSON_AddNullToObject(o, "from");
		if (i + 1 < t.nversions)
			add_period(o, "until", t.versions[i + 1].from);
		else
			cJSON_AddNullToObject(o, "until");
		cJSON_AddNumberToObject(o, "members", (double)v->nmembers);
		/* Comma-separated, as `members` is given to the CLI, so
		 * tables and CSV show it too. */
		char *codes = malloc(v->nmembers * VG_CODE_MAX + 1);
		if (!codes) {
			cJSON_Delete(o);
			vg_territory_clear(&t);
			return vg__api_fail(q, "internal", "out of memory");
		}
		size_t off = 0;
		codes[0] = '\0';
		for (size_t k = 0; k < v->nmembers; k++)
			off += (size_t)sprintf(codes + off, "%s%s",
					       k ? "," : "", v->members[k]);
		cJSON_AddStringToObject(o, "member_codes", codes);
		free(codes);
		cJSON_AddItemToArray(rows, o);
	}
	vg_territory_clear(&t);
	return 0;
}

/* `define_perimeter`: define a perimeter, or add/replace one membership
 * version, without a file. One batch: a vintage like any write, all or
 * nothing. The name and parents of an existing perimeter are kept when
 * not given. */
static int op_define_perimeter(vg_api_req *q)
{
	const char *code = sarg(q, "code"), *name = sarg(q, "name");
	const char *from = sarg(q, "from");
	const cJSON *mem = cJSON_GetObjectItemCaseSensitive(q->args, "members");
	const cJSON *par = cJSON_GetObjectItemCaseSensitive(q->args, "parents");
	vg_territory t = { 0 };
	vg_error e = { 0 };
	if (vg_territory_code_canon(NULL, code, t.code, t.level, NULL) ||
	    !strchr(t.code, ':'))
		return vg__api_fail(q, "bad_argument",
				    "code: '%s' is not a perimeter code "
				    "(level:code, e.g. cls:nantes-nord)",
				    code);
	if (from) {
		if (get_period(q, "from", &t.from))
			return -1;
		t.has_from = true;
	}
	int n = cJSON_GetArraySize(mem);
	if (n < 1)
		return vg__api_fail(q, "bad_argument",
				    "members: at least one territory code");
	int np = cJSON_GetArraySize(par);
	if (np > VG_MAX_PARENTS)
		return vg__api_fail(q, "bad_argument",
				    "parents: at most %d codes", VG_MAX_PARENTS);
	/* Keep what the store has for what the request does not say. */
	vg_read *r;
	if (vg_read_begin(q->store, &r, &e))
		return store_fail(q, &e);
	uint32_t id;
	bool exists = vg_read_territory_id(r, t.code, &id, NULL) == 0;
	vg_territory old = { 0 };
	int rc = exists ? vg_read_territory(r, id, &old, &e) : 0;
	vg_read_end(r);
	if (rc)
		return store_fail(q, &e);
	if (exists && !old.nversions) {
		vg_territory_clear(&old);
		return vg__api_fail(q, "conflict",
				    "code: '%s' is a territory that is not a "
				    "perimeter; it cannot get members",
				    t.code);
	}
	snprintf(t.name, sizeof(t.name), "%s", name ? name : old.name);
	if (!t.name[0]) {
		vg_territory_clear(&old);
		return vg__api_fail(q, "bad_argument",
				    "name: required for a new perimeter");
	}
	const cJSON *it;
	if (par) {
		cJSON_ArrayForEach(it, par)
		{
			snprintf(t.parents[t.nparents++], VG_CODE_MAX, "%s",
				 it->valuestring);
		}
	} else {
		t.nparents = old.nparents;
		memcpy(t.parents, old.parents, sizeof(t.parents));
	}
	vg_territory_clear(&old);
	t.members = calloc((size_t)n, VG_CODE_MAX);
	if (!t.members)
		return vg__api_fail(q, "internal", "out of memory");
	cJSON_ArrayForEach(it, mem)
	{
		if (strlen(it->valuestring) >= VG_CODE_MAX) {
			vg_territory_clear(&t);
			return vg__api_fail(q, "bad_argument",
					    "members: '%.40s...' is too long",
					    it->valuestring);
		}
		snprintf(t.members[t.nmembers++], VG_CODE_MAX, "%s",
			 it->valuestring);
	}
	char origin[128];
	snprintf(origin, sizeof(origin), "api define_perimeter %s", t.code);
	vg_batch_opts bo = { .origin = origin };
	vg_batch *b = NULL;
	vg_commit_info ci = { 0 };
	rc = vg_batch_new(q->store, &bo, &b, &e);
	if (!rc)
		rc = vg_batch_territory(b, &t, &e);
	if (!rc) {
		rc = vg_batch_commit(b, &ci, &e);
		b = NULL; /* commit frees it in every case */
	}
	vg_batch_free(b);
	char canon[VG_CODE_MAX];
	memcpy(canon, t.code, sizeof(canon));
	vg_territory_clear(&t);
	if (rc)
		return vg__api_fail(q,
				    rc == VG_ENOTFOUND ? "not_found"
				    : rc == VG_EINVAL  ? "bad_input"
						       : "storage",
				    "%s", e.msg[0] ? e.msg : vg_strerror(rc));
	q->result = cJSON_CreateObject();
	cJSON_AddStringToObject(q->result, "code", canon);
	if (from)
		cJSON_AddStringToObject(q->result, "from", from);
	else
		cJSON_AddNullToObject(q->result, "from");
	cJSON_AddNumberToObject(q->result, "members", n);
	cJSON_AddNumberToObject(q->result, "vintage", ci.vintage);
	cJSON_AddBoolToObject(q->result, "changed", ci.territories > 0);
	return 0;
}

/* ---- the table ------------------------------------------------------------ */

#define A_IND { "indicator", VG_ARG_STR, true, "indicator code" }
#define A_TERR { "territory", VG_ARG_STR, true, "territory code (com:85146)" }
#define A_PERIOD { "period", VG_ARG_STR, true, "2024, 2024-Q1, 2024-03..." }
#define A_PERIOD_LATEST                                                      \
	{ "period", VG_ARG_STR, true,                                        \
	  "2024, 2024-Q1, 2024-03..., or latest: the most recent period "    \
	  "with a value (named in the answer)" }
#define A_SORT                                                               \
	{ "sort", VG_ARG_STR, false,                                         \
	  "order rows by value, territory or name (rows without a value "    \
	  "last)" },                                                         \
	{ "order", VG_ARG_STR, false, "asc (default) or desc, with sort" }
#define A_ASOF                                                               \
	{ "as_of", VG_ARG_STR, false,                                        \
	  "the data as published at that date (2024-05-01 or "               \
	  "2024-05-01T12:00:00Z)" }
#define A_WITHIN                                                             \
	{ "within", VG_ARG_STR, false, "only territories within this one" }
#define A_PAGE                                                               \
	{ "offset", VG_ARG_INT, false, "rows to skip (paging)" },            \
	{ "limit", VG_ARG_INT, false, "rows per answer (default 10000, at "  \
				      "most 100000)" }
#define A_END { NULL, 0, false, NULL }
#define A_MEMBERSHIP                                                         \
	{ "membership", VG_ARG_STR, false,                                   \
	  "perimeters: in_force (default: each period on the members of "    \
	  "its time) or latest (every period on the latest members)" }

static const vg_api_arg args_none[] = { A_END };
static const vg_api_arg args_territories[] = {
	{ "level", VG_ARG_STR, false, "com, epci, dep, reg, fr..." },
	A_WITHIN,
	{ "search", VG_ARG_STR, false,
	  "name search, accent- and case-insensitive (\"st etienne\")" },
	A_PAGE,
	A_END
};
static const vg_api_arg args_series[] = {
	A_IND, A_TERR,
	{ "from", VG_ARG_STR, false, "first period" },
	{ "to", VG_ARG_STR, false, "last period" },
	A_ASOF, A_END
};
static const vg_api_arg args_history[] = { A_IND, A_TERR, A_PERIOD, A_END };
static const vg_api_arg args_slice[] = {
	A_IND, { "level", VG_ARG_STR, true, "level of the territories" },
	A_PERIOD_LATEST, A_WITHIN, A_ASOF, A_MEMBERSHIP, A_SORT, A_PAGE,
	A_END
};
static const vg_api_arg args_aggregate[] = {
	A_IND, A_PERIOD_LATEST,
	{ "level", VG_ARG_STR, false, "every territory of this level" },
	A_WITHIN,
	{ "territory", VG_ARG_STR, false, "one target instead of a level" },
	{ "territories", VG_ARG_STRS, false,
	  "an ad hoc list of territories (not overlapping): one value over "
	  "all of them" },
	A_ASOF, A_MEMBERSHIP, A_SORT, A_PAGE, A_END
};
static const vg_api_arg args_compare[] = { A_IND, A_TERR, A_PERIOD_LATEST,
					   A_ASOF, A_MEMBERSHIP, A_END };
static const vg_api_arg args_rank[] = {
	A_IND, A_TERR, A_PERIOD_LATEST,
	{ "within", VG_ARG_STR, false,
	  "rank among the territories of its level within this one "
	  "(default: all)" },
	{ "order", VG_ARG_STR, false,
	  "desc (default: position 1 = the highest value) or asc (1 = the "
	  "lowest)" },
	A_ASOF, A_MEMBERSHIP, A_END
};
static const vg_api_arg args_profile[] = {
	A_TERR,
	{ "period", VG_ARG_STR, true,
	  "2024, 2024-Q1..., or latest: per indicator, the most recent "
	  "period with a value for the territory (else for its "
	  "containers), named in each row" },
	A_ASOF, A_MEMBERSHIP, A_END
};
static const vg_api_arg args_perimeter[] = {
	{ "territory", VG_ARG_STR, true, "perimeter code (cls:nantes-nord)" },
	A_END
};
static const vg_api_arg args_define_perimeter[] = {
	{ "code", VG_ARG_STR, true, "perimeter code (cls:nantes-nord)" },
	{ "name", VG_ARG_STR, false,
	  "its name (required for a new perimeter; kept when absent)" },
	{ "members", VG_ARG_STRS, true,
	  "codes of its communes (or other non-perimeter territories)" },
	{ "from", VG_ARG_STR, false,
	  "the period these members apply from: adds or replaces that "
	  "version (absent: the only version, from the beginning)" },
	{ "parents", VG_ARG_STRS, false,
	  "codes of the territories containing it (kept when absent)" },
	A_END
};
static const vg_api_arg args_disparities[] = {
	A_IND, A_TERR, A_PERIOD_LATEST,
	{ "level", VG_ARG_STR, false, "level of the units compared (com)" },
	A_ASOF, A_MEMBERSHIP, A_END
};
static const vg_api_arg args_jobs[] = {
	{ "limit", VG_ARG_INT, false, "newest jobs to list (50)" }, A_END
};
static const vg_api_arg args_run[] = {
	{ "plugin", VG_ARG_STR, true, "plugin name" },
	{ "config", VG_ARG_OBJ, false, "overrides of the plugin's config" },
	A_END
};
static const vg_api_arg args_backup[] = {
	{ "path", VG_ARG_STR, true,
	  "directory for the copy, relative to the data directory" },
	A_END
};
static const vg_api_arg args_import[] = {
	{ "kind", VG_ARG_STR, true, "indicators, territories or points" },
	{ "path", VG_ARG_STR, true, "file, relative to the data directory" },
	{ "skip_bad", VG_ARG_BOOL, false,
	  "import the good rows, report the bad ones" },
	A_END
};
static const vg_api_arg args_subscribe[] = {
	{ "indicators", VG_ARG_STRS, false,
	  "indicator codes (default: every indicator)" },
	A_END
};

#define C(n) { n, false }
#define N(n) { n, true }
#define C_END { NULL, false }
static const vg_api_col cols_kv[] = { C("key"), N("value"), C_END };
static const vg_api_col cols_ind[] = { C("code"), C("label"), C("unit"),
				       C("periodicity"), C("aggregate"),
				       N("decimals"), C("source"), C_END };
static const vg_api_col cols_terr[] = { C("code"), C("level"), C("name"),
					C("parent_codes"), N("members"),
					C_END };
static const vg_api_col cols_point[] = { C("period"), N("value"),
					 C("status"), N("vintage"),
					 C("published"), C_END };
static const vg_api_col cols_slice[] = { C("territory"), C("name"),
					 N("value"), C("status"), C("source"),
					 C("coverage"), C_END };
static const vg_api_col cols_agg[] = {
	C("territory"), C("name"),	N("value"),    C("status"),
	C("source"),	N("members"),	N("with_data"), N("suppressed"),
	N("missing"),	N("via_passage"), N("weight_covered_pct"),	C("coverage"),
	C("reason"),	C_END
};
static const vg_api_col cols_cmp[] = {
	C("territory"), C("name"),     N("depth"), N("value"), C("status"),
	C("source"),	C("coverage"), N("gap"),   N("ratio"), C("period"),
	C("reason"),	C_END
};
static const vg_api_col cols_rank[] = { C("territory"), C("within"),
					N("value"),	N("position"),
					N("count"),	N("percentile"),
					C("period"),	C("order"),
					C("reason"),	C_END };
static const vg_api_col cols_prof[] = {
	C("indicator"), C("label"),  C("unit"),	  C("territory"),
	N("depth"),	N("value"),  C("status"), C("source"),
	C("coverage"),	N("gap"),    C("period"), C("reason"), C_END
};
static const vg_api_col cols_perim[] = { C("from"), C("until"),
					 N("members"), C("member_codes"),
					 C_END };
static const vg_api_col cols_disp[] = {
	C("territory"),	    C("level"),		N("count"), N("with_data"),
	N("min"),	    N("q1"),		N("median"), N("q3"),
	N("max"),	    N("max_min_ratio"), C("min_territory"),
	C("max_territory"), C_END
};
static const vg_api_col cols_plugins[] = {
	C("name"),	  C("state"), C("cron"),	N("every_s"),
	N("next_fire"),	  C("last_status"), N("runs"), N("failures"),
	C("error"),	  C_END
};
static const vg_api_col cols_jobs[] = {
	N("id"),	 C("name"),	  C("trigger"), C("status"),
	N("started_at"), N("duration_s"), N("rows_written"), C("error"),
	C_END
};

static const vg_api_op ops[] = {
	{ "ping", 0, op_ping, args_none, NULL, "liveness and protocol version",
	  "{\"id\":1,\"op\":\"ping\"}" },
	{ "stats", 0, op_stats, args_none, cols_kv,
	  "store size and counts; in the daemon also uptime, connections, "
	  "requests by op, loop busy %, jobs",
	  "{\"id\":2,\"op\":\"stats\"}" },
	{ "indicators", 0, op_indicators, args_none, cols_ind,
	  "every indicator with its unit, periodicity and aggregation rule",
	  "{\"id\":3,\"op\":\"indicators\"}" },
	{ "territories", 0, op_territories, args_territories, cols_terr,
	  "territories by level, container and name",
	  "{\"id\":4,\"op\":\"territories\",\"level\":\"com\",\"search\":"
	  "\"chateauroux\"}" },
	{ "series", 0, op_series, args_series, cols_point,
	  "one territory's values over time",
	  "{\"id\":5,\"op\":\"series\",\"indicator\":\"population\","
	  "\"territory\":\"com:85146\"}" },
	{ "history", 0, op_history, args_history, cols_point,
	  "every published value of one point, oldest first",
	  "{\"id\":6,\"op\":\"history\",\"indicator\":\"population\","
	  "\"territory\":\"com:85146\",\"period\":\"2022\"}" },
	{ "slice", VG_OP_HEAVY, op_slice, args_slice, cols_slice,
	  "every stored value of a level for one period (a map)",
	  "{\"id\":7,\"op\":\"slice\",\"indicator\":\"population\","
	  "\"level\":\"com\",\"period\":\"2022\",\"within\":\"dep:85\"}" },
	{ "aggregate", VG_OP_HEAVY, op_aggregate, args_aggregate, cols_agg,
	  "values at any scale computed with the indicator's rule, with "
	  "coverage",
	  "{\"id\":8,\"op\":\"aggregate\",\"indicator\":\"population\","
	  "\"period\":\"2022\",\"level\":\"epci\",\"within\":\"dep:85\"}" },
	{ "compare", 0, op_compare, args_compare, cols_cmp,
	  "a territory beside each territory containing it and France, "
	  "with the gap",
	  "{\"id\":9,\"op\":\"compare\",\"indicator\":\"population\","
	  "\"territory\":\"com:85146\",\"period\":\"2022\"}" },
	{ "rank", VG_OP_HEAVY, op_rank, args_rank, cols_rank,
	  "position and percentile among the territories of its level",
	  "{\"id\":10,\"op\":\"rank\",\"indicator\":\"population\","
	  "\"territory\":\"com:85146\",\"period\":\"2022\",\"within\":"
	  "\"dep:85\"}" },
	{ "profile", VG_OP_HEAVY, op_profile, args_profile, cols_prof,
	  "every indicator of one territory with its containers' values "
	  "(portrait de territoire)",
	  "{\"id\":11,\"op\":\"profile\",\"territory\":\"epci:200070233\","
	  "\"period\":\"2022\"}" },
	{ "disparities", VG_OP_HEAVY, op_disparities, args_disparities,
	  cols_disp,
	  "spread of the values of its communes: min, quartiles, max, "
	  "max/min",
	  "{\"id\":12,\"op\":\"disparities\",\"indicator\":\"population\","
	  "\"territory\":\"dep:85\",\"period\":\"2022\"}" },
	{ "plugins", VG_OP_DAEMON, op_plugins, args_none, cols_plugins,
	  "loaded plugins, their schedule, next and last run",
	  "{\"id\":13,\"op\":\"plugins\"}" },
	{ "jobs", VG_OP_DAEMON, op_jobs, args_jobs, cols_jobs,
	  "recent and running plugin runs, newest first",
	  "{\"id\":14,\"op\":\"jobs\",\"limit\":10}" },
	{ "run", VG_OP_ADMIN | VG_OP_DAEMON, op_run, args_run, NULL,
	  "start a plugin run now; returns the job id (progress comes as "
	  "events to subscribers)",
	  "{\"id\":15,\"op\":\"run\",\"plugin\":\"insee_population\","
	  "\"token\":\"...\"}" },
	{ "reload", VG_OP_ADMIN | VG_OP_DAEMON, op_reload, args_none, NULL,
	  "reload the plugin directory: changed plugins only",
	  "{\"id\":16,\"op\":\"reload\",\"token\":\"...\"}" },
	{ "backup", VG_OP_ADMIN | VG_OP_HEAVY, op_backup, args_backup, NULL,
	  "hot, compacted copy of the store into a new directory under the "
	  "data directory",
	  "{\"id\":17,\"op\":\"backup\",\"path\":\"backups/2026-11-23\","
	  "\"token\":\"...\"}" },
	{ "import", VG_OP_ADMIN | VG_OP_HEAVY, op_import, args_import, NULL,
	  "import a file of indicators, territories or points (all or "
	  "nothing)",
	  "{\"id\":18,\"op\":\"import\",\"kind\":\"points\",\"path\":"
	  "\"incoming/pop.csv\",\"token\":\"...\"}" },
	{ "perimeter", 0, op_perimeter, args_perimeter, cols_perim,
	  "a perimeter's membership versions, oldest first, with their "
	  "members",
	  "{\"id\":20,\"op\":\"perimeter\",\"territory\":"
	  "\"cls:nantes-nord\"}" },
	{ "define_perimeter", VG_OP_ADMIN | VG_OP_HEAVY, op_define_perimeter,
	  args_define_perimeter, NULL,
	  "define a perimeter or one membership version of it (a vintage, "
	  "all or nothing)",
	  "{\"id\":21,\"op\":\"define_perimeter\",\"code\":"
	  "\"cls:nantes-nord\",\"name\":\"CLS Nantes Nord\",\"members\":"
	  "[\"com:44109\",\"com:44143\"],\"from\":\"2024\","
	  "\"token\":\"...\"}" },
	{ "subscribe", VG_OP_DAEMON, NULL, args_subscribe, NULL,
	  "receive an event whenever new data for these indicators commits, "
	  "and job progress",
	  "{\"id\":19,\"op\":\"subscribe\",\"indicators\":[\"population\"]}" },
};

const vg_api_op *vg_api_ops(size_t *n)
{
	*n = VG_ARRAY_LEN(ops);
	return ops;
}

const vg_api_op *vg_api_find(const char *name)
{
	for (size_t i = 0; i < VG_ARRAY_LEN(ops); i++)
		if (!strcmp(ops[i].name, name))
			return &ops[i];
	return NULL;
}
