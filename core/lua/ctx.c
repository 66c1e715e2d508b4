/* A plugin run: the `ctx` object handed to `run(ctx)`, and the runner
 * that commits everything the run wrote in one transaction.
 *
 * Speed: CSV and xlsx rows reach Lua in batches (one C call per
 * ROWS_PER_BATCH rows, header names interned once), and ctx:put goes
 * straight to vg_batch_point with the last indicator and period cached, so
 * a point costs one C call. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua/lua_int.h"
#include "util/sha256.h"
#include "vigie/common.h"
#include "vigie/csv.h"
#include "vigie/io.h"

#define ROWS_PER_BATCH 256
#define DRY_SAMPLE 5
#define LOG_REJECTS 20
#define JSON_MAX ((size_t)256 << 20)

typedef struct run {
	const vg_plugin *p;
	vg_store *s;
	const vg_run_opts *o;
	vg_run_result *res;
	vg__sandbox sb;
	vg_batch *b;
	uint64_t *counts;  /* per declared indicator */
	const char **ind_ptr; /* interned Lua strings of the codes (anchored
				 in the registry): a pointer compare finds
				 the indicator of most puts */
	cJSON **samples;   /* dry run: per declared indicator */
	uint64_t territories;
	/* caches of ctx:put */
	int last_ind;
	char last_per_s[VG_PERIOD_STRLEN];
	size_t last_per_len;
	vg_period last_per;
	/* checksums of fetched sources */
	vg_sha256 sum;
	unsigned nsources;
	char first_sum[72];
} run;

static const char CTX_MT[] = "vigie.ctx";
static const char SOURCE_MT[] = "vigie.source";
static const char CSV_MT[] = "vigie.csv";
static const char XLSX_MT[] = "vigie.xlsx";
static const char ROWS_KEY = 'R'; /* registry: the Lua rows() iterator */
static const char IND_KEY = 'I';  /* registry: anchors of ind_ptr */

/* Turns a batch function into a row iterator. Runs in the sandbox like
 * plugin code (so it is counted and interruptible). */
static const char ROWS_LUA[] =
	"local batch, h = ...\n"
	"local rows, lines, n, i = nil, nil, 0, 0\n"
	"return function()\n"
	"  if i >= n then\n"
	"    if not h then return nil end\n"
	"    rows, lines, n = batch(h)\n"
	"    i = 0\n"
	"    if n == 0 then h = nil; return nil end\n"
	"  end\n"
	"  i = i + 1\n"
	"  return rows[i], lines[i]\n"
	"end\n";

static run *get_run(lua_State *L)
{
	vg__sandbox_check(L);
	run *r = vg__sandbox_of(L)->user;
	luaL_checkudata(L, 1, CTX_MT);
	return r;
}

static void do_log(run *r, const char *level, const char *msg)
{
	if (r->o->log)
		r->o->log(r->o->ud, level, msg);
}

/* Raise a C-side error as a Lua error located at the plugin's line. */
static int raise_err(lua_State *L, const char *what, const vg_error *e)
{
	char buf[1024];
	vg_error_format(e, buf, sizeof(buf));
	int code = e->code;
	if (code == VG_ESANDBOX || code == VG_ETIMEOUT ||
	    code == VG_ECANCELED)
		return vg__sandbox_kill(L, code, "%s: %s", what, buf);
	return luaL_error(L, "%s: %s", what, buf);
}

/* ---- periods, values ---------------------------------------------------- */

static vg_period arg_period(lua_State *L, run *r, int idx)
{
	char tmp[32];
	size_t len;
	const char *s;
	if (lua_type(L, idx) == LUA_TNUMBER) {
		if (!lua_isinteger(L, idx))
			luaL_error(L, "period %f is not a year (give periods "
				   "as strings: \"2024\", \"2024-Q1\")",
				   lua_tonumber(L, idx));
		len = (size_t)snprintf(tmp, sizeof(tmp), "%lld",
				       (long long)lua_tointeger(L, idx));
		s = tmp;
	} else {
		s = luaL_checklstring(L, idx, &len);
	}
	if (r && len == r->last_per_len && !memcmp(s, r->last_per_s, len))
		return r->last_per;
	vg_period per;
	if (vg_period_parse(s, len, &per))
		luaL_error(L, "'%s' is not a period (2024, 2024-Q1, 2024-03, "
			   "2024-03-15)", s);
	if (r && len < sizeof(r->last_per_s)) {
		memcpy(r->last_per_s, s, len);
		r->last_per_len = len;
		r->last_per = per;
	}
	return per;
}

static int find_ind(lua_State *L, run *r, int idx)
{
	size_t len;
	const char *s = luaL_checklstring(L, idx, &len);
	const vg_plugin *p = r->p;
	for (size_t i = 0; r->ind_ptr && i < p->ninds; i++)
		if (r->ind_ptr[i] == s)
			return (int)i;
	if (r->last_ind >= 0 && !strcmp(p->inds[r->last_ind].code, s))
		return r->last_ind;
	for (size_t i = 0; i < p->ninds; i++)
		if (!strcmp(p->inds[i].code, s))
			return r->last_ind = (int)i;
	return luaL_error(L, "indicator '%s' is not declared in the "
			  "manifest's 'indicators' (a plugin writes only the "
			  "indicators it declares)", s);
}

static void push_point(lua_State *L, run *r, const vg_point *pt, bool terr)
{
	(void)r;
	lua_createtable(L, 0, 3);
	char ps[VG_PERIOD_STRLEN];
	if (vg_period_format(pt->period, ps, sizeof(ps)) == 0) {
		lua_pushstring(L, ps);
		lua_setfield(L, -2, "period");
	}
	if (!isnan(pt->value)) {
		lua_pushnumber(L, pt->value);
		lua_setfield(L, -2, "value");
	}
	lua_pushstring(L, vg_status_name(pt->status));
	lua_setfield(L, -2, "status");
	(void)terr;
}

/* ---- ctx:put, ctx:reject, ctx:define_territory ------------------------ */

static int ctx_put(lua_State *L)
{
	run *r = get_run(L);
	int ii = find_ind(L, r, 2);
	size_t tlen;
	const char *terr = luaL_checklstring(L, 3, &tlen);
	if (strlen(terr) != tlen)
		return luaL_error(L, "ctx:put: the territory code contains a "
				  "NUL byte");
	vg_period per = arg_period(L, r, 4);
	vg_status st = VG_STATUS_OK;
	bool has_status = !lua_isnoneornil(L, 6);
	if (has_status) {
		size_t n;
		const char *ss = luaL_checklstring(L, 6, &n);
		if (vg_status_parse(ss, n, &st))
			return luaL_error(L, "ctx:put: unknown status '%s' (ok, "
					  "provisional, estimated, suppressed, "
					  "missing)", ss);
	}
	double v = NAN;
	int vt = lua_type(L, 5);
	if (vt == LUA_TNUMBER) {
		v = lua_tonumber(L, 5);
	} else if (vt == LUA_TSTRING) {
		size_t n;
		const char *vs = lua_tolstring(L, 5, &n);
		bool supp = false;
		if (vg_value_parse(vs, n, &v, &supp))
			return luaL_error(L, "ctx:put(%s, %s): value '%s' is "
					  "not a number", r->p->inds[ii].code,
					  terr, vs);
		if (supp && !has_status)
			st = VG_STATUS_SUPPRESSED;
	} else if (st != VG_STATUS_SUPPRESSED && st != VG_STATUS_MISSING) {
		return luaL_error(L, "ctx:put(%s, %s): the value is %s, not a "
				  "number (tonumber of \"12,5\" is nil: pass "
				  "the string, or status 'missing' or "
				  "'suppressed')", r->p->inds[ii].code, terr,
				  luaL_typename(L, 5));
	}
	vg_error e;
	if (vg_batch_point(r->b, r->p->inds[ii].code, terr, per, v, st, &e))
		return luaL_error(L, "ctx:put: %s", e.msg);
	r->counts[ii]++;
	r->res->rows_written++;
	if (r->samples && cJSON_GetArraySize(r->samples[ii]) < DRY_SAMPLE) {
		cJSON *o = cJSON_CreateObject();
		char ps[VG_PERIOD_STRLEN] = "";
		vg_period_format(per, ps, sizeof(ps));
		cJSON_AddStringToObject(o, "territory", terr);
		cJSON_AddStringToObject(o, "period", ps);
		if (st == VG_STATUS_SUPPRESSED || st == VG_STATUS_MISSING)
			cJSON_AddNullToObject(o, "value");
		else
			cJSON_AddNumberToObject(o, "value", v);
		cJSON_AddStringToObject(o, "status", vg_status_name(st));
		cJSON_AddItemToArray(r->samples[ii], o);
	}
	return 0;
}

