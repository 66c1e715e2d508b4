/* Reads of committed data: ctx:get, ctx:territory, ctx:series,
 * ctx:slice. Each is one short vg_read transaction whose results are
 * copied into C memory before any Lua allocation: a Lua error (memory cap)
 * raised inside an LMDB iteration would leave the transaction open. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lua_int.h"

static void push_point(lua_State *L, vg__run *r, const vg_point *pt, bool terr)
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

static void read_fail(lua_State *L, vg_read *rd, const char *fn,
		      const vg_error *e)
{
	vg_read_end(rd);
	luaL_error(L, "%s: %s", fn, e->msg);
}

static int ctx_get(lua_State *L)
{
	vg__run *r = vg__run_get(L);
	const char *ind = luaL_checkstring(L, 2),
		   *terr = luaL_checkstring(L, 3);
	vg_period per = vg__arg_period(L, NULL, 4);
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
	vg__run *r = vg__run_get(L);
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

/* Push the list of collected points (owned by the guard g); frees them
 * (now or by the GC). */
static int push_collected(lua_State *L, vg__guard *g, collect *c,
			  const char *fn, int rc)
{
	vg__guard_set(g, c->v);
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
	vg__guard_done(g);
	return 1;
}

#define COLLECT_MAX 10000000

static int ctx_series(lua_State *L)
{
	vg__run *r = vg__run_get(L);
	const char *ind = luaL_checkstring(L, 2),
		   *terr = luaL_checkstring(L, 3);
	vg_period from = lua_isnoneornil(L, 4) ? 0 : vg__arg_period(L, NULL, 4);
	vg_period to = lua_isnoneornil(L, 5) ? 0 : vg__arg_period(L, NULL, 5);
	/* Pushed before the read starts, so no Lua allocation happens
	 * between collecting and guarding. */
	vg__guard *g = vg__guard_push(L, free);
	vg_read *rd;
	vg_error e;
	if (vg_read_begin(r->s, &rd, &e))
		return luaL_error(L, "ctx:series: %s", e.msg);
	uint32_t ii = 0, ti = 0;
	if (vg_read_indicator_id(rd, ind, &ii, &e) ||
	    vg_read_territory_id(rd, terr, &ti, &e))
		read_fail(L, rd, "ctx:series", &e);
	collect c = {.rd = rd, .max = COLLECT_MAX};
	int rc =
	    vg_read_series(rd, ii, ti, from, to, VG_LATEST, collect_cb, &c);
	vg_read_end(rd);
	return push_collected(L, g, &c, "ctx:series", rc);
}

static int ctx_slice(lua_State *L)
{
	vg__run *r = vg__run_get(L);
	const char *ind = luaL_checkstring(L, 2);
	vg_period per = vg__arg_period(L, NULL, 3);
	const char *level = luaL_checkstring(L, 4);
	const char *within = luaL_optstring(L, 5, NULL);
	/* Pushed before the read starts, so no Lua allocation happens
	 * between collecting and guarding. */
	vg__guard *g = vg__guard_push(L, free);
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
	collect c = {.rd = rd, .max = COLLECT_MAX, .terr = true};
	int rc = vg_read_slice(rd, ii, per, li, wi, VG_LATEST, collect_cb, &c);
	vg_read_end(rd);
	return push_collected(L, g, &c, "ctx:slice", rc);
}

const luaL_Reg vg__ctx_reads[] = {
    {"get", ctx_get},	    {"territory", ctx_territory},
    {"series", ctx_series}, {"slice", ctx_slice},
    {NULL, NULL},
};
