/* The sandboxed Lua state: counting allocator, limit hook, allow-listed
 * read-only globals, `require` from plugins/lib only.
 *
 * Why the limits cannot be swallowed: Redis' Lua timeout only warned, and
 * a script that wrapped its loop in pcall caught the kill. Here a kill
 * (deadline, instruction budget, memory cap, cancel) marks the sandbox and
 * re-arms the hook on *every* instruction: whatever pcall caught it, the
 * next Lua instruction raises again, until the error reaches the host.
 * The host also checks the mark after `run` returns, so even a plugin
 * that somehow returned normally has its run failed. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lua/lua_int.h"
#include "vigie/common.h"

double vg__now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void hook(lua_State *L, lua_Debug *ar);

/* ---- allocator --------------------------------------------------------- */

static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	vg__sandbox *sb = ud;
	/* When ptr is NULL, osize encodes the object type, not a size. */
	size_t old = ptr ? osize : 0;
	if (nsize == 0) {
		free(ptr);
		sb->mem -= old;
		return NULL;
	}
	if (nsize > old) {
		size_t grow = nsize - old;
		size_t cap = sb->mem_cap + (sb->killed ? VG__MEM_HEADROOM : 0);
		if (sb->mem + grow > cap || sb->mem + grow < sb->mem) {
			if (!sb->killed && sb->L) {
				sb->killed = VG_ENOMEM;
				snprintf(sb->kill_msg, sizeof(sb->kill_msg),
					 "memory limit of %zu bytes exceeded "
					 "(manifest 'memory')", sb->mem_cap);
				/* lua_sethook only sets fields: safe
				 * from inside the VM. From now on every
				 * instruction raises. */
				lua_sethook(sb->L, hook, LUA_MASKCOUNT, 1);
			}
			return NULL;
		}
	}
	void *p = realloc(ptr, nsize);
	if (!p)
		return NULL;
	sb->mem = sb->mem - old + nsize;
	if (sb->mem > sb->mem_peak)
		sb->mem_peak = sb->mem;
	return p;
}

vg__sandbox *vg__sandbox_of(lua_State *L)
{
	void *ud = NULL;
	lua_getallocf(L, &ud);
	return ud;
}

/* ---- the hook ---------------------------------------------------------- */

static void arm_every_instruction(vg__sandbox *sb, lua_State *L)
{
	lua_sethook(L, hook, LUA_MASKCOUNT, 1);
	/* Coroutines created before the kill keep their own hook settings;
	 * their main thread (sb->L) is also re-armed so that resuming code
	 * returns into a state that raises. */
	if (sb->L && sb->L != L)
		lua_sethook(sb->L, hook, LUA_MASKCOUNT, 1);
}

static void hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	vg__sandbox *sb = vg__sandbox_of(L);
	if (!sb->killed) {
		sb->ticks++;
		if (sb->budget && sb->ticks > sb->budget) {
			sb->killed = VG_ETIMEOUT;
			snprintf(sb->kill_msg, sizeof(sb->kill_msg),
				 "instruction budget of %llu exceeded",
				 (unsigned long long)sb->budget *
					 VG__HOOK_PERIOD);
		} else if (sb->cancel && *sb->cancel) {
			sb->killed = VG_ECANCELED;
			snprintf(sb->kill_msg, sizeof(sb->kill_msg),
				 "run canceled");
		} else if (vg__now() > sb->deadline) {
			sb->killed = VG_ETIMEOUT;
			snprintf(sb->kill_msg, sizeof(sb->kill_msg),
				 "deadline exceeded (manifest 'timeout')");
		} else {
			return;
		}
	}
	arm_every_instruction(sb, L);
	lua_pushstring(L, sb->kill_msg);
	lua_error(L);
}

int vg__sandbox_kill(lua_State *L, int code, const char *fmt, ...)
{
	vg__sandbox *sb = vg__sandbox_of(L);
	if (!sb->killed) {
		sb->killed = code;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(sb->kill_msg, sizeof(sb->kill_msg), fmt, ap);
		va_end(ap);
	}
	arm_every_instruction(sb, L);
	lua_pushstring(L, sb->kill_msg);
	return lua_error(L);
}

void vg__sandbox_check(lua_State *L)
{
	vg__sandbox *sb = vg__sandbox_of(L);
	if (sb->killed) {
		arm_every_instruction(sb, L);
		lua_pushstring(L, sb->kill_msg);
		lua_error(L);
	}
}