static int ctx_reject(lua_State *L)
{
	run *r = get_run(L);
	const char *why = luaL_optstring(L, 2, "rejected");
	r->res->rows_rejected++;
	if (r->res->rows_rejected <= LOG_REJECTS) {
		lua_Debug ar;
		int line = 0;
		if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar))
			line = ar.currentline;
		char m[600];
		snprintf(m, sizeof(m), "%s:%d: row rejected: %s", r->p->path,
			 line, why);
		do_log(r, "warn", m);
	}
	return 0;
}

static void str_field(lua_State *L, int t, const char *k, char *out,
		      size_t n, bool required)
{
	lua_getfield(L, t, k);
	if (lua_isnil(L, -1) && !required) {
		lua_pop(L, 1);
		return;
	}
	size_t len;
	const char *s = lua_tolstring(L, -1, &len);
	if (!s || lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "ctx:define_territory: '%s' must be a string", k);
	if (len >= n)
		luaL_error(L, "ctx:define_territory: '%s' longer than %d bytes",
			   k, (int)n - 1);
	memcpy(out, s, len + 1);
	lua_pop(L, 1);
}

/* `successors = { {code = "com:85146", weight = 1}, ... }` of the table at
 * index 2 into t (an old code: the passage table). Read before members
 * because it allocates nothing: a Lua error here leaks nothing. As in the
 * territories CSV, one successor may omit its weight (1: a merger); a
 * split gives every share. Range, sum, own code and "no parents nor
 * members" are vg_batch_territory's checks, shared with the CSV import;
 * that the successors exist is checked at commit (they may be defined
 * later in the run). */
static void successors_field(lua_State *L, const char *code, vg_territory *t)
{
	int ty = lua_getfield(L, 2, "successors");
	if (ty == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	if (ty != LUA_TTABLE)
		luaL_error(L, "ctx:define_territory{code = '%s'}: 'successors' "
			   "must be a list of {code = ..., weight = ...}",
			   code);
	size_t n = lua_rawlen(L, -1);
	if (n == 0)
		luaL_error(L, "ctx:define_territory{code = '%s'}: 'successors' "
			   "is empty (leave it out for a current territory)",
			   code);
	if (n > VG_MAX_SUCCESSORS)
		luaL_error(L, "ctx:define_territory{code = '%s'}: more than %d "
			   "successors", code, VG_MAX_SUCCESSORS);
	for (size_t i = 0; i < n; i++) {
		int k = (int)i + 1;
		if (lua_rawgeti(L, -1, k) != LUA_TTABLE)
			luaL_error(L, "ctx:define_territory{code = '%s'}: "
				   "successors[%d] is not a table {code = ..., "
				   "weight = ...}", code, k);
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			const char *key = lua_type(L, -2) == LUA_TSTRING
						  ? lua_tostring(L, -2)
						  : NULL;
			if (!key || (strcmp(key, "code") && strcmp(key, "weight")))
				luaL_error(L, "ctx:define_territory{code = "
					   "'%s'}: successors[%d]: unknown key "
					   "'%s' (code, weight)", code, k,
					   key ? key : "?");
			lua_pop(L, 1);
		}
		size_t len = 0; /* luaL_error is not marked noreturn */
		const char *s = NULL;
		if (lua_getfield(L, -1, "code") == LUA_TSTRING)
			s = lua_tolstring(L, -1, &len);
		if (!s || len == 0 || len >= VG_CODE_MAX || strlen(s) != len)
			luaL_error(L, "ctx:define_territory{code = '%s'}: "
				   "successors[%d].code is not a territory "
				   "code", code, k);
		memcpy(t->successors[i].code, s, len + 1);
		lua_pop(L, 1);
		double w = 1;
		int wt = lua_getfield(L, -1, "weight");
		if (wt == LUA_TNUMBER)
			w = lua_tonumber(L, -1);
		else if (wt != LUA_TNIL || n > 1)
			luaL_error(L, "ctx:define_territory{code = '%s'}: "
				   "successors[%d].weight must be a number%s",
				   code, k, n > 1 ? " (a split gives every "
						    "share)" : "");
		t->successors[i].weight = w;
		lua_pop(L, 2);
	}
	t->nsuccessors = n;
	lua_pop(L, 1);
}

