/* Loading a plugin file and validating its manifest.
 *
 * The file runs once in a throwaway sandbox (tight limits: top-level code
 * should only build a table); the manifest is then read with raw accesses
 * only, so no metamethod of the plugin runs during validation. The
 * `fields` table drives the checks and the "known keys" of messages. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lua/lua_int.h"
#include "vigie/common.h"

#define LOAD_TIMEOUT 5.0
#define LOAD_MEMORY ((size_t)64 << 20)
#define SOURCE_MAX ((size_t)16 << 20)

typedef struct field {
	const char *key;
	const char *what; /* for messages and docs */
} field;

static const field fields[] = {
	{ "name", "plugin name: [a-z][a-z0-9_]*, required" },
	{ "description", "text" },
	{ "schedule", "cron expression, 5 fields" },
	{ "every", "interval: seconds or \"90s\", \"15m\", \"6h\", \"1d\"" },
	{ "after", "list of plugin names" },
	{ "indicators", "table code -> indicator definition" },
	{ "config", "table key -> default (string, number, boolean)" },
	{ "timeout", "run deadline: seconds or \"10m\"" },
	{ "memory", "Lua memory cap: bytes or \"256M\"" },
	{ "run", "function(ctx), required" },
};

static const char *const ind_keys[] = { "label", "unit", "aggregate",
					"source", "licence", "periodicity",
					"description", "decimals", NULL };

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

void vg_plugin_free(vg_plugin *p)
{
	if (!p)
		return;
	free(p->path);
	free(p->name);
	free(p->description);
	free(p->schedule);
	for (size_t i = 0; i < p->nafter; i++)
		free(p->after[i]);
	free(p->after);
	free(p->inds);
	cJSON_Delete(p->config);
	free(p->source);
	free(p->lib_dir);
	free(p->cache_dir);
	for (size_t i = 0; i < p->nroots; i++)
		free(p->roots[i]);
	free(p->roots);
	free(p);
}

