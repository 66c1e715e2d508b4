/* ctx:put and ctx:reject: the points a run writes, buffered in the run's
 * batch (committed when `run` returns), and the rows it refuses.
 *
 * Speed: ctx:put goes straight to vg_batch_point with the last indicator
 * and period cached, so a point costs one C call. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lua/lua_int.h"
#include "vigie/io.h"

#define LOG_REJECTS 20

static int find_ind(lua_State *L, vg__run *r, int idx)
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
	return luaL_error(L,
			  "indicator '%s' is not declared in the "
			  "manifest's 'indicators' (a plugin writes only the "
			  "indicators it declares)",
			  s);
}

/* ---- ctx:put, ctx:reject, ctx:define_territory ------------------------ */

static int ctx_put(lua_State *L)
{
	vg__run *r = vg__run_get(L);
	int ii = find_ind(L, r, 2);
	size_t tlen;
	const char *terr = luaL_checklstring(L, 3, &tlen);
	if (strlen(terr) != tlen)
		return luaL_error(L, "ctx:put: the territory code contains a "
				     "NUL byte");
	vg_period per = vg__arg_period(L, r, 4);
	vg_status st = VG_STATUS_OK;
	bool has_status = !lua_isnoneornil(L, 6);
	if (has_status) {
		size_t n;
		const char *ss = luaL_checklstring(L, 6, &n);
		if (vg_status_parse(ss, n, &st))
			return luaL_error(L,
					  "ctx:put: unknown status '%s' (ok, "
					  "provisional, estimated, suppressed, "
					  "missing)",
					  ss);
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
			return luaL_error(L,
					  "ctx:put(%s, %s): value '%s' is "
					  "not a number",
					  r->p->inds[ii].code, terr, vs);
		if (supp && !has_status)
			st = VG_STATUS_SUPPRESSED;
	} else if (st != VG_STATUS_SUPPRESSED && st != VG_STATUS_MISSING) {
		return luaL_error(L,
				  "ctx:put(%s, %s): the value is %s, not a "
				  "number (tonumber of \"12,5\" is nil: pass "
				  "the string, or status 'missing' or "
				  "'suppressed')",
				  r->p->inds[ii].code, terr,
				  luaL_typename(L, 5));
	}
	vg_error e;
	if (vg_batch_point(r->b, r->p->inds[ii].code, terr, per, v, st, &e))
		return luaL_error(L, "ctx:put: %s", e.msg);
	r->counts[ii]++;
	r->res->rows_written++;
	if (r->samples && cJSON_GetArraySize(r->samples[ii]) < VG__DRY_SAMPLE) {
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
	vg__run *r = vg__run_get(L);
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
		vg__run_log(r, "warn", m);
	}
	return 0;
}

const luaL_Reg vg__ctx_points[] = {
    {"put", ctx_put},
    {"reject", ctx_reject},
    {NULL, NULL},
};