static int ctx_define_territory(lua_State *L)
{
	run *r = get_run(L);
	luaL_checktype(L, 2, LUA_TTABLE);
	vg_territory t;
	memset(&t, 0, sizeof(t));
	char raw[VG_CODE_MAX] = "";
	str_field(L, 2, "code", raw, sizeof(raw), true);
	str_field(L, 2, "name", t.name, sizeof(t.name), true);
	char from[VG_PERIOD_STRLEN + 1] = "";
	str_field(L, 2, "from", from, sizeof(from), false);
	static const char *const known[] = { "code", "name", "parents",
					     "members", "successors", "from",
					     NULL };
	lua_pushnil(L);
	while (lua_next(L, 2)) {
		bool ok = false;
		for (const char *const *k = known; *k; k++)
			ok |= lua_type(L, -2) == LUA_TSTRING &&
			      !strcmp(lua_tostring(L, -2), *k);
		if (!ok)
			return luaL_error(L, "ctx:define_territory: unknown key "
					  "'%s' (code, name, parents, "
					  "members, successors, from)",
					  lua_type(L, -2) ==
					  LUA_TSTRING ? lua_tostring(L, -2)
						      : "?");
		lua_pop(L, 1);
	}
	vg_error e;
	if (vg_territory_code_canon(NULL, raw, t.code, t.level, &e))
		return luaL_error(L, "ctx:define_territory: %s", e.msg);
	/* from: the period these members apply from (a new membership
	 * version); absent, they are the only version. */
	if (from[0]) {
		if (vg_period_parse(from, strlen(from), &t.from))
			return luaL_error(L, "ctx:define_territory: from '%s' "
					  "is not a period (2024, 2024-Q1, "
					  "2024-03, 2024-03-15)", from);
		t.has_from = true;
	}
	if (lua_getfield(L, 2, "parents") == LUA_TTABLE) {
		size_t n = lua_rawlen(L, -1);
		if (n > VG_MAX_PARENTS)
			return luaL_error(L, "ctx:define_territory: more than "
					  "%d parents", VG_MAX_PARENTS);
		for (size_t i = 0; i < n; i++) {
			lua_rawgeti(L, -1, (lua_Integer)i + 1);
			const char *s = lua_tostring(L, -1);
			if (!s || strlen(s) >= VG_CODE_MAX)
				return luaL_error(L, "ctx:define_territory: "
						  "parents[%d] is not a "
						  "territory code", (int)i + 1);
			snprintf(t.parents[t.nparents++], VG_CODE_MAX, "%s", s);
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
	successors_field(L, raw, &t);
	if (lua_getfield(L, 2, "members") == LUA_TTABLE) {
		size_t n = lua_rawlen(L, -1);
		/* Lua owns nothing here: a failing luaL_error below would
		 * leak t.members, so check everything before allocating. */
		for (size_t i = 0; i < n; i++) {
			lua_rawgeti(L, -1, (lua_Integer)i + 1);
			const char *s = lua_tostring(L, -1);
			if (!s || strlen(s) >= VG_CODE_MAX)
				return luaL_error(L, "ctx:define_territory: "
						  "members[%d] is not a "
						  "territory code", (int)i + 1);
			lua_pop(L, 1);
		}
		if (n) {
			t.members = calloc(n, VG_CODE_MAX);
			if (!t.members)
				return luaL_error(L, "out of memory");
			for (size_t i = 0; i < n; i++) {
				lua_rawgeti(L, -1, (lua_Integer)i + 1);
				snprintf(t.members[i], VG_CODE_MAX, "%s",
					 lua_tostring(L, -1));
				lua_pop(L, 1);
			}
			t.nmembers = n;
		}
	}
	lua_pop(L, 1);
	int rc = vg_batch_territory(r->b, &t, &e);
	vg_territory_clear(&t);
	if (rc)
		return luaL_error(L, "ctx:define_territory: %s", e.msg);
	r->territories++;
	return 0;
}

/* ---- reads: ctx:get, ctx:series, ctx:slice ----------------------------- */

typedef struct read_args {
	uint32_t ind, terr, within;
	uint16_t level;
} read_args;

static void read_fail(lua_State *L, vg_read *rd, const char *fn,
		      const vg_error *e)
{
	vg_read_end(rd);
	luaL_error(L, "%s: %s", fn, e->msg);
}

static int ctx_get(lua_State *L)
{
	run *r = get_run(L);
	const char *ind = luaL_checkstring(L, 2), *terr = luaL_checkstring(L, 3);
	vg_period per = arg_period(L, NULL, 4);
	vg_read *rd;
	vg_error e;
	if (vg_read_begin(r->s, &rd, &e))
		return luaL_error(L, "ctx:get: %s", e.msg);
	uint32_t ii = 0, ti = 0;
	if (vg_read_indicator_id(rd, ind, &ii, &e) ||
	    vg_read_territory_id(rd, terr, &ti, &e)) {
		vg_read_end(rd);
		lua_pushnil(L);
		lua_pushstring(L, e.msg);
		return 2;
	}
	vg_point pt;
	int rc = vg_read_point(rd, ii, ti, per, VG_LATEST, &pt);
	vg_read_end(rd);
	if (rc) {
		lua_pushnil(L);
		lua_pushliteral(L, "no such point");
		return 2;
	}
	if (isnan(pt.value))
		lua_pushnil(L);
	else
		lua_pushnumber(L, pt.value);
	lua_pushstring(L, vg_status_name(pt.status));
	return 2;
}

/* ctx:territory(code): what the store knows of a territory (committed
 * data only, as ctx:get) — {code, level, name [, successors = {{code,
 * weight}...}]} — or nil and why. Lets a plugin test whether a code of its
 * source exists without provoking and parsing a ctx:put error. Copied
 * into C buffers first: no Lua allocation (which may raise) while the
 * read transaction is open. */
static int ctx_territory(lua_State *L)
{
	run *r = get_run(L);
	const char *code = luaL_checkstring(L, 2);
	vg_read *rd;
	vg_error e;
	if (vg_read_begin(r->s, &rd, &e))
		return luaL_error(L, "ctx:territory: %s", e.msg);
	uint32_t id = 0;
	uint16_t lvl = 0;
	if (vg_read_territory_id(rd, code, &id, &e)) {
		vg_read_end(rd);
		lua_pushnil(L);
		lua_pushstring(L, e.msg);
		return 2;
	}
	char canon[VG_CODE_MAX], level[VG_LEVEL_MAX] = "", name[256];
	snprintf(canon, sizeof(canon), "%s", vg_read_territory_code(rd, id));
	const char *nm = vg_read_territory_name(rd, id);
	snprintf(name, sizeof(name), "%s", nm ? nm : "");
	if (vg_read_territory_level(rd, id, &lvl) == 0) {
		const char *ln = vg_read_level_name(rd, lvl);
		snprintf(level, sizeof(level), "%s", ln ? ln : "");
	}
	const vg_passage *ps;
	size_t ns = vg_read_territory_successors(rd, id, &ps);
	char succ[VG_MAX_SUCCESSORS][VG_CODE_MAX];
	double w[VG_MAX_SUCCESSORS];
	if (ns > VG_MAX_SUCCESSORS)
		ns = VG_MAX_SUCCESSORS;
	for (size_t i = 0; i < ns; i++) {
		const char *sc = vg_read_territory_code(rd, ps[i].terr);
		snprintf(succ[i], VG_CODE_MAX, "%s", sc ? sc : "");
		w[i] = ps[i].weight;
	}
	vg_read_end(rd);
	lua_createtable(L, 0, 4);
	lua_pushstring(L, canon);
	lua_setfield(L, -2, "code");
	lua_pushstring(L, level);
	lua_setfield(L, -2, "level");
	lua_pushstring(L, name);
	lua_setfield(L, -2, "name");
	if (ns) {
		lua_createtable(L, (int)ns, 0);
		for (size_t i = 0; i < ns; i++) {
			lua_createtable(L, 0, 2);
			lua_pushstring(L, succ[i]);
			lua_setfield(L, -2, "code");
			lua_pushnumber(L, w[i]);
			lua_setfield(L, -2, "weight");
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		lua_setfield(L, -2, "successors");
	}
	return 1;
}

/* Points are collected in C and turned into Lua tables only after the
 * read transaction ended: a Lua error (memory cap) raised inside an LMDB
 * iteration would leave the transaction open. */
typedef struct cpoint {
	vg_point pt;
	char terr[VG_CODE_MAX];
} cpoint;

typedef struct collect {
	vg_read *rd;
	cpoint *v;
	size_t n, cap, max;
	bool terr;
} collect;

static int collect_cb(void *ud, const vg_point *pt)
{
	collect *c = ud;
	if (c->n == c->max)
		return VG_ETOOBIG;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		cpoint *v = realloc(c->v, cap * sizeof(*v));
		if (!v)
			return VG_ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n].pt = *pt;
	c->v[c->n].terr[0] = '\0';
	if (c->terr) {
		const char *code = vg_read_territory_code(c->rd, pt->terr);
		snprintf(c->v[c->n].terr, VG_CODE_MAX, "%s", code ? code : "?");
	}
	c->n++;
	return 0;
}

typedef struct collect_guard {
	cpoint *v;
} collect_guard;

static int collect_gc(lua_State *L)
{
	collect_guard *g = lua_touserdata(L, 1);
	free(g->v);
	g->v = NULL;
	return 0;
}

/* Pushed before the read starts, so no Lua allocation happens between
 * collecting and guarding. */
static collect_guard *new_collect_guard(lua_State *L)
{
	collect_guard *g = lua_newuserdatauv(L, sizeof(*g), 0);
	g->v = NULL;
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, collect_gc);
	lua_setfield(L, -2, "__gc");
	lua_setmetatable(L, -2);
	return g;
}

/* Push the list of collected points (owned by the guard g); frees them
 * (now or by the GC). */
static int push_collected(lua_State *L, collect_guard *g, collect *c,
			  const char *fn, int rc)
{
	g->v = c->v;
	if (rc == VG_ETOOBIG)
		return luaL_error(L, "%s: more than %d points", fn,
				  (int)c->max);
	if (rc)
		return luaL_error(L, "%s: %s", fn, vg_strerror(rc));
	lua_createtable(L, (int)c->n, 0);
	for (size_t i = 0; i < c->n; i++) {
		push_point(L, NULL, &c->v[i].pt, c->terr);
		if (c->terr) {
			lua_pushstring(L, c->v[i].terr);
			lua_setfield(L, -2, "territory");
		}
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	free(g->v);
	g->v = NULL;
	return 1;
}

#define COLLECT_MAX 10000000

static int ctx_series(lua_State *L)
{
	run *r = get_run(L);
	const char *ind = luaL_checkstring(L, 2), *terr = luaL_checkstring(L, 3);
	vg_period from = lua_isnoneornil(L, 4) ? 0 : arg_period(L, NULL, 4);
	vg_period to = lua_isnoneornil(L, 5) ? 0 : arg_period(L, NULL, 5);
	collect_guard *g = new_collect_guard(L);
	vg_read *rd;
	vg_error e;
	if (vg_read_begin(r->s, &rd, &e))
		return luaL_error(L, "ctx:series: %s", e.msg);
	uint32_t ii = 0, ti = 0;
	if (vg_read_indicator_id(rd, ind, &ii, &e) ||
	    vg_read_territory_id(rd, terr, &ti, &e))
		read_fail(L, rd, "ctx:series", &e);
	collect c = { .rd = rd, .max = COLLECT_MAX };
	int rc = vg_read_series(rd, ii, ti, from, to, VG_LATEST, collect_cb, &c);
	vg_read_end(rd);
	return push_collected(L, g, &c, "ctx:series", rc);
}

static int ctx_slice(lua_State *L)
{
	run *r = get_run(L);
	const char *ind = luaL_checkstring(L, 2);
	vg_period per = arg_period(L, NULL, 3);
	const char *level = luaL_checkstring(L, 4);
	const char *within = luaL_optstring(L, 5, NULL);
	collect_guard *g = new_collect_guard(L);
	vg_read *rd;
	vg_error e;
	if (vg_read_begin(r->s, &rd, &e))
		return luaL_error(L, "ctx:slice: %s", e.msg);
	uint32_t ii = 0, wi = 0;
	uint16_t li = 0;
	if (vg_read_indicator_id(rd, ind, &ii, &e) ||
	    vg_read_level_id(rd, level, &li, &e) ||
	    (within && vg_read_territory_id(rd, within, &wi, &e)))
		read_fail(L, rd, "ctx:slice", &e);
	collect c = { .rd = rd, .max = COLLECT_MAX, .terr = true };
	int rc = vg_read_slice(rd, ii, per, li, wi, VG_LATEST, collect_cb, &c);
	vg_read_end(rd);
	return push_collected(L, g, &c, "ctx:slice", rc);
}

/* ---- ctx:log, ctx:progress, print --------------------------------------- */

static int ctx_log(lua_State *L)
{
	run *r = get_run(L);
	const char *level = "info", *msg;
	if (lua_gettop(L) >= 3) {
		static const char *const lv[] = { "debug", "info", "warn",
						  "error", NULL };
		level = lv[luaL_checkoption(L, 2, NULL, lv)];
		msg = luaL_tolstring(L, 3, NULL);
	} else {
		msg = luaL_tolstring(L, 2, NULL);
	}
	do_log(r, level, msg);
	return 0;
}

static int lua_print(lua_State *L)
{
	vg__sandbox_check(L);
	run *r = vg__sandbox_of(L)->user;
	/* Count before luaL_buffinit, which may push a placeholder. */
	int n = lua_gettop(L);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, '\t');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	do_log(r, "info", lua_tostring(L, -1));
	return 0;
}

static int ctx_progress(lua_State *L)
{
	run *r = get_run(L);
	lua_Number done = luaL_checknumber(L, 2), total = luaL_optnumber(L, 3, 0);
	if (!(done >= 0) || !(total >= 0))
		return luaL_error(L, "ctx:progress: counts must be >= 0");
	if (r->o->progress)
		r->o->progress(r->o->ud, (uint64_t)done, (uint64_t)total);
	return 0;
}

/* ---- sources ------------------------------------------------------------ */

static int source_gc(lua_State *L)
{
	vg__source_clear(luaL_checkudata(L, 1, SOURCE_MT));
	return 0;
}

static int source_index(lua_State *L)
{
	vg__source *s = luaL_checkudata(L, 1, SOURCE_MT);
	const char *k = luaL_checkstring(L, 2);
	if (!strcmp(k, "name"))
		lua_pushstring(L, s->name ? s->name : "");
	else if (!strcmp(k, "checksum"))
		lua_pushstring(L, s->checksum);
	else if (!strcmp(k, "size"))
		lua_pushinteger(L, (lua_Integer)s->len);
	else
		lua_pushnil(L);
	return 1;
}

static int source_tostring(lua_State *L)
{
	vg__source *s = luaL_checkudata(L, 1, SOURCE_MT);
	lua_pushfstring(L, "source %s (%s)", s->name ? s->name : "?",
			s->checksum);
	return 1;
}

static vg__source *new_source(lua_State *L)
{
	vg__source *s = lua_newuserdatauv(L, sizeof(*s), 0);
	memset(s, 0, sizeof(*s));
	luaL_setmetatable(L, SOURCE_MT);
	return s;
}

static void add_checksum(run *r, const char *sum)
{
	if (!r->nsources++)
		snprintf(r->first_sum, sizeof(r->first_sum), "%s", sum);
	vg_sha256_update(&r->sum, sum, strlen(sum));
}

static int ctx_fetch(lua_State *L)
{
	run *r = get_run(L);
	const char *what = luaL_checkstring(L, 2);
	vg__source *s = new_source(L);
	vg_error e;
	vg_error_clear(&e);
	if (vg__fetch(r->p, what, r->sb.deadline, r->o->cancel, s, &e))
		return raise_err(L, "ctx:fetch", &e);
	add_checksum(r, s->checksum);
	return 1;
}

/* The source at idx: a source object, or a string fetched now. Leaves
 * the source userdata at the top of the stack. */
static vg__source *arg_source(lua_State *L, run *r, int idx)
{
	if (lua_type(L, idx) == LUA_TSTRING) {
		lua_pushcfunction(L, ctx_fetch);
		lua_pushvalue(L, 1);
		lua_pushvalue(L, idx);
		lua_call(L, 2, 1);
		return lua_touserdata(L, -1);
	}
	vg__source *s = luaL_checkudata(L, idx, SOURCE_MT);
	lua_pushvalue(L, idx);
	return s;
}

/* The bytes of a source, for readers that need them whole. A file's
 * bytes are held by a guard userdata pushed first (freed by the GC if a
 * Lua error unwinds before the caller frees them with bytes_done), so a
 * memory kill or an error never leaks them. */
typedef struct bytes_guard {
	unsigned char *p;
} bytes_guard;

static int bytes_guard_gc(lua_State *L)
{
	bytes_guard *g = lua_touserdata(L, 1);
	free(g->p);
	g->p = NULL;
	return 0;
}

static const unsigned char *source_bytes(lua_State *L, const vg__source *s,
					 size_t max, size_t *len,
					 const char *fn, bytes_guard **gout)
{
	bytes_guard *g = lua_newuserdatauv(L, sizeof(*g), 0);
	g->p = NULL;
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, bytes_guard_gc);
	lua_setfield(L, -2, "__gc");
	lua_setmetatable(L, -2);
	unsigned char *d;
	bool owned;
	vg_error e;
	if (vg__source_bytes(s, max, &d, len, &owned, &e))
		raise_err(L, fn, &e);
	if (owned)
		g->p = d;
	*gout = g;
	return d;
}

