/* What the ctx bindings share: the run of a call, errors, periods,
 * options, the one guard userdata, and the row iterator of ctx:csv and
 * ctx:xlsx. */
#include <stdio.h>
#include <string.h>

#include "lua/lua_int.h"

static const char GUARD_MT[] = "vigie.guard";
static const char ROWS_KEY = 'R'; /* registry: the Lua rows() iterator */

vg__run *vg__run_get(lua_State *L)
{
	vg__sandbox_check(L);
	vg__run *r = vg__sandbox_of(L)->user;
	luaL_checkudata(L, 1, VG__CTX_MT);
	return r;
}

void vg__run_log(vg__run *r, const char *level, const char *msg)
{
	if (r->o->log)
		r->o->log(r->o->ud, level, msg);
}

int vg__raise(lua_State *L, const char *what, const vg_error *e)
{
	char buf[1024];
	vg_error_format(e, buf, sizeof(buf));
	int code = e->code;
	if (code == VG_ESANDBOX || code == VG_ETIMEOUT || code == VG_ECANCELED)
		return vg__sandbox_kill(L, code, "%s: %s", what, buf);
	return luaL_error(L, "%s: %s", what, buf);
}

vg_period vg__arg_period(lua_State *L, vg__run *r, int idx)
{
	char tmp[32];
	size_t len;
	const char *s;
	if (lua_type(L, idx) == LUA_TNUMBER) {
		if (!lua_isinteger(L, idx))
			luaL_error(L,
				   "period %f is not a year (give periods "
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
		luaL_error(L,
			   "'%s' is not a period (2024, 2024-Q1, 2024-03, "
			   "2024-03-15)",
			   s);
	if (r && len < sizeof(r->last_per_s)) {
		memcpy(r->last_per_s, s, len);
		r->last_per_len = len;
		r->last_per = per;
	}
	return per;
}

/* ---- the guard ------------------------------------------------------------
 */

static int guard_gc(lua_State *L)
{
	vg__guard_done(lua_touserdata(L, 1));
	return 0;
}

vg__guard *vg__guard_push(lua_State *L, void (*free_fn)(void *))
{
	vg__guard *g = lua_newuserdatauv(L, sizeof(*g), 0);
	g->p = NULL;
	g->free_fn = free_fn;
	if (luaL_newmetatable(L, GUARD_MT)) {
		lua_pushcfunction(L, guard_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushliteral(L, "locked");
		lua_setfield(L, -2, "__metatable");
	}
	lua_setmetatable(L, -2);
	return g;
}

void vg__guard_set(vg__guard *g, void *p)
{
	g->p = p;
}

void vg__guard_done(vg__guard *g)
{
	if (g->p && g->free_fn)
		g->free_fn(g->p);
	g->p = NULL;
}

/* ---- options
 * ------------------------------------------------------------------ */

int vg__opt_bool(lua_State *L, int t, const char *k, int dflt)
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

void vg__check_opts(lua_State *L, int t, const char *fn,
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

/* ---- rows
 * ------------------------------------------------------------------------ */

/* Turns a batch function into a row iterator. Runs in the sandbox like
 * plugin code (so it is counted and interruptible). */
static const char ROWS_LUA[] = "local batch, h = ...\n"
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

void vg__rows_setup(lua_State *L)
{
	if (luaL_loadbufferx(L, ROWS_LUA, sizeof(ROWS_LUA) - 1, "=rows", "t"))
		lua_error(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &ROWS_KEY);
}

/* Push the iterator over the batches of the handle at `handle`. */
int vg__push_rows_iter(lua_State *L, lua_CFunction batch, int handle)
{
	lua_rawgetp(L, LUA_REGISTRYINDEX, &ROWS_KEY);
	lua_pushcfunction(L, batch);
	lua_pushvalue(L, handle);
	lua_call(L, 2, 1);
	return 1;
}

/* Rows keyed by column name would silently keep the last of two columns
 * of the same name (INSEE sheets repeat "Ensemble" under two headings):
 * refuse, so the plugin reads by position instead. The header table is at
 * the top of the stack. */
void vg__check_header(lua_State *L, const char *fn, const char *src, size_t n)
{
	int t = lua_gettop(L);
	lua_newtable(L); /* name -> column */
	for (size_t i = 1; i <= n; i++) {
		lua_rawgeti(L, t, (lua_Integer)i);
		lua_pushvalue(L, -1);
		if (lua_rawget(L, t + 1) != LUA_TNIL)
			luaL_error(L,
				   "%s: %s: columns %d and %d are both named "
				   "'%s': read with header = false and pick "
				   "columns by position",
				   fn, src, (int)lua_tointeger(L, -1), (int)i,
				   lua_tostring(L, -2));
		lua_pop(L, 1);
		lua_pushinteger(L, (lua_Integer)i);
		lua_rawset(L, t + 1);
	}
	lua_pop(L, 1);
}