/* ---- read-only tables ------------------------------------------------- */

static const char FROZEN_KEY = 'F'; /* registry: proxy -> true (weak) */
static const char ENV_KEY = 'E';    /* registry: the global proxy */
static const char LOADED_KEY = 'L'; /* registry: modules loaded by require */

static int ro_newindex(lua_State *L)
{
	const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2)
						       : "?";
	return luaL_error(L, "cannot assign '%s': this table is read-only in "
			  "a plugin (globals included: use local variables)",
			  k);
}

/* __pairs: iterate the hidden table without handing it out. */
static int ro_next(lua_State *L)
{
	lua_settop(L, 2);
	if (!lua_next(L, lua_upvalueindex(1)))
		return 0;
	return 2;
}

static int ro_pairs(lua_State *L)
{
	luaL_getmetafield(L, 1, "__index");
	lua_pushcclosure(L, ro_next, 1);
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	return 3;
}

void vg__freeze(lua_State *L)
{
	int real = lua_gettop(L);
	lua_newtable(L); /* the proxy */
	lua_createtable(L, 0, 4);
	lua_pushvalue(L, real);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, ro_newindex);
	lua_setfield(L, -2, "__newindex");
	lua_pushcfunction(L, ro_pairs);
	lua_setfield(L, -2, "__pairs");
	lua_pushliteral(L, "locked");
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &FROZEN_KEY);
	lua_pushvalue(L, -2);
	lua_pushboolean(L, 1);
	lua_rawset(L, -3);
	lua_pop(L, 1);
	lua_replace(L, real);
}

static bool is_frozen(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &FROZEN_KEY);
	lua_pushvalue(L, idx);
	bool f = lua_rawget(L, -2) != LUA_TNIL;
	lua_pop(L, 2);
	return f;
}

static int safe_rawset(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checkany(L, 2);
	luaL_checkany(L, 3);
	if (is_frozen(L, 1))
		return luaL_error(L, "rawset refused: the table is read-only "
				  "in a plugin");
	lua_settop(L, 3);
	lua_rawset(L, 1);
	return 1;
}

/* setmetatable without __gc: Lua runs finalizers with hooks disabled
 * (lgc.c, GCTM), so a finalizer's loop could never be stopped. An object
 * is marked for finalization only if its metatable has a __gc field when
 * setmetatable is called, so refusing it here closes that door. */
