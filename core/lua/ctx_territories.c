/* ctx:define_territory: territories, perimeters (membership versions) and
 * old codes (the passage table) defined by a run, buffered in its batch
 * with the same checks as the territories CSV import. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lua_int.h"

static void str_field(lua_State *L, int t, const char *k, char *out, size_t n,
		      bool required)
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
		luaL_error(L,
			   "ctx:define_territory{code = '%s'}: 'successors' "
			   "must be a list of {code = ..., weight = ...}",
			   code);
	size_t n = lua_rawlen(L, -1);
	if (n == 0)
		luaL_error(L,
			   "ctx:define_territory{code = '%s'}: 'successors' "
			   "is empty (leave it out for a current territory)",
			   code);
	if (n > VG_MAX_SUCCESSORS)
		luaL_error(L,
			   "ctx:define_territory{code = '%s'}: more than %d "
			   "successors",
			   code, VG_MAX_SUCCESSORS);
	for (size_t i = 0; i < n; i++) {
		int k = (int)i + 1;
		if (lua_rawgeti(L, -1, k) != LUA_TTABLE)
			luaL_error(L,
				   "ctx:define_territory{code = '%s'}: "
				   "successors[%d] is not a table {code = ..., "
				   "weight = ...}",
				   code, k);
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			const char *key = lua_type(L, -2) == LUA_TSTRING
					      ? lua_tostring(L, -2)
					      : NULL;
			if (!key ||
			    (strcmp(key, "code") && strcmp(key, "weight")))
				luaL_error(L,
					   "ctx:define_territory{code = "
					   "'%s'}: successors[%d]: unknown key "
					   "'%s' (code, weight)",
					   code, k, key ? key : "?");
			lua_pop(L, 1);
		}
		size_t len = 0; /* luaL_error is not marked noreturn */
		const char *s = NULL;
		if (lua_getfield(L, -1, "code") == LUA_TSTRING)
			s = lua_tolstring(L, -1, &len);
		if (!s || len == 0 || len >= VG_CODE_MAX || strlen(s) != len)
			luaL_error(L,
				   "ctx:define_territory{code = '%s'}: "
				   "successors[%d].code is not a territory "
				   "code",
				   code, k);
		memcpy(t->successors[i].code, s, len + 1);
		lua_pop(L, 1);
		double w = 1;
		int wt = lua_getfield(L, -1, "weight");
		if (wt == LUA_TNUMBER)
			w = lua_tonumber(L, -1);
		else if (wt != LUA_TNIL || n > 1)
			luaL_error(L,
				   "ctx:define_territory{code = '%s'}: "
				   "successors[%d].weight must be a number%s",
				   code, k,
				   n > 1 ? " (a split gives every "
					   "share)"
					 : "");
		t->successors[i].weight = w;
		lua_pop(L, 2);
	}
	t->nsuccessors = n;
	lua_pop(L, 1);
}

static int ctx_define_territory(lua_State *L)
{
	vg__run *r = vg__run_get(L);
	luaL_checktype(L, 2, LUA_TTABLE);
	vg_territory t;
	memset(&t, 0, sizeof(t));
	char raw[VG_CODE_MAX] = "";
	str_field(L, 2, "code", raw, sizeof(raw), true);
	str_field(L, 2, "name", t.name, sizeof(t.name), true);
	char from[VG_PERIOD_STRLEN + 1] = "";
	str_field(L, 2, "from", from, sizeof(from), false);
	static const char *const known[] = {
	    "code", "name", "parents", "members", "successors", "from", NULL};
	lua_pushnil(L);
	while (lua_next(L, 2)) {
		bool ok = false;
		for (const char *const *k = known; *k; k++)
			ok |= lua_type(L, -2) == LUA_TSTRING &&
			      !strcmp(lua_tostring(L, -2), *k);
		if (!ok)
			return luaL_error(L,
					  "ctx:define_territory: unknown key "
					  "'%s' (code, name, parents, "
					  "members, successors, from)",
					  lua_type(L, -2) == LUA_TSTRING
					      ? lua_tostring(L, -2)
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
			return luaL_error(L,
					  "ctx:define_territory: from '%s' "
					  "is not a period (2024, 2024-Q1, "
					  "2024-03, 2024-03-15)",
					  from);
		t.has_from = true;
	}
	if (lua_getfield(L, 2, "parents") == LUA_TTABLE) {
		size_t n = lua_rawlen(L, -1);
		if (n > VG_MAX_PARENTS)
			return luaL_error(L,
					  "ctx:define_territory: more than "
					  "%d parents",
					  VG_MAX_PARENTS);
		for (size_t i = 0; i < n; i++) {
			lua_rawgeti(L, -1, (lua_Integer)i + 1);
			const char *s = lua_tostring(L, -1);
			if (!s || strlen(s) >= VG_CODE_MAX)
				return luaL_error(L,
						  "ctx:define_territory: "
						  "parents[%d] is not a "
						  "territory code",
						  (int)i + 1);
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
				return luaL_error(L,
						  "ctx:define_territory: "
						  "members[%d] is not a "
						  "territory code",
						  (int)i + 1);
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

const luaL_Reg vg__ctx_territories[] = {
    {"define_territory", ctx_define_territory},
    {NULL, NULL},
};