static bool name_ok(const char *s, size_t len)
{
	if (!len || len >= VG_CODE_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* "90s", "15m", "6h", "1d", "1.5h" or a plain number of seconds. */
static int parse_duration(lua_State *L, int idx, double *out)
{
	if (lua_type(L, idx) == LUA_TNUMBER) {
		*out = lua_tonumber(L, idx);
		return isfinite(*out) && *out > 0 ? 0 : -1;
	}
	if (lua_type(L, idx) != LUA_TSTRING)
		return -1;
	const char *s = lua_tostring(L, idx);
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || !isfinite(v) || v <= 0)
		return -1;
	double mul = 1;
	if (!strcmp(end, "s") || !*end)
		mul = 1;
	else if (!strcmp(end, "m") || !strcmp(end, "min"))
		mul = 60;
	else if (!strcmp(end, "h"))
		mul = 3600;
	else if (!strcmp(end, "d"))
		mul = 86400;
	else
		return -1;
	*out = v * mul;
	return 0;
}

/* Bytes, or "512K", "256M", "1G" (also "KiB", "MiB", "GiB", "MB"...:
 * all binary multiples). */
static int parse_size(lua_State *L, int idx, double *out)
{
	if (lua_type(L, idx) == LUA_TNUMBER) {
		*out = lua_tonumber(L, idx);
		return isfinite(*out) && *out > 0 ? 0 : -1;
	}
	if (lua_type(L, idx) != LUA_TSTRING)
		return -1;
	const char *s = lua_tostring(L, idx);
	char *end;
	double v = strtod(s, &end);
	if (end == s || !isfinite(v) || v <= 0)
		return -1;
	double mul;
	switch (*end) {
	case '\0': mul = 1; break;
	case 'k': case 'K': mul = 1024.0; break;
	case 'm': case 'M': mul = 1024.0 * 1024; break;
	case 'g': case 'G': mul = 1024.0 * 1024 * 1024; break;
	default: return -1;
	}
	if (*end) {
		const char *u = end + 1;
		if (*u && strcmp(u, "iB") && strcmp(u, "B") && strcmp(u, "b"))
			return -1;
	}
	*out = v * mul;
	return 0;
}

/* Five space-separated fields of [0-9a-zA-Z*,/-]; the scheduler parses
 * the values (month and day names included). */
static bool cron_ok(const char *s)
{
	int nf = 0;
	bool in = false;
	for (; *s; s++) {
		if (*s == ' ' || *s == '\t') {
			in = false;
			continue;
		}
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z') || strchr("*,/-?", *s)))
			return false;
		if (!in)
			nf++;
		in = true;
	}
	return nf == 5;
}

typedef struct loader {
	vg_plugin *p;
	lua_State *L;
	vg_error *err;
} loader;

static int bad(loader *ld, const char *key, const char *fmt, const char *a)
{
	char m[400];
	snprintf(m, sizeof(m), fmt, a);
	return vg_error_at(ld->err, VG_EPLUGIN, ld->p->path, 0, 0,
			   "manifest key '%s': %s", key, m);
}

static int check_indicator(loader *ld, int t, const char *code,
			   vg_indicator *out)
{
	lua_State *L = ld->L;
	char key[128];
	snprintf(key, sizeof(key), "indicators.%s", code);
	if (!name_ok(code, strlen(code)))
		return bad(ld, key, "'%s' is not an indicator code "
			   "([a-z][a-z0-9_]*, at most 63 bytes)", code);
	if (lua_type(L, t) != LUA_TTABLE)
		return bad(ld, key, "must be a table (label, unit, aggregate, "
			   "...)%s", "");
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return vg_error_set(ld->err, VG_ENOMEM, "out of memory");
	cJSON_AddStringToObject(o, "code", code);
	lua_pushnil(L);
	while (lua_next(L, t)) {
		char sub[192];
		const char *k = lua_type(L, -2) == LUA_TSTRING
					? lua_tostring(L, -2)
					: NULL;
		snprintf(sub, sizeof(sub), "%s.%s", key, k ? k : "?");
		bool known = false;
		for (const char *const *ik = ind_keys; k && *ik; ik++)
			known |= !strcmp(*ik, k);
		if (!known) {
			cJSON_Delete(o);
			lua_pop(L, 2);
			return bad(ld, sub, "unknown key (known: label, unit, "
				   "aggregate, source, licence, periodicity, "
				   "description, decimals)%s", "");
		}
		if (!strcmp(k, "decimals")) {
			if (!lua_isinteger(L, -1)) {
				cJSON_Delete(o);
				lua_pop(L, 2);
				return bad(ld, sub, "must be an integer%s", "");
			}
			cJSON_AddNumberToObject(o, k,
						(double)lua_tointeger(L, -1));
		} else {
			if (lua_type(L, -1) != LUA_TSTRING) {
				const char *tn = luaL_typename(L, -1);
				cJSON_Delete(o);
				lua_pop(L, 2);
				return bad(ld, sub, "must be a string, not %s",
					   tn);
			}
			cJSON_AddStringToObject(o, k, lua_tostring(L, -1));
		}
		lua_pop(L, 1);
	}
	vg_error e;
	vg_error_clear(&e);
	int rc = vg_indicator_from_json(o, out, NULL, -1, &e);
	cJSON_Delete(o);
	if (rc)
		return bad(ld, key, "%.380s", e.msg);
	return 0;
}

static int check_config(loader *ld, int t)
{
	lua_State *L = ld->L;
	if (lua_type(L, t) != LUA_TTABLE)
		return bad(ld, "config", "must be a table of defaults%s", "");
	ld->p->config = cJSON_CreateObject();
	if (!ld->p->config)
		return vg_error_set(ld->err, VG_ENOMEM, "out of memory");
	lua_pushnil(L);
	while (lua_next(L, t)) {
		if (lua_type(L, -2) != LUA_TSTRING) {
			lua_pop(L, 2);
			return bad(ld, "config", "keys must be strings%s", "");
		}
		const char *k = lua_tostring(L, -2);
		char sub[160];
		snprintf(sub, sizeof(sub), "config.%s", k);
		cJSON *v = NULL;
		switch (lua_type(L, -1)) {
		case LUA_TSTRING: v = cJSON_CreateString(lua_tostring(L, -1)); break;
		case LUA_TNUMBER: v = cJSON_CreateNumber(lua_tonumber(L, -1)); break;
		case LUA_TBOOLEAN: v = cJSON_CreateBool(lua_toboolean(L, -1)); break;
		default:
			lua_pop(L, 2);
			return bad(ld, sub, "a default must be a string, a "
				   "number or a boolean%s", "");
		}
		if (!v || !cJSON_AddItemToObject(ld->p->config, k, v)) {
			cJSON_Delete(v);
			lua_pop(L, 2);
			return vg_error_set(ld->err, VG_ENOMEM, "out of memory");
		}
		lua_pop(L, 1);
	}
	return 0;
}

static int check_field(loader *ld, const char *k, int v)
{
	lua_State *L = ld->L;
	vg_plugin *p = ld->p;
	int ty = lua_type(L, v);
	if (!strcmp(k, "name")) {
		size_t n;
		const char *s = ty == LUA_TSTRING ? lua_tolstring(L, v, &n) : NULL;
		if (!s || !name_ok(s, n))
			return bad(ld, k, "must be a string of [a-z][a-z0-9_]* "
				   "(at most 63 bytes)%s", "");
		p->name = xstrdup(s);
	} else if (!strcmp(k, "description")) {
		if (ty != LUA_TSTRING)
			return bad(ld, k, "must be a string%s", "");
		p->description = xstrdup(lua_tostring(L, v));
	} else if (!strcmp(k, "schedule")) {
		if (ty != LUA_TSTRING || !cron_ok(lua_tostring(L, v)))
			return bad(ld, k, "must be a cron expression of 5 "
				   "fields (minute hour day month weekday), "
				   "e.g. \"0 4 * * 1\"%s", "");
		p->schedule = xstrdup(lua_tostring(L, v));
	} else if (!strcmp(k, "every")) {
		double d;
		if (parse_duration(L, v, &d) || d < 1 || d > 366 * 86400.0)
			return bad(ld, k, "must be an interval from 1 s to a "
				   "year: seconds, or \"90s\", \"15m\", \"6h\", "
				   "\"1d\"%s", "");
		p->every = (uint64_t)d;
	} else if (!strcmp(k, "after")) {
		if (ty != LUA_TTABLE)
			return bad(ld, k, "must be a list of plugin names%s",
				   "");
		size_t n = lua_rawlen(L, v);
		p->after = calloc(n ? n : 1, sizeof(char *));
		if (!p->after)
			return vg_error_set(ld->err, VG_ENOMEM, "out of memory");
		for (size_t i = 1; i <= n; i++) {
			lua_rawgeti(L, v, (lua_Integer)i);
			size_t len;
			const char *s = lua_type(L, -1) == LUA_TSTRING
						? lua_tolstring(L, -1, &len)
						: NULL;
			if (!s || !name_ok(s, len)) {
				lua_pop(L, 1);
				return bad(ld, k, "entries must be plugin "
					   "names ([a-z][a-z0-9_]*)%s", "");
			}
			p->after[p->nafter++] = xstrdup(s);
			lua_pop(L, 1);
		}
		/* Keys other than 1..n would be silently ignored. */
		size_t count = 0;
		lua_pushnil(L);
		while (lua_next(L, v)) {
			count++;
			lua_pop(L, 1);
		}
		if (count != n)
			return bad(ld, k, "must be a list (no holes, no named "
				   "keys)%s", "");
	} else if (!strcmp(k, "indicators")) {
		if (ty != LUA_TTABLE)
			return bad(ld, k, "must be a table code -> definition%s",
				   "");
		size_t n = 0;
		lua_pushnil(L);
		while (lua_next(L, v)) {
			n++;
			lua_pop(L, 1);
		}
		p->inds = calloc(n ? n : 1, sizeof(*p->inds));
		if (!p->inds)
			return vg_error_set(ld->err, VG_ENOMEM, "out of memory");
		lua_pushnil(L);
		while (lua_next(L, v)) {
			if (lua_type(L, -2) != LUA_TSTRING) {
				lua_pop(L, 2);
				return bad(ld, k, "keys must be indicator codes "
					   "(strings)%s", "");
			}
			int rc = check_indicator(ld, lua_gettop(L),
						 lua_tostring(L, -2),
						 &p->inds[p->ninds]);
			if (rc) {
				lua_pop(L, 2);
				return rc;
			}
			p->ninds++;
			lua_pop(L, 1);
		}
	} else if (!strcmp(k, "config")) {
		return check_config(ld, v);
	} else if (!strcmp(k, "timeout")) {
		double d;
		if (parse_duration(L, v, &d) || d > 86400)
			return bad(ld, k, "must be a duration up to a day: "
				   "seconds, or \"30s\", \"10m\", \"1h\"%s", "");
		p->timeout = d;
	} else if (!strcmp(k, "memory")) {
		double d;
		if (parse_size(L, v, &d) || d < (1 << 20) ||
		    d > 64.0 * (1 << 30))
			return bad(ld, k, "must be a size from 1M to 64G: "
				   "bytes, or \"64M\", \"1G\"%s", "");
		p->memory = (size_t)d;
	} else if (!strcmp(k, "run")) {
		if (ty != LUA_TFUNCTION)
			return bad(ld, k, "must be a function(ctx)%s", "");
	}
	return 0;
}

static int cmp_ind(const void *a, const void *b)
{
	return strcmp(((const vg_indicator *)a)->code,
		      ((const vg_indicator *)b)->code);
}

static int validate(loader *ld, int t)
{
	lua_State *L = ld->L;
	lua_pushnil(L);
	while (lua_next(L, t)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING
					? lua_tostring(L, -2)
					: NULL;
		const field *f = NULL;
		for (size_t i = 0; k && i < VG_ARRAY_LEN(fields); i++)
			if (!strcmp(fields[i].key, k))
				f = &fields[i];
		if (!f) {
			lua_pop(L, 2);
			return bad(ld, k ? k : "?", "unknown key (known: name, "
				   "description, schedule, every, after, "
				   "indicators, config, timeout, memory, run)%s",
				   "");
		}
		int rc = check_field(ld, k, lua_gettop(L));
		if (rc) {
			lua_pop(L, 2);
			return rc;
		}
		lua_pop(L, 1);
	}
	vg_plugin *p = ld->p;
	if (!p->name)
		return bad(ld, "name", "is missing%s", "");
	lua_pushliteral(L, "run");
	if (lua_rawget(L, t) != LUA_TFUNCTION)
		return bad(ld, "run", "is missing (a function(ctx))%s", "");
	lua_pop(L, 1);
	if (p->schedule && p->every)
		return bad(ld, "every", "give either 'schedule' or 'every', "
			   "not both%s", "");
	for (size_t i = 0; i < p->nafter; i++)
		if (!strcmp(p->after[i], p->name))
			return bad(ld, "after", "a plugin cannot run after "
				   "itself%s", "");
	/* Lua tables have no order: sort, so output and dry runs are
	 * stable from one run to the next. */
	if (p->ninds > 1)
		qsort(p->inds, p->ninds, sizeof(*p->inds), cmp_ind);
	if (!p->config)
		p->config = cJSON_CreateObject();
	return p->config ? 0 : vg_error_set(ld->err, VG_ENOMEM, "out of memory");
}

static int read_source(const char *path, char **out, size_t *len,
		       vg_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return vg_error_at(err, errno == ENOENT ? VG_ENOTFOUND : VG_EIO,
				   path, 0, 0, "cannot open the plugin: %s",
				   strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > SOURCE_MAX) {
		fclose(f);
		return vg_error_at(err, VG_EIO, path, 0, 0, "not a regular "
				   "file of at most %zu bytes", SOURCE_MAX);
	}
	char *b = malloc((size_t)st.st_size + 1);
	if (!b) {
		fclose(f);
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	}
	*len = fread(b, 1, (size_t)st.st_size, f);
	fclose(f);
	b[*len] = '\0';
	*out = b;
	return 0;
}

static int copy_env(vg_plugin *p, const vg_plugin_env *env)
{
	if (!env)
		return 0;
	p->lib_dir = xstrdup(env->lib_dir);
	p->cache_dir = xstrdup(env->cache_dir);
	p->fetch_max = env->fetch_max;
	if (env->nroots) {
		p->roots = calloc(env->nroots, sizeof(char *));
		if (!p->roots)
			return VG_ENOMEM;
		for (size_t i = 0; i < env->nroots; i++) {
			p->roots[i] = xstrdup(env->roots[i]);
			if (!p->roots[i])
				return VG_ENOMEM;
			p->nroots++;
		}
	}
	if ((env->lib_dir && !p->lib_dir) || (env->cache_dir && !p->cache_dir))
		return VG_ENOMEM;
	return 0;
}

int vg_plugin_load(const char *path, const vg_plugin_env *env,
		   vg_plugin **out, vg_error *err)
{
	*out = NULL;
	vg_plugin *p = calloc(1, sizeof(*p));
	if (!p || !(p->path = strdup(path))) {
		free(p);
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	}
	p->timeout = VG_PLUGIN_TIMEOUT_DEFAULT;
	p->memory = VG_PLUGIN_MEMORY_DEFAULT;
	int rc = copy_env(p, env);
	if (rc) {
		vg_plugin_free(p);
		return vg_error_set(err, rc, "out of memory");
	}
	rc = read_source(path, &p->source, &p->source_len, err);
	if (rc) {
		vg_plugin_free(p);
		return rc;
	}
	vg__sandbox sb;
	rc = vg__sandbox_open(&sb, LOAD_MEMORY, LOAD_TIMEOUT, 0, NULL,
			      p->lib_dir, err);
	if (!rc)
		rc = vg__sandbox_load(&sb, p->source, p->source_len, path, err);
	if (!rc)
		rc = vg__sandbox_call(&sb, 0, 1, err);
	if (!rc && lua_type(sb.L, -1) != LUA_TTABLE)
		rc = vg_error_at(err, VG_EPLUGIN, path, 0, 0,
				 "the plugin must return its manifest table, "
				 "it returned %s", luaL_typename(sb.L, -1));
	if (!rc) {
		loader ld = { p, sb.L, err };
		rc = validate(&ld, lua_gettop(sb.L));
	}
	vg__sandbox_close(&sb);
	if (rc) {
		vg_plugin_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

const char *vg_plugin_name(const vg_plugin *p) { return p->name; }
const char *vg_plugin_path(const vg_plugin *p) { return p->path; }
const char *vg_plugin_schedule(const vg_plugin *p) { return p->schedule; }
uint64_t vg_plugin_every(const vg_plugin *p) { return p->every; }
size_t vg_plugin_after_count(const vg_plugin *p) { return p->nafter; }
double vg_plugin_timeout(const vg_plugin *p) { return p->timeout; }
size_t vg_plugin_memory(const vg_plugin *p) { return p->memory; }

const char *vg_plugin_after(const vg_plugin *p, size_t i)
{
	return i < p->nafter ? p->after[i] : NULL;
}

cJSON *vg_plugin_to_json(const vg_plugin *p)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	bool ok = cJSON_AddStringToObject(o, "name", p->name) &&
		  cJSON_AddStringToObject(o, "path", p->path);
	if (p->description)
		ok = ok && cJSON_AddStringToObject(o, "description",
						   p->description);
	if (p->schedule)
		ok = ok && cJSON_AddStringToObject(o, "schedule", p->schedule);
	if (p->every)
		ok = ok && cJSON_AddNumberToObject(o, "every", (double)p->every);
	cJSON *after = cJSON_AddArrayToObject(o, "after");
	for (size_t i = 0; ok && after && i < p->nafter; i++)
		ok = cJSON_AddItemToArray(after,
					  cJSON_CreateString(p->after[i]));
	cJSON *inds = cJSON_AddArrayToObject(o, "indicators");
	for (size_t i = 0; ok && inds && i < p->ninds; i++)
		ok = cJSON_AddItemToArray(inds,
					  vg_indicator_to_json(&p->inds[i]));
	cJSON *cfg = cJSON_Duplicate(p->config, true);
	ok = ok && after && inds && cfg &&
	     cJSON_AddItemToObject(o, "config", cfg);
	if (!ok && cfg && !cJSON_GetObjectItem(o, "config"))
		cJSON_Delete(cfg);
	ok = ok && cJSON_AddNumberToObject(o, "timeout", p->timeout) &&
	     cJSON_AddNumberToObject(o, "memory", (double)p->memory);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}