static int safe_setmetatable(lua_State *L)
{
	if (lua_type(L, 2) == LUA_TTABLE) {
		lua_pushliteral(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL)
			return luaL_error(L, "setmetatable: __gc metamethods "
					  "are not allowed in plugins");
		lua_pop(L, 1);
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	return 1;
}

/* load(chunk [, name [, mode [, env]]]): text only, and _ENV defaults to
 * the plugin's globals rather than the real global table. */
static int safe_load(lua_State *L)
{
	int n = lua_gettop(L);
	lua_pushvalue(L, lua_upvalueindex(1)); /* the base library's load */
	lua_pushvalue(L, 1);
	if (n >= 2)
		lua_pushvalue(L, 2);
	else
		lua_pushnil(L);
	lua_pushliteral(L, "t");
	if (n >= 4)
		lua_pushvalue(L, 4);
	else
		vg__push_env(L);
	lua_call(L, 4, 2);
	if (lua_isnil(L, -2))
		return 2; /* nil, message */
	lua_pop(L, 1);
	return 1;
}

static int safe_collectgarbage(lua_State *L)
{
	static const char *const opts[] = { "collect", "count", "step",
					    "isrunning", NULL };
	int o = luaL_checkoption(L, 1, "collect", opts);
	switch (o) {
	case 0: lua_gc(L, LUA_GCCOLLECT); lua_pushinteger(L, 0); return 1;
	case 1: {
		int k = lua_gc(L, LUA_GCCOUNT), b = lua_gc(L, LUA_GCCOUNTB);
		lua_pushnumber(L, (lua_Number)k + ((lua_Number)b / 1024));
		return 1;
	}
	case 2: lua_pushboolean(L, lua_gc(L, LUA_GCSTEP, 0)); return 1;
	default: lua_pushboolean(L, lua_gc(L, LUA_GCISRUNNING)); return 1;
	}
}

/* print goes to the run's log (ctx.c installs the real one); before a run
 * exists (manifest loading) it is dropped. */
static int quiet_print(lua_State *L)
{
	(void)L;
	return 0;
}

/* ---- require ----------------------------------------------------------- */

static bool module_name_ok(const char *s)
{
	if (!*s)
		return false;
	bool start = true;
	for (; *s; s++) {
		char c = *s;
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     c == '_';
		bool digit = c >= '0' && c <= '9';
		if (c == '.') {
			if (start)
				return false;
			start = true;
			continue;
		}
		if (!alpha && !(digit && !start))
			return false;
		start = false;
	}
	return !start;
}

static int sandbox_require(lua_State *L)
{
	vg__sandbox *sb = vg__sandbox_of(L);
	const char *name = luaL_checkstring(L, 1);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &LOADED_KEY);
	if (lua_getfield(L, -1, name) != LUA_TNIL)
		return 1;
	lua_pop(L, 1);
	if (!module_name_ok(name))
		return luaL_error(L, "require '%s': a module name is letters, "
				  "digits, '_' and dots", name);
	if (!sb->lib_dir)
		return luaL_error(L, "require '%s': no plugin library "
				  "directory is configured", name);
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/", sb->lib_dir);
	for (const char *c = name; *c && n < (int)sizeof(path) - 5; c++)
		path[n++] = *c == '.' ? '/' : *c;
	snprintf(path + n, sizeof(path) - (size_t)n, ".lua");
	struct stat st;
	if (stat(path, &st) || !S_ISREG(st.st_mode))
		return luaL_error(L, "module '%s' not found: plugins may only "
				  "require modules of the plugin library "
				  "(no file %s)", name, path);
	FILE *f = fopen(path, "rb");
	if (!f)
		return luaL_error(L, "require '%s': cannot open %s: %s", name,
				  path, strerror(errno));
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	char chunk[4096];
	size_t got;
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		luaL_addlstring(&b, chunk, got);
	fclose(f);
	luaL_pushresult(&b);
	size_t len;
	const char *src = lua_tolstring(L, -1, &len);
	lua_pushfstring(L, "@%s", path);
	if (luaL_loadbufferx(L, src, len, lua_tostring(L, -1), "t"))
		return lua_error(L);
	vg__push_env(L);
	lua_setupvalue(L, -2, 1);
	lua_pushstring(L, name);
	lua_call(L, 1, 1);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_pushboolean(L, 1);
	}
	lua_pushvalue(L, -1);
	lua_setfield(L, 2, name); /* LOADED[name] */
	return 1;
}

/* ---- building the globals --------------------------------------------- */

/* Keep only `keep` in the table at the top of the stack. */
static void filter_table(lua_State *L, const char *const *keep)
{
	int t = lua_gettop(L);
	lua_newtable(L);
	for (const char *const *k = keep; *k; k++) {
		lua_getfield(L, t, *k);
		lua_setfield(L, -2, *k);
	}
	lua_replace(L, t);
}

