/* ctx:zip and ctx:xlsx: members of an archive and worksheets of a
 * workbook (core/source reads them), the sheet's rows handed to Lua in
 * batches like a CSV. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lua_int.h"

static const char XLSX_MT[] = "vigie.xlsx";

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

static void names_free(void *p)
{
	names *nm = p;
	for (size_t i = 0; i < nm->n; i++)
		free(nm->v[i]);
	free(nm->v);
	free(nm);
}

static int ctx_zip(lua_State *L)
{
	vg__run *r = vg__run_get(L);
	lua_settop(L, 3);
	const char *member = luaL_optstring(L, 3, NULL);
	vg_source *s = vg__arg_source(L, r, 2);
	size_t n;
	vg_error e;
	size_t max = vg__fetch_max(r->p);
	/* Allocate the result first: nothing below may raise while libzip
	 * holds the archive or a C buffer is not yet guarded. */
	vg_source *m = member ? vg__source_push(L) : NULL;
	if (!member)
		lua_newtable(L);
	int res = lua_gettop(L);
	vg__guard *g;
	const unsigned char *d = vg__source_bytes(L, s, max, &n, "ctx:zip", &g);
	int rc;
	if (!member) {
		/* The names are held by a guard, so that a Lua error while
		 * copying them out frees them. */
		vg__guard *ng = vg__guard_push(L, names_free);
		names *nm = calloc(1, sizeof(*nm));
		vg__guard_set(ng, nm);
		if (!nm) {
			vg__guard_done(g);
			return luaL_error(L, "ctx:zip: out of memory");
		}
		rc = vg_zip_list(d, n, s->name, list_cb, nm, &e);
		if (!rc && nm->oom)
			rc = vg_error_set(&e, VG_ENOMEM, "out of memory");
		for (size_t i = 0; !rc && i < nm->n; i++) {
			lua_pushstring(L, nm->v[i]);
			lua_rawseti(L, res, (lua_Integer)i + 1);
		}
		vg__guard_done(ng);
	} else {
		rc = vg_zip_read(d, n, s->name, member, max, &m->data, &m->len,
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
	vg__guard_done(g);
	if (rc)
		return vg__raise(L, "ctx:zip", &e);
	lua_settop(L, res);
	return 1;
}

typedef struct xlsx_h {
	vg_xlsx_sheet sh;
	size_t next, nhdr;
} xlsx_h;

static int xlsx_gc(lua_State *L)
{
	xlsx_h *h = luaL_checkudata(L, 1, XLSX_MT);
	vg_xlsx_free(&h->sh);
	return 0;
}

static int xlsx_batch(lua_State *L)
{
	vg__sandbox_check(L);
	xlsx_h *h = luaL_checkudata(L, 1, XLSX_MT);
	lua_createtable(L, VG__ROWS_PER_BATCH, 0);
	lua_createtable(L, VG__ROWS_PER_BATCH, 0);
	lua_getiuservalue(L, 1, 1);
	int n = 0;
	for (; h->next < h->sh.nrows && n < VG__ROWS_PER_BATCH; h->next++) {
		const vg_xlsx_row *row = &h->sh.rows[h->next];
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
	vg__run *r = vg__run_get(L);
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
	static const char *const known[] = {"header", "skip", NULL};
	vg__check_opts(L, 4, "ctx:xlsx", known);
	bool header = vg__opt_bool(L, 4, "header", 1);
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
	vg_source *s = vg__arg_source(L, r, 2);
	size_t n;
	vg_error e;
	size_t max = vg__fetch_max(r->p);
	xlsx_h *h = lua_newuserdatauv(L, sizeof(*h), 1);
	memset(h, 0, sizeof(*h));
	luaL_setmetatable(L, XLSX_MT);
	int hi = lua_gettop(L);
	vg__guard *g;
	const unsigned char *d =
	    vg__source_bytes(L, s, max, &n, "ctx:xlsx", &g);
	int rc = vg_xlsx_read(d, n, s->name, sheet, max, &h->sh, &e);
	vg__guard_done(g);
	if (rc)
		return vg__raise(L, "ctx:xlsx", &e);
	/* Skipped rows are counted by the sheet's row numbers, like the
	 * lines a CSV skips (empty rows absent from the XML count too). */
	while (h->next < h->sh.nrows && h->sh.rows[h->next].line <= skip)
		h->next++;
	lua_newtable(L);
	if (header && h->next < h->sh.nrows) {
		const vg_xlsx_row *row = &h->sh.rows[h->next++];
		for (size_t i = 0; i < row->ncells; i++) {
			if (row->cells[i])
				lua_pushstring(L, row->cells[i]);
			else
				lua_pushfstring(L, "%d", (int)i + 1);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		h->nhdr = row->ncells;
		vg__check_header(L, "ctx:xlsx", s->name ? s->name : "?",
				 h->nhdr);
	}
	lua_setiuservalue(L, hi, 1);
	return vg__push_rows_iter(L, xlsx_batch, hi);
}

void vg__ctx_zip_setup(lua_State *L)
{
	luaL_newmetatable(L, XLSX_MT);
	lua_pushcfunction(L, xlsx_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushliteral(L, "locked");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
}

const luaL_Reg vg__ctx_zip[] = {
    {"zip", ctx_zip},
    {"xlsx", ctx_xlsx},
    {NULL, NULL},
};
