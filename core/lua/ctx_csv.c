/* ctx:csv: a streaming CSV reader (core/csv) whose rows reach Lua in
 * batches, keyed by the header's names. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lua/lua_int.h"
#include "vigie/csv.h"

static const char CSV_MT[] = "vigie.csv";

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
		return vg__sandbox_kill(L, VG_ETIMEOUT,
					"deadline exceeded "
					"(manifest 'timeout') while reading a "
					"CSV");
	lua_createtable(L, VG__ROWS_PER_BATCH, 0);
	lua_createtable(L, VG__ROWS_PER_BATCH, 0);
	lua_getiuservalue(L, 1, 1); /* header names, index 4 */
	int n = 0;
	while (h->c && n < VG__ROWS_PER_BATCH) {
		vg_csv_row *row;
		vg_error e;
		int rc = vg_csv_next(h->c, &row, &e);
		if (rc < 0) {
			char buf[1024];
			return luaL_error(
			    L, "ctx:csv: %s",
			    vg_error_format(&e, buf, sizeof(buf)));
		}
		if (rc == 0) {
			vg_csv_close(h->c);
			h->c = NULL;
			break;
		}
		if (h->nhdr) {
			lua_createtable(L, 0, (int)h->nhdr);
			size_t m =
			    row->nfields < h->nhdr ? row->nfields : h->nhdr;
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

static int ctx_csv(lua_State *L)
{
	vg__run *r = vg__run_get(L);
	lua_settop(L, 3);
	static const char *const known[] = {"sep", "header", "skip", "encoding",
					    NULL};
	vg__check_opts(L, 3, "ctx:csv", known);
	vg_csv_opts co = {0};
	co.header = vg__opt_bool(L, 3, "header", 1);
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
				return luaL_error(
				    L, "ctx:csv: 'encoding' must "
				       "be \"utf-8\" or \"latin-1\"");
		}
		lua_settop(L, 3);
	}
	vg_source *s = vg__arg_source(L, r, 2);
	int src = lua_gettop(L);
	csv_h *h = lua_newuserdatauv(L, sizeof(*h), 2);
	memset(h, 0, sizeof(*h));
	luaL_setmetatable(L, CSV_MT);
	int hi = lua_gettop(L);
	lua_pushvalue(L, src); /* keep the source (and its bytes) alive */
	lua_setiuservalue(L, hi, 2);
	vg_error e;
	int rc =
	    s->path ? vg_csv_open_file(&h->c, s->path, &co, &e)
		    : vg_csv_open_mem(&h->c, s->data, s->len, s->name, &co, &e);
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
	vg__check_header(L, "ctx:csv", s->name ? s->name : "?", nh);
	lua_setiuservalue(L, hi, 1);
	h->nhdr = nh;
	return vg__push_rows_iter(L, csv_batch, hi);
}

void vg__ctx_csv_setup(lua_State *L)
{
	luaL_newmetatable(L, CSV_MT);
	lua_pushcfunction(L, csv_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushliteral(L, "locked");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
}

const luaL_Reg vg__ctx_csv[] = {
    {"csv", ctx_csv},
    {NULL, NULL},
};