static void bytes_done(bytes_guard *g)
{
	free(g->p);
	g->p = NULL;
}

static int source_text(lua_State *L)
{
	run *r = get_run(L);
	vg__source *s = arg_source(L, r, 2);
	size_t n;
	bytes_guard *g;
	const unsigned char *d = source_bytes(L, s, r->p->memory, &n,
					      "ctx:text", &g);
	lua_pushlstring(L, (const char *)d, n);
	bytes_done(g);
	return 1;
}

/* ---- ctx:csv -------------------------------------------------------------- */

/* Rows keyed by column name would silently keep the last of two columns
 * of the same name (INSEE sheets repeat "Ensemble" under two headings):
 * refuse, so the plugin reads by position instead. The header table is at
 * the top of the stack. */
static void check_header(lua_State *L, const char *fn, const char *src,
			 size_t n)
{
	int t = lua_gettop(L);
	lua_newtable(L); /* name -> column */
	for (size_t i = 1; i <= n; i++) {
		lua_rawgeti(L, t, (lua_Integer)i);
		lua_pushvalue(L, -1);
		if (lua_rawget(L, t + 1) != LUA_TNIL)
			luaL_error(L, "%s: %s: columns %d and %d are both named "
				   "'%s': read with header = false and pick "
				   "columns by position", fn, src,
				   (int)lua_tointeger(L, -1), (int)i,
				   lua_tostring(L, -2));
		lua_pop(L, 1);
		lua_pushinteger(L, (lua_Integer)i);
		lua_rawset(L, t + 1);
	}
	lua_pop(L, 1);
}