static int open_all(lua_State *L)
{
	vg__sandbox *sb = vg__sandbox_of(L);
	(void)sb;
	luaL_requiref(L, "_G", luaopen_base, 1);
	lua_pop(L, 1);
	luaL_requiref(L, "string", luaopen_string, 1);
	/* string.dump would turn functions into bytecode, and the string
	 * metatable's __index is this very table: remove it here. */
	lua_pushnil(L);
	lua_setfield(L, -2, "dump");
	lua_pop(L, 1);
	luaL_requiref(L, "table", luaopen_table, 1);
	luaL_requiref(L, "math", luaopen_math, 1);
	luaL_requiref(L, "utf8", luaopen_utf8, 1);
	luaL_requiref(L, "coroutine", luaopen_coroutine, 1);
	luaL_requiref(L, "os", luaopen_os, 1);
	lua_pop(L, 5);

	/* The string metatable: hide it (getmetatable("") returns "locked")
	 * so plugins cannot change how strings behave. */
	lua_pushliteral(L, "");
	lua_getmetatable(L, -1);
	lua_pushliteral(L, "locked");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 2);

	lua_newtable(L);
	lua_newtable(L);
	lua_pushliteral(L, "k");
	lua_setfield(L, -2, "__mode");
	lua_setmetatable(L, -2);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &FROZEN_KEY);
	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &LOADED_KEY);

	/* The real globals, rebuilt from the allow-list. */
	int g = (lua_pushglobaltable(L), lua_gettop(L));
	lua_newtable(L);
	int env = lua_gettop(L);
	static const char *const base[] = {
		"assert", "error", "getmetatable", "ipairs", "next", "pairs",
		"pcall", "rawequal", "rawget", "rawlen", "select",
		"tonumber", "tostring", "type", "xpcall",
		"_VERSION", NULL
	};
	for (const char *const *k = base; *k; k++) {
		lua_getfield(L, g, *k);
		lua_setfield(L, env, *k);
	}
	lua_pushcfunction(L, safe_rawset);
	lua_setfield(L, env, "rawset");
	lua_getfield(L, g, "setmetatable");
	lua_pushcclosure(L, safe_setmetatable, 1);
	lua_setfield(L, env, "setmetatable");
	lua_getfield(L, g, "load");
	lua_pushcclosure(L, safe_load, 1);
	lua_setfield(L, env, "load");
	lua_pushcfunction(L, safe_collectgarbage);
	lua_setfield(L, env, "collectgarbage");
	lua_pushcfunction(L, quiet_print);
	lua_setfield(L, env, "print");
	lua_pushcfunction(L, sandbox_require);
	lua_setfield(L, env, "require");

	static const char *const libs[] = { "string", "table", "math", "utf8",
					    "coroutine", NULL };
	for (const char *const *k = libs; *k; k++) {
		lua_getfield(L, g, *k);
		vg__freeze(L);
		lua_setfield(L, env, *k);
	}
	static const char *const os_keep[] = { "time", "clock", "date",
					       "difftime", NULL };
	lua_getfield(L, g, "os");
	filter_table(L, os_keep);
	vg__freeze(L);
	lua_setfield(L, env, "os");

	/* _G and _ENV are the proxy itself. */
	lua_pushvalue(L, env);
	vg__freeze(L);
	lua_pushvalue(L, -1);
	lua_setfield(L, env, "_G");
	lua_rawsetp(L, LUA_REGISTRYINDEX, &ENV_KEY);
	return 0;
}

void vg__push_env(lua_State *L)
{
	lua_rawgetp(L, LUA_REGISTRYINDEX, &ENV_KEY);
}

int vg__sandbox_open(vg__sandbox *sb, size_t mem_cap, double timeout,
		     uint64_t instructions, const volatile int *cancel,
		     const char *lib_dir, vg_error *err)
{
	memset(sb, 0, sizeof(*sb));
	sb->mem_cap = mem_cap;
	sb->cancel = cancel;
	sb->lib_dir = lib_dir;
	sb->deadline = vg__now() + timeout;
	sb->budget = instructions ? (instructions + VG__HOOK_PERIOD - 1) /
					    VG__HOOK_PERIOD
				  : 0;
	lua_State *L = lua_newstate(sb_alloc, sb);
	if (!L)
		return vg_error_set(err, VG_ENOMEM, "cannot create a Lua state "
				    "within %zu bytes", mem_cap);
	sb->L = L;
	lua_pushcfunction(L, open_all);
	if (lua_pcall(L, 0, 0, 0)) {
		int rc = vg_error_set(err, VG_ENOMEM, "cannot set up the plugin "
				      "sandbox within %zu bytes: %s", mem_cap,
				      lua_tostring(L, -1));
		vg__sandbox_close(sb);
		return rc;
	}
	lua_sethook(L, hook, LUA_MASKCOUNT, VG__HOOK_PERIOD);
	return 0;
}

void vg__sandbox_close(vg__sandbox *sb)
{
	if (!sb->L)
		return;
	/* lua_close runs the plugin's __gc finalizers: make any Lua code
	 * there stop at its first instruction rather than run until the
	 * deadline. C finalizers (sources, readers) run normally. */
	if (!sb->killed) {
		sb->killed = VG_ECANCELED;
		snprintf(sb->kill_msg, sizeof(sb->kill_msg),
			 "the state is closing");
	}
	lua_sethook(sb->L, hook, LUA_MASKCOUNT, 1);
	lua_close(sb->L);
	sb->L = NULL;
}

