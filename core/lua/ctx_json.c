/* ctx:json: a source parsed with cJSON and turned into Lua tables
 * (ctx.null for JSON null). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lua/lua_int.h"

#define JSON_MAX ((size_t)256 << 20)

/* ---- ctx:json --------------------------------------------------------------
 */

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

static void json_free(void *p)
{
	cJSON_Delete(p);
}

static int ctx_json(lua_State *L)
{
	vg__run *r = vg__run_get(L);
	vg_source *s = vg__arg_source(L, r, 2);
	size_t n;
	vg__guard *bg;
	const unsigned char *d =
	    vg__source_bytes(L, s, JSON_MAX, &n, "ctx:json", &bg);
	/* The tree is freed by the guard even if building the Lua value
	 * raises (memory cap, deadline). */
	vg__guard *g = vg__guard_push(L, json_free);
	const char *end = NULL;
	cJSON *j = cJSON_ParseWithLengthOpts((const char *)d, n, &end, false);
	long off = end ? (long)(end - (const char *)d) : 0;
	vg__guard_done(bg);
	vg__guard_set(g, j);
	if (!j)
		return luaL_error(L, "ctx:json: %s: invalid JSON near byte %d",
				  s->name ? s->name : "?", (int)off);
	push_json(L, j, 0);
	vg__guard_done(g);
	return 1;
}

const luaL_Reg vg__ctx_json[] = {
    {"json", ctx_json},
    {NULL, NULL},
};
