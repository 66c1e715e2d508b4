/* Sources: ctx:fetch (core/source does the fetching) and ctx:text; the
 * source object other readers take. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lua_int.h"

static const char SOURCE_MT[] = "vigie.source";

static int source_gc(lua_State *L)
{
	vg_source_clear(luaL_checkudata(L, 1, SOURCE_MT));
	return 0;
}

static int source_index(lua_State *L)
{
	vg_source *s = luaL_checkudata(L, 1, SOURCE_MT);
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
	vg_source *s = luaL_checkudata(L, 1, SOURCE_MT);
	lua_pushfstring(L, "source %s (%s)", s->name ? s->name : "?",
			s->checksum);
	return 1;
}

void vg__ctx_sources_setup(lua_State *L)
{
	luaL_newmetatable(L, SOURCE_MT);
	lua_pushcfunction(L, source_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, source_index);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, source_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pushliteral(L, "locked");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
}

vg_source *vg__source_push(lua_State *L)
{
	vg_source *s = lua_newuserdatauv(L, sizeof(*s), 0);
	memset(s, 0, sizeof(*s));
	luaL_setmetatable(L, SOURCE_MT);
	return s;
}

size_t vg__fetch_max(const vg_plugin *p)
{
	return p->fetch_max ? p->fetch_max : VG_PLUGIN_FETCH_MAX_DEFAULT;
}

static void add_checksum(vg__run *r, const char *sum)
{
	if (!r->nsources++)
		snprintf(r->first_sum, sizeof(r->first_sum), "%s", sum);
	vg_sha256_update(&r->sum, sum, strlen(sum));
}

static int ctx_fetch(lua_State *L)
{
	vg__run *r = vg__run_get(L);
	const char *what = luaL_checkstring(L, 2);
	vg_source *s = vg__source_push(L);
	vg_source_opts so = {.roots = (const char *const *)r->p->roots,
			     .nroots = r->p->nroots,
			     .cache_dir = r->p->cache_dir,
			     .max = vg__fetch_max(r->p),
			     .deadline = r->sb.deadline,
			     .cancel = r->o->cancel};
	vg_error e;
	vg_error_clear(&e);
	if (vg_source_fetch(what, &so, s, &e))
		return vg__raise(L, "ctx:fetch", &e);
	add_checksum(r, s->checksum);
	return 1;
}

vg_source *vg__arg_source(lua_State *L, vg__run *r, int idx)
{
	(void)r;
	if (lua_type(L, idx) == LUA_TSTRING) {
		lua_pushcfunction(L, ctx_fetch);
		lua_pushvalue(L, 1);
		lua_pushvalue(L, idx);
		lua_call(L, 2, 1);
		return lua_touserdata(L, -1);
	}
	vg_source *s = luaL_checkudata(L, idx, SOURCE_MT);
	lua_pushvalue(L, idx);
	return s;
}

const unsigned char *vg__source_bytes(lua_State *L, const vg_source *s,
				      size_t max, size_t *len, const char *fn,
				      vg__guard **gout)
{
	vg__guard *g = vg__guard_push(L, free);
	unsigned char *d;
	bool owned;
	vg_error e;
	if (vg_source_bytes(s, max, &d, len, &owned, &e))
		vg__raise(L, fn, &e);
	if (owned)
		vg__guard_set(g, d);
	*gout = g;
	return d;
}

static int source_text(lua_State *L)
{
	vg__run *r = vg__run_get(L);
	vg_source *s = vg__arg_source(L, r, 2);
	size_t n;
	vg__guard *g;
	const unsigned char *d =
	    vg__source_bytes(L, s, r->p->memory, &n, "ctx:text", &g);
	lua_pushlstring(L, (const char *)d, n);
	vg__guard_done(g);
	return 1;
}

const luaL_Reg vg__ctx_sources[] = {
    {"fetch", ctx_fetch},
    {"text", source_text},
    {NULL, NULL},
};