typedef struct csv_h {
	vg_csv *c;
	size_t nhdr;
} csv_h;

static int csv_gc(lua_State *L)
{
	csv_h *h = luaL_checkudata(L, 1, CSV_MT);
	vg_csv_close(h->c);
	h->c = NULL;
	return 0;
}

/* One batch: rows, lines, n. */
static int csv_batch(lua_State *L)
{
	vg__sandbox_check(L);
	vg__sandbox *sb = vg__sandbox_of(L);
	csv_h *h = luaL_checkudata(L, 1, CSV_MT);
	if (sb->cancel && *sb->cancel)
		return vg__sandbox_kill(L, VG_ECANCELED, "run canceled");
	if (vg__now() > sb->deadline)
		return vg__sandbox_kill(L, VG_ETIMEOUT, "deadline exceeded "
					"(manifest 'timeout') while reading a "
					"CSV");
	lua_createtable(L, ROWS_PER_BATCH, 0);
	lua_createtable(L, ROWS_PER_BATCH, 0);
	lua_getiuservalue(L, 1, 1); /* header names, index 4 */
	int n = 0;
	while (h->c && n < ROWS_PER_BATCH) {
		vg_csv_row *row;
		vg_error e;
		int rc = vg_csv_next(h->c, &row, &e);
		if (rc < 0) {
			char buf[1024];
			return luaL_error(L, "ctx:csv: %s",
					  vg_error_format(&e, buf, sizeof(buf)));
		}
		if (rc == 0) {
			vg_csv_close(h->c);
			h->c = NULL;
			break;
		}
		if (h->nhdr) {
			lua_createtable(L, 0, (int)h->nhdr);
			size_t m = row->nfields < h->nhdr ? row->nfields
							  : h->nhdr;
			for (size_t i = 0; i < m; i++) {
				lua_rawgeti(L, 4, (lua_Integer)i + 1);
				lua_pushlstring(L, row->fields[i].ptr,
						row->fields[i].len);
				lua_rawset(L, -3);
			}
			/* Columns beyond the header keep their position. */
			for (size_t i = m; i < row->nfields; i++) {
				lua_pushlstring(L, row->fields[i].ptr,
						row->fields[i].len);
				lua_rawseti(L, -2, (lua_Integer)i + 1);
			}
		} else {
			lua_createtable(L, (int)row->nfields, 0);
			for (size_t i = 0; i < row->nfields; i++) {
				lua_pushlstring(L, row->fields[i].ptr,
						row->fields[i].len);
				lua_rawseti(L, -2, (lua_Integer)i + 1);
			}
		}
		n++;
		lua_rawseti(L, 2, n);
		lua_pushinteger(L, row->line);
		lua_rawseti(L, 3, n);
	}
	lua_pop(L, 1);
	lua_pushinteger(L, n);
	return 3;
}

/* Push the iterator over the batches of the handle at `handle`. */
static int push_rows_iter(lua_State *L, lua_CFunction batch, int handle)
{
	lua_rawgetp(L, LUA_REGISTRYINDEX, &ROWS_KEY);
	lua_pushcfunction(L, batch);
	lua_pushvalue(L, handle);
	lua_call(L, 2, 1);
	return 1;
}

static int opt_bool(lua_State *L, int t, const char *k, int dflt)
{
	if (lua_isnoneornil(L, t))
		return dflt;
	int ty = lua_getfield(L, t, k);
	int v = ty == LUA_TNIL ? dflt : lua_toboolean(L, -1);
	if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
		luaL_error(L, "option '%s' must be a boolean", k);
	lua_pop(L, 1);
	return v;
}

static void check_opts(lua_State *L, int t, const char *fn,
		       const char *const *known)
{
	if (lua_isnoneornil(L, t))
		return;
	luaL_checktype(L, t, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, t)) {
		bool ok = false;
		for (const char *const *k = known; *k; k++)
			ok |= lua_type(L, -2) == LUA_TSTRING &&
			      !strcmp(lua_tostring(L, -2), *k);
		if (!ok)
			luaL_error(L, "%s: unknown option '%s'", fn,
				   lua_type(L, -2) == LUA_TSTRING
					   ? lua_tostring(L, -2)
					   : "?");
		lua_pop(L, 1);
	}
}

