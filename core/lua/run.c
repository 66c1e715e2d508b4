/* A plugin run: the `ctx` object handed to `run(ctx)` (its methods are in
 * the ctx_*.c files, one per group), and the runner that commits
 * everything the run wrote in one transaction. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua/lua_int.h"
#include "vigie/common.h"

static const char IND_KEY = 'I'; /* registry: anchors of ind_ptr */

/* ---- ctx:log, ctx:progress, print --------------------------------------- */

static int ctx_log(lua_State *L)
{
	vg__run *r = vg__run_get(L);
	const char *level = "info", *msg;
	if (lua_gettop(L) >= 3) {
		static const char *const lv[] = {"debug", "info", "warn",
						 "error", NULL};
		level = lv[luaL_checkoption(L, 2, NULL, lv)];
		msg = luaL_tolstring(L, 3, NULL);
	} else {
		msg = luaL_tolstring(L, 2, NULL);
	}
	vg__run_log(r, level, msg);
	return 0;
}

static int lua_print(lua_State *L)
{
	vg__sandbox_check(L);
	vg__run *r = vg__sandbox_of(L)->user;
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
	vg__run_log(r, "info", lua_tostring(L, -1));
	return 0;
}

static int ctx_progress(lua_State *L)
{
	vg__run *r = vg__run_get(L);
	lua_Number done = luaL_checknumber(L, 2),
		   total = luaL_optnumber(L, 3, 0);
	if (!(done >= 0) || !(total >= 0))
		return luaL_error(L, "ctx:progress: counts must be >= 0");
	if (r->o->progress)
		r->o->progress(r->o->ud, (uint64_t)done, (uint64_t)total);
	return 0;
}

static const luaL_Reg ctx_misc[] = {
    {"log", ctx_log},
    {"progress", ctx_progress},
    {NULL, NULL},
};

static const luaL_Reg *const ctx_groups[] = {
    vg__ctx_points, vg__ctx_territories, vg__ctx_reads, vg__ctx_sources,
    vg__ctx_csv,    vg__ctx_json,	 vg__ctx_zip,	ctx_misc,
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
	vg__run *r = vg__sandbox_of(L)->user;
	const cJSON *cfg = lua_touserdata(L, 1);
	vg__ctx_sources_setup(L);
	vg__ctx_csv_setup(L);
	vg__ctx_zip_setup(L);

	/* print -> the run's log. The global table is frozen: set it on
	 * the hidden table behind the proxy. */
	vg__push_env(L);
	luaL_getmetafield(L, -1, "__index");
	lua_pushcfunction(L, lua_print);
	lua_setfield(L, -2, "print");
	lua_pop(L, 2);

	vg__rows_setup(L);

	/* Short strings are interned: the plugin's literal "population" is
	 * the very string pushed here, as long as it stays referenced. */
	lua_createtable(L, (int)r->p->ninds, 0);
	for (size_t i = 0; r->ind_ptr && i < r->p->ninds; i++) {
		r->ind_ptr[i] = lua_pushstring(L, r->p->inds[i].code);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_rawsetp(L, LUA_REGISTRYINDEX, &IND_KEY);

	lua_newuserdatauv(L, 1, 0); /* ctx */
	luaL_newmetatable(L, VG__CTX_MT);
	lua_newtable(L); /* __index */
	for (size_t i = 0; i < VG_ARRAY_LEN(ctx_groups); i++)
		luaL_setfuncs(L, ctx_groups[i], 0);
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
					   "the manifest's 'config'",
					   c->string);
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
					   "its default",
					   c->string,
					   cJSON_IsString(d)   ? "string"
					   : cJSON_IsNumber(d) ? "number"
							       : "boolean");
		}
		cJSON_ReplaceItemInObjectCaseSensitive(m, c->string, v);
	}
	*out = m;
	return 0;
}

static cJSON *dry_json(vg__run *r)
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

static int run_lua(vg__run *r, const cJSON *cfg, vg_error *err)
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
		return vg_error_at(err, VG_EPLUGIN, p->path, 0, 0,
				   "the plugin "
				   "no longer returns its manifest table");
	lua_pushliteral(L, "run");
	if (lua_rawget(L, -2) != LUA_TFUNCTION)
		return vg_error_at(err, VG_EPLUGIN, p->path, 0, 0,
				   "the "
				   "manifest has no 'run' function");
	lua_pushvalue(L, ctx);
	return vg__sandbox_call(&r->sb, 1, 0, err);
}

int vg_plugin_run(const vg_plugin *p, vg_store *s, const vg_run_opts *o,
		  vg_run_result *res, vg_error *err)
{
	static const vg_run_opts none = {0};
	if (!o)
		o = &none;
	memset(res, 0, sizeof(*res));
	double t0 = vg__now();
	vg__run r = {.p = p, .s = s, .o = o, .res = res, .last_ind = -1};
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
	vg_batch_opts bo = {.origin = origin, .time = o->time};
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
	snprintf(origin, sizeof(origin),
		 "plugin %s: %llu rows written, %llu "
		 "rejected",
		 p->name, (unsigned long long)res->rows_written,
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