int vg__sandbox_load(vg__sandbox *sb, const char *buf, size_t len,
		     const char *path, vg_error *err)
{
	lua_State *L = sb->L;
	lua_pushfstring(L, "@%s", path);
	int st = luaL_loadbufferx(L, buf, len, lua_tostring(L, -1), "t");
	lua_remove(L, -2);
	if (st != LUA_OK) {
		const char *m = lua_tostring(L, -1);
		m = m ? m : "cannot compile";
		/* "path:12: msg" -> locate it, keep the message. */
		long line = 0;
		const char *p = strstr(m, ":");
		while (p && !(p[1] >= '0' && p[1] <= '9'))
			p = strstr(p + 1, ":");
		if (p) {
			char *end;
			line = strtol(p + 1, &end, 10);
			if (*end == ':')
				m = end + (end[1] == ' ' ? 2 : 1);
		}
		int rc = vg_error_at(err, st == LUA_ERRMEM ? VG_ENOMEM : VG_EPARSE,
				     path, line, 0, "%s", m);
		lua_pop(L, 1);
		return rc;
	}
	vg__push_env(L);
	lua_setupvalue(L, -2, 1);
	sb->chunk = path;
	return 0;
}

/* Message handler: note where (innermost Lua function) and append a
 * traceback. Runs in C, so a killed state does not interrupt it. */
static int msgh(lua_State *L)
{
	vg__sandbox *sb = vg__sandbox_of(L);
	const char *msg = lua_tostring(L, 1);
	if (!msg) {
		if (luaL_callmeta(L, 1, "__tostring") &&
		    lua_type(L, -1) == LUA_TSTRING)
			msg = lua_tostring(L, -1);
		else
			msg = lua_pushfstring(L, "(error object is a %s value)",
					      luaL_typename(L, 1));
	}
	lua_Debug ar;
	sb->err_src[0] = '\0';
	sb->err_line = 0;
	for (int lvl = 0; lua_getstack(L, lvl, &ar); lvl++) {
		if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0 ||
		    ar.source[0] != '@')
			continue;
		snprintf(sb->err_src, sizeof(sb->err_src), "%s", ar.source + 1);
		sb->err_line = ar.currentline;
		/* Drop the "short_src:line: " prefix luaL_error added. */
		char pre[LUA_IDSIZE + 32];
		snprintf(pre, sizeof(pre), "%s:%d: ", ar.short_src,
			 ar.currentline);
		if (!strncmp(msg, pre, strlen(pre)))
			msg += strlen(pre);
		break;
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

int vg__sandbox_call(vg__sandbox *sb, int nargs, int nresults, vg_error *err)
{
	lua_State *L = sb->L;
	int base = lua_gettop(L) - nargs;
	lua_pushcfunction(L, msgh);
	lua_insert(L, base);
	int st = lua_pcall(L, nargs, nresults, base);
	if (st == LUA_OK && !sb->killed) {
		lua_remove(L, base);
		return 0;
	}
	int code = sb->killed ? sb->killed
			      : st == LUA_ERRMEM ? VG_ENOMEM : VG_EPLUGIN;
	const char *m = st == LUA_OK ? sb->kill_msg : lua_tostring(L, -1);
	if (!m)
		m = "error";
	/* Memory errors skip the message handler: no location was noted. */
	if (st == LUA_ERRMEM || st == LUA_OK) {
		snprintf(sb->err_src, sizeof(sb->err_src), "%s",
			 sb->chunk ? sb->chunk : "");
		sb->err_line = 0;
	}
	/* A kill message is the authoritative reason, whatever the plugin
	 * turned the error into on its way out. */
	if (sb->killed && strncmp(m, sb->kill_msg, strlen(sb->kill_msg))) {
		vg_error_at(err, code, sb->err_src[0] ? sb->err_src : NULL,
			    sb->err_line, 0, "%s (while unwinding: %s)",
			    sb->kill_msg, m);
	} else {
		vg_error_at(err, code, sb->err_src[0] ? sb->err_src : NULL,
			    sb->err_line, 0, "%s", m);
	}
	lua_settop(L, base - 1);
	return code;
}

int vg__sandbox_bench(const char *src, bool with_hook, double *secs,
		      vg_error *err)
{
	vg__sandbox sb;
	int rc = vg__sandbox_open(&sb, (size_t)1 << 30, 3600, 0, NULL, NULL,
				  err);
	if (rc)
		return rc;
	if (!with_hook)
		lua_sethook(sb.L, NULL, 0, 0);
	rc = vg__sandbox_load(&sb, src, strlen(src), "bench", err);
	double t0 = vg__now();
	if (!rc)
		rc = vg__sandbox_call(&sb, 0, 0, err);
	*secs = vg__now() - t0;
	vg__sandbox_close(&sb);
	return rc;
}