static int ctx_csv(lua_State *L)
{
	run *r = get_run(L);
	lua_settop(L, 3);
	static const char *const known[] = { "sep", "header", "skip",
					     "encoding", NULL };
	check_opts(L, 3, "ctx:csv", known);
	vg_csv_opts co = { 0 };
	co.header = opt_bool(L, 3, "header", 1);
	if (!lua_isnil(L, 3)) {
		if (lua_getfield(L, 3, "sep") != LUA_TNIL) {
			size_t n;
			const char *s = lua_tolstring(L, -1, &n);
			if (!s || n != 1)
				return luaL_error(L, "ctx:csv: 'sep' must be "
						  "one character");
			co.sep = s[0];
		}
		if (lua_getfield(L, 3, "skip") != LUA_TNIL) {
			if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
				return luaL_error(L, "ctx:csv: 'skip' must be "
						  "a number of lines >= 0");
			co.skip_lines = (size_t)lua_tointeger(L, -1);
		}
		if (lua_getfield(L, 3, "encoding") != LUA_TNIL) {
			const char *enc = lua_tostring(L, -1);
			if (enc && (!strcasecmp(enc, "latin-1") ||
				    !strcasecmp(enc, "latin1") ||
				    !strcasecmp(enc, "iso-8859-1") ||
				    !strcasecmp(enc, "cp1252") ||
				    !strcasecmp(enc, "windows-1252")))
				co.encoding = VG_CSV_LATIN1;
			else if (!enc || (strcasecmp(enc, "utf-8") &&
					  strcasecmp(enc, "utf8")))
				return luaL_error(L, "ctx:csv: 'encoding' must "
						  "be \"utf-8\" or \"latin-1\"");
		}
		lua_settop(L, 3);
	}
	vg__source *s = arg_source(L, r, 2);
	int src = lua_gettop(L);
	csv_h *h = lua_newuserdatauv(L, sizeof(*h), 2);
	memset(h, 0, sizeof(*h));
	luaL_setmetatable(L, CSV_MT);
	int hi = lua_gettop(L);
	lua_pushvalue(L, src); /* keep the source (and its bytes) alive */
	lua_setiuservalue(L, hi, 2);
	vg_error e;
	int rc = s->path ? vg_csv_open_file(&h->c, s->path, &co, &e)
			 : vg_csv_open_mem(&h->c, s->data, s->len, s->name,
					   &co, &e);
	if (rc) {
		char buf[1024];
		return luaL_error(L, "ctx:csv: %s",
				  vg_error_format(&e, buf, sizeof(buf)));
	}
	size_t nh = 0;
	const char *const *hdr = vg_csv_header(h->c, &nh);
	lua_createtable(L, (int)nh, 0);
	for (size_t i = 0; i < nh; i++) {
		lua_pushstring(L, hdr[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	check_header(L, "ctx:csv", s->name ? s->name : "?", nh);
	lua_setiuservalue(L, hi, 1);
	h->nhdr = nh;
	return push_rows_iter(L, csv_batch, hi);
}

/* ---- ctx:json -------------------------------------------------------------- */

static void push_json(lua_State *L, const cJSON *j, int depth)
{
	luaL_checkstack(L, 4, "JSON nesting");
	if (depth > 200)
		luaL_error(L, "ctx:json: nesting deeper than 200");
	if (cJSON_IsObject(j)) {
		lua_createtable(L, 0, cJSON_GetArraySize(j));
		for (const cJSON *c = j->child; c; c = c->next) {
			push_json(L, c, depth + 1);
			lua_setfield(L, -2, c->string);
		}
	} else if (cJSON_IsArray(j)) {
		lua_createtable(L, cJSON_GetArraySize(j), 0);
		lua_Integer i = 0;
		for (const cJSON *c = j->child; c; c = c->next) {
			push_json(L, c, depth + 1);
			lua_rawseti(L, -2, ++i);
		}
	} else if (cJSON_IsString(j)) {
		lua_pushstring(L, j->valuestring);
	} else if (cJSON_IsNumber(j)) {
		double d = j->valuedouble;
		if (d == floor(d) && fabs(d) < 9007199254740992.0)
			lua_pushinteger(L, (lua_Integer)d);
		else
			lua_pushnumber(L, d);
	} else if (cJSON_IsBool(j)) {
		lua_pushboolean(L, cJSON_IsTrue(j));
	} else {
		lua_pushlightuserdata(L, NULL); /* ctx.null */
	}
}

typedef struct json_guard {
	cJSON *j;
} json_guard;

static int json_guard_gc(lua_State *L)
{
	json_guard *g = lua_touserdata(L, 1);
	cJSON_Delete(g->j);
	g->j = NULL;
	return 0;
}

static int ctx_json(lua_State *L)
{
	run *r = get_run(L);
	vg__source *s = arg_source(L, r, 2);
	size_t n;
	bytes_guard *bg;
	const unsigned char *d = source_bytes(L, s, JSON_MAX, &n, "ctx:json",
					      &bg);
	/* The tree is freed by a finalizer even if building the Lua value
	 * raises (memory cap, deadline). */
	json_guard *g = lua_newuserdatauv(L, sizeof(*g), 0);
	g->j = NULL;
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, json_guard_gc);
	lua_setfield(L, -2, "__gc");
	lua_setmetatable(L, -2);
	const char *end = NULL;
	cJSON *j = cJSON_ParseWithLengthOpts((const char *)d, n, &end, false);
	long off = end ? (long)(end - (const char *)d) : 0;
	bytes_done(bg);
	g->j = j;
	if (!j)
		return luaL_error(L, "ctx:json: %s: invalid JSON near byte %d",
				  s->name ? s->name : "?", (int)off);
	push_json(L, j, 0);
	cJSON_Delete(g->j);
	g->j = NULL;
	return 1;
}

/* ---- ctx:zip, ctx:xlsx ------------------------------------------------- */

typedef struct names {
	char **v;
	size_t n, cap;
	bool oom;
} names;

/* Collects names in C: raising a Lua error here would skip
 * zip_discard. */
static void list_cb(void *ud, const char *member)
{
	names *nm = ud;
	if (nm->oom)
		return;
	if (nm->n == nm->cap) {
		size_t cap = nm->cap ? nm->cap * 2 : 16;
		char **v = realloc(nm->v, cap * sizeof(char *));
		if (!v) {
			nm->oom = true;
			return;
		}
		nm->v = v;
		nm->cap = cap;
	}
	if (!(nm->v[nm->n] = strdup(member)))
		nm->oom = true;
	else
		nm->n++;
}

static void names_free(names *nm)
{
	for (size_t i = 0; i < nm->n; i++)
		free(nm->v[i]);
	free(nm->v);
	memset(nm, 0, sizeof(*nm));
}

static int names_gc(lua_State *L)
{
	names_free(lua_touserdata(L, 1));
	return 0;
}

static int ctx_zip(lua_State *L)
{
	run *r = get_run(L);
	lua_settop(L, 3);
	const char *member = luaL_optstring(L, 3, NULL);
	vg__source *s = arg_source(L, r, 2);
	size_t n;
	vg_error e;
	size_t max = r->p->fetch_max ? r->p->fetch_max
				     : VG_PLUGIN_FETCH_MAX_DEFAULT;
	/* Allocate the result first: nothing below may raise while libzip
	 * holds the archive or a C buffer is not yet guarded. */
	vg__source *m = member ? new_source(L) : NULL;
	if (!member)
		lua_newtable(L);
	int res = lua_gettop(L);
	bytes_guard *g;
	const unsigned char *d = source_bytes(L, s, max, &n, "ctx:zip", &g);
	int rc;
	if (!member) {
		/* The names live in a guard userdata, so that a Lua error
		 * while copying them out frees them. */
		names *nm = lua_newuserdatauv(L, sizeof(*nm), 0);
		memset(nm, 0, sizeof(*nm));
		lua_createtable(L, 0, 1);
		lua_pushcfunction(L, names_gc);
		lua_setfield(L, -2, "__gc");
		lua_setmetatable(L, -2);
		rc = vg__zip_list(d, n, s->name, list_cb, nm, &e);
		if (!rc && nm->oom)
			rc = vg_error_set(&e, VG_ENOMEM, "out of memory");
		for (size_t i = 0; !rc && i < nm->n; i++) {
			lua_pushstring(L, nm->v[i]);
			lua_rawseti(L, res, (lua_Integer)i + 1);
		}
		names_free(nm);
	} else {
		rc = vg__zip_read(d, n, s->name, member, max, &m->data, &m->len,
				  &e);
		if (!rc) {
			size_t ln = strlen(s->name) + strlen(member) + 2;
			m->name = malloc(ln);
			if (m->name)
				snprintf(m->name, ln, "%s!%s", s->name, member);
			vg_sha256 h;
			vg_sha256_init(&h);
			vg_sha256_update(&h, m->data, m->len);
			vg_sha256_hex(&h, m->checksum);
		}
	}
	bytes_done(g);
	if (rc)
		return raise_err(L, "ctx:zip", &e);
	lua_settop(L, res);
	return 1;
}

typedef struct xlsx_h {
	vg__xlsx_sheet sh;
	size_t next, nhdr;
} xlsx_h;

static int xlsx_gc(lua_State *L)
{
	xlsx_h *h = luaL_checkudata(L, 1, XLSX_MT);
	vg__xlsx_free(&h->sh);
	return 0;
}

static int xlsx_batch(lua_State *L)
{
	vg__sandbox_check(L);
	xlsx_h *h = luaL_checkudata(L, 1, XLSX_MT);
	lua_createtable(L, ROWS_PER_BATCH, 0);
	lua_createtable(L, ROWS_PER_BATCH, 0);
	lua_getiuservalue(L, 1, 1);
	int n = 0;
	for (; h->next < h->sh.nrows && n < ROWS_PER_BATCH; h->next++) {
		const vg__xlsx_row *row = &h->sh.rows[h->next];
		lua_createtable(L, h->nhdr ? 0 : (int)row->ncells,
				h->nhdr ? (int)h->nhdr : 0);
		for (size_t i = 0; i < row->ncells; i++) {
			if (!row->cells[i])
				continue;
			if (i < h->nhdr)
				lua_rawgeti(L, 4, (lua_Integer)i + 1);
			else
				lua_pushinteger(L, (lua_Integer)i + 1);
			lua_pushstring(L, row->cells[i]);
			lua_rawset(L, -3);
		}
		n++;
		lua_rawseti(L, 2, n);
		lua_pushinteger(L, row->line);
		lua_rawseti(L, 3, n);
	}
	lua_pop(L, 1);
	lua_pushinteger(L, n);
	return 3;
}

static int ctx_xlsx(lua_State *L)
{
	run *r = get_run(L);
	lua_settop(L, 4);
	const char *sheet;
	char num[32];
	if (lua_type(L, 3) == LUA_TNUMBER) {
		snprintf(num, sizeof(num), "#%lld",
			 (long long)luaL_checkinteger(L, 3));
		sheet = num;
	} else {
		sheet = luaL_optstring(L, 3, "#1");
	}
	static const char *const known[] = { "header", "skip", NULL };
	check_opts(L, 4, "ctx:xlsx", known);
	bool header = opt_bool(L, 4, "header", 1);
	lua_Integer skip = 0;
	if (!lua_isnil(L, 4)) {
		if (lua_getfield(L, 4, "skip") != LUA_TNIL) {
			if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
				return luaL_error(L, "ctx:xlsx: 'skip' must be "
						  "a number of rows >= 0");
			skip = lua_tointeger(L, -1);
		}
		lua_pop(L, 1);
	}
	vg__source *s = arg_source(L, r, 2);
	size_t n;
	vg_error e;
	size_t max = r->p->fetch_max ? r->p->fetch_max
				     : VG_PLUGIN_FETCH_MAX_DEFAULT;
	xlsx_h *h = lua_newuserdatauv(L, sizeof(*h), 1);
	memset(h, 0, sizeof(*h));
	luaL_setmetatable(L, XLSX_MT);
	int hi = lua_gettop(L);
	bytes_guard *g;
	const unsigned char *d = source_bytes(L, s, max, &n, "ctx:xlsx", &g);
	int rc = vg__xlsx_read(d, n, s->name, sheet, max, &h->sh, &e);
	bytes_done(g);
	if (rc)
		return raise_err(L, "ctx:xlsx", &e);
	/* Skipped rows are counted by the sheet's row numbers, like the
	 * lines a CSV skips (empty rows absent from the XML count too). */
	while (h->next < h->sh.nrows && h->sh.rows[h->next].line <= skip)
		h->next++;
	lua_newtable(L);
	if (header && h->next < h->sh.nrows) {
		const vg__xlsx_row *row = &h->sh.rows[h->next++];
		for (size_t i = 0; i < row->ncells; i++) {
			if (row->cells[i])
				lua_pushstring(L, row->cells[i]);
			else
				lua_pushfstring(L, "%d", (int)i + 1);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		h->nhdr = row->ncells;
		check_header(L, "ctx:xlsx", s->name ? s->name : "?", h->nhdr);
	}
	lua_setiuservalue(L, hi, 1);
	return push_rows_iter(L, xlsx_batch, hi);
}

/* ---- setting up a run ------------------------------------------------------ */

static const luaL_Reg ctx_methods[] = {
	{ "put", ctx_put },
	{ "reject", ctx_reject },
	{ "define_territory", ctx_define_territory },
	{ "get", ctx_get },
	{ "territory", ctx_territory },
	{ "series", ctx_series },
	{ "slice", ctx_slice },
	{ "log", ctx_log },
	{ "progress", ctx_progress },
	{ "fetch", ctx_fetch },
	{ "text", source_text },
	{ "csv", ctx_csv },
	{ "json", ctx_json },
	{ "zip", ctx_zip },
	{ "xlsx", ctx_xlsx },
	{ NULL, NULL },
};

static void push_config(lua_State *L, const cJSON *cfg)
{
	lua_newtable(L);
	for (const cJSON *c = cfg ? cfg->child : NULL; c; c = c->next) {
		if (cJSON_IsString(c))
			lua_pushstring(L, c->valuestring);
		else if (cJSON_IsBool(c))
			lua_pushboolean(L, cJSON_IsTrue(c));
		else if (c->valuedouble == floor(c->valuedouble) &&
			 fabs(c->valuedouble) < 9007199254740992.0)
			lua_pushinteger(L, (lua_Integer)c->valuedouble);
		else
			lua_pushnumber(L, c->valuedouble);
		lua_setfield(L, -2, c->string);
	}
	vg__freeze(L);
}

/* Runs protected: creates the metatables, the rows() helper and pushes
 * ctx. Argument: light userdata of the merged config. */
static int setup(lua_State *L)
{
	run *r = vg__sandbox_of(L)->user;
	const cJSON *cfg = lua_touserdata(L, 1);
	luaL_newmetatable(L, SOURCE_MT);
	lua_pushcfunction(L, source_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, source_index);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, source_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pushliteral(L, "locked");
	lua_setfield(L, -2, "__metatable");
	luaL_newmetatable(L, CSV_MT);
	lua_pushcfunction(L, csv_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushliteral(L, "locked");
	lua_setfield(L, -2, "__metatable");
	luaL_newmetatable(L, XLSX_MT);
	lua_pushcfunction(L, xlsx_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushliteral(L, "locked");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 3);

	/* print -> the run's log. The global table is frozen: set it on
	 * the hidden table behind the proxy. */
	vg__push_env(L);
	luaL_getmetafield(L, -1, "__index");
	lua_pushcfunction(L, lua_print);
	lua_setfield(L, -2, "print");
	lua_pop(L, 2);

	if (luaL_loadbufferx(L, ROWS_LUA, sizeof(ROWS_LUA) - 1, "=rows", "t"))
		return lua_error(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &ROWS_KEY);

	/* Short strings are interned: the plugin's literal "population" is
	 * the very string pushed here, as long as it stays referenced. */
	lua_createtable(L, (int)r->p->ninds, 0);
	for (size_t i = 0; r->ind_ptr && i < r->p->ninds; i++) {
		r->ind_ptr[i] = lua_pushstring(L, r->p->inds[i].code);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_rawsetp(L, LUA_REGISTRYINDEX, &IND_KEY);

	lua_newuserdatauv(L, 1, 0); /* ctx */
	luaL_newmetatable(L, CTX_MT);
	lua_newtable(L); /* __index */
	luaL_setfuncs(L, ctx_methods, 0);
	push_config(L, cfg);
	lua_setfield(L, -2, "config");
	lua_pushstring(L, r->p->name);
	lua_setfield(L, -2, "name");
	lua_pushboolean(L, r->o->dry_run);
	lua_setfield(L, -2, "dry_run");
	lua_pushlightuserdata(L, NULL);
	lua_setfield(L, -2, "null");
	vg__freeze(L);
	lua_setfield(L, -2, "__index");
	lua_pushliteral(L, "locked");
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
	return 1;
}

/* The manifest defaults with the run's overrides applied. */
static int merge_config(const vg_plugin *p, const cJSON *over, cJSON **out,
			vg_error *err)
{
	cJSON *m = cJSON_Duplicate(p->config, true);
	if (!m)
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	for (const cJSON *c = over ? over->child : NULL; c; c = c->next) {
		cJSON *d = cJSON_GetObjectItemCaseSensitive(m, c->string);
		if (!d) {
			cJSON_Delete(m);
			return vg_error_at(err, VG_EINVAL, p->path, 0, 0,
					   "config key '%s' is not declared in "
					   "the manifest's 'config'", c->string);
		}
		cJSON *v = NULL;
		if (cJSON_IsString(d) && cJSON_IsString(c)) {
			v = cJSON_CreateString(c->valuestring);
		} else if (cJSON_IsNumber(d) && cJSON_IsNumber(c)) {
			v = cJSON_CreateNumber(c->valuedouble);
		} else if (cJSON_IsNumber(d) && cJSON_IsString(c)) {
			char *end;
			double x = strtod(c->valuestring, &end);
			if (end != c->valuestring && !*end && isfinite(x))
				v = cJSON_CreateNumber(x);
		} else if (cJSON_IsBool(d) && cJSON_IsBool(c)) {
			v = cJSON_CreateBool(cJSON_IsTrue(c));
		} else if (cJSON_IsBool(d) && cJSON_IsString(c)) {
			if (!strcmp(c->valuestring, "true"))
				v = cJSON_CreateBool(1);
			else if (!strcmp(c->valuestring, "false"))
				v = cJSON_CreateBool(0);
		}
		if (!v) {
			cJSON_Delete(m);
			return vg_error_at(err, VG_EINVAL, p->path, 0, 0,
					   "config key '%s' must be a %s like "
					   "its default", c->string,
					   cJSON_IsString(d)   ? "string"
					   : cJSON_IsNumber(d) ? "number"
							       : "boolean");
		}
		cJSON_ReplaceItemInObjectCaseSensitive(m, c->string, v);
	}
	*out = m;
	return 0;
}

static cJSON *dry_json(run *r)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *inds = cJSON_AddObjectToObject(o, "indicators");
	for (size_t i = 0; inds && i < r->p->ninds; i++) {
		cJSON *x = cJSON_AddObjectToObject(inds, r->p->inds[i].code);
		if (!x)
			continue;
		cJSON_AddNumberToObject(x, "points", (double)r->counts[i]);
		cJSON_AddItemToObject(x, "sample", r->samples[i]);
		r->samples[i] = NULL;
	}
	cJSON_AddNumberToObject(o, "territories", (double)r->territories);
	cJSON_AddNumberToObject(o, "rows_written",
				(double)r->res->rows_written);
	cJSON_AddNumberToObject(o, "rows_rejected",
				(double)r->res->rows_rejected);
	cJSON_AddStringToObject(o, "checksum", r->res->checksum);
	return o;
}

void vg_run_result_clear(vg_run_result *res)
{
	if (!res)
		return;
	cJSON_Delete(res->dry);
	memset(res, 0, sizeof(*res));
}

static int run_lua(run *r, const cJSON *cfg, vg_error *err)
{
	const vg_plugin *p = r->p;
	lua_State *L = r->sb.L;
	lua_pushcfunction(L, setup);
	lua_pushlightuserdata(L, (void *)cfg);
	int rc = vg__sandbox_call(&r->sb, 1, 1, err);
	if (rc)
		return rc;
	int ctx = lua_gettop(L);
	rc = vg__sandbox_load(&r->sb, p->source, p->source_len, p->path, err);
	if (!rc)
		rc = vg__sandbox_call(&r->sb, 0, 1, err);
	if (rc)
		return rc;
	if (lua_type(L, -1) != LUA_TTABLE)
		return vg_error_at(err, VG_EPLUGIN, p->path, 0, 0, "the plugin "
				   "no longer returns its manifest table");
	lua_pushliteral(L, "run");
	if (lua_rawget(L, -2) != LUA_TFUNCTION)
		return vg_error_at(err, VG_EPLUGIN, p->path, 0, 0, "the "
				   "manifest has no 'run' function");
	lua_pushvalue(L, ctx);
	return vg__sandbox_call(&r->sb, 1, 0, err);
}

int vg_plugin_run(const vg_plugin *p, vg_store *s, const vg_run_opts *o,
		  vg_run_result *res, vg_error *err)
{
	static const vg_run_opts none = { 0 };
	if (!o)
		o = &none;
	memset(res, 0, sizeof(*res));
	double t0 = vg__now();
	run r = { .p = p, .s = s, .o = o, .res = res, .last_ind = -1 };
	vg_sha256_init(&r.sum);
	cJSON *cfg = NULL;
	int rc = merge_config(p, o->config, &cfg, err);
	if (rc)
		return rc;
	r.counts = calloc(p->ninds ? p->ninds : 1, sizeof(*r.counts));
	r.ind_ptr = calloc(p->ninds ? p->ninds : 1, sizeof(*r.ind_ptr));
	if (o->dry_run) {
		r.samples = calloc(p->ninds ? p->ninds : 1, sizeof(cJSON *));
		for (size_t i = 0; r.samples && i < p->ninds; i++)
			if (!(r.samples[i] = cJSON_CreateArray()))
				rc = VG_ENOMEM;
		if (!r.samples)
			rc = VG_ENOMEM;
	}
	if (!r.counts || !r.ind_ptr || rc) {
		rc = vg_error_set(err, VG_ENOMEM, "out of memory");
		goto done;
	}
	char origin[256];
	snprintf(origin, sizeof(origin), "plugin %s", p->name);
	vg_batch_opts bo = { .origin = origin, .time = o->time };
	rc = vg_batch_new(s, &bo, &r.b, err);
	for (size_t i = 0; !rc && i < p->ninds; i++)
		rc = vg_batch_indicator(r.b, &p->inds[i], err);
	if (rc)
		goto done;
	rc = vg__sandbox_open(&r.sb, p->memory, p->timeout,
			      o->max_instructions
				      ? o->max_instructions
				      : VG_PLUGIN_INSTRUCTIONS_DEFAULT,
			      o->cancel, p->lib_dir, err);
	if (rc)
		goto done;
	r.sb.user = &r;
	rc = run_lua(&r, cfg, err);
	res->instructions = r.sb.ticks * VG__HOOK_PERIOD;
	res->memory_peak = r.sb.mem_peak;
	/* Source objects hold files and buffers: free them now. */
	vg__sandbox_close(&r.sb);
	if (r.nsources == 1)
		snprintf(res->checksum, sizeof(res->checksum), "%s",
			 r.first_sum);
	else if (r.nsources > 1)
		vg_sha256_hex(&r.sum, res->checksum);
	if (rc)
		goto done;
	if (o->dry_run) {
		res->dry = dry_json(&r);
		goto done;
	}
	snprintf(origin, sizeof(origin), "plugin %s: %llu rows written, %llu "
		 "rejected", p->name, (unsigned long long)res->rows_written,
		 (unsigned long long)res->rows_rejected);
	vg_batch_describe(r.b, origin, res->checksum[0] ? res->checksum : NULL);
	rc = vg_batch_commit(r.b, &res->commit, err);
	r.b = NULL;
	if (rc && !err->where[0])
		snprintf(err->where, sizeof(err->where), "%s", p->path);
done:
	vg__sandbox_close(&r.sb);
	vg_batch_free(r.b);
	for (size_t i = 0; r.samples && i < p->ninds; i++)
		cJSON_Delete(r.samples[i]);
	free(r.samples);
	free(r.counts);
	free(r.ind_ptr);
	cJSON_Delete(cfg);
	res->seconds = vg__now() - t0;
	return rc;
}
