/* Internals of the Lua plugin host, shared by the files of core/lua/ only.
 *
 * The only place (with the .c files beside it) that includes lua.h. */
#ifndef VIGIE_LUA_INT_H
#define VIGIE_LUA_INT_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/sha256.h"
#include "vigie/error.h"
#include "vigie/plugin.h"
#include "vigie/source.h"
#include "vigie/store.h"

/* Lua instructions between two checks of the deadline, the budget and the
 * cancel flag. */
#define VG__HOOK_PERIOD 1000
/* Extra heap a killed state may use to unwind (error messages, traceback). */
#define VG__MEM_HEADROOM ((size_t)1 << 20)

/* One sandboxed Lua state and its limits. Found from the lua_State through
 * the allocator's user data (vg__sandbox_of). */
typedef struct vg__sandbox {
	lua_State *L;
	size_t mem, mem_cap, mem_peak;
	double deadline;       /* CLOCK_MONOTONIC seconds */
	uint64_t ticks, budget; /* hook calls done / allowed */
	const volatile int *cancel;
	int killed;            /* 0, or VG_ETIMEOUT/VG_ENOMEM/VG_ECANCELED/
				  VG_ESANDBOX: the state must unwind */
	char kill_msg[256];
	const char *lib_dir;   /* not owned */
	const char *chunk;     /* path of the last chunk loaded: where errors
				  without a Lua location (memory) happened */
	void *user;            /* the run (ctx.c) */
	/* Filled by the message handler of vg__sandbox_call. */
	char err_src[512];
	long err_line;
} vg__sandbox;

double vg__now(void); /* CLOCK_MONOTONIC seconds */

/* Create the state: allocator with cap `mem_cap`, standard libraries
 * filtered to the allow-list, read-only globals, `require` reading only
 * `lib_dir`, the hook armed with `timeout` seconds and `instructions`
 * (0: no budget). Returns 0 or VG_ENOMEM. */
int vg__sandbox_open(vg__sandbox *sb, size_t mem_cap, double timeout,
		     uint64_t instructions, const volatile int *cancel,
		     const char *lib_dir, vg_error *err);
void vg__sandbox_close(vg__sandbox *sb);
vg__sandbox *vg__sandbox_of(lua_State *L);

/* Compile text (never bytecode) named "@path" with the sandbox globals
 * as _ENV and push the function. VG_EPARSE located at path:line. */
int vg__sandbox_load(vg__sandbox *sb, const char *buf, size_t len,
		     const char *path, vg_error *err);

/* lua_pcall with a message handler adding a traceback. On error the
 * stack is restored, err says where (innermost Lua function: file, line)
 * and returns the kill code when the sandbox killed the state, else
 * VG_EPLUGIN. */
int vg__sandbox_call(vg__sandbox *sb, int nargs, int nresults,
		     vg_error *err);

/* Stop the state with `code`: every later Lua instruction raises `msg`,
 * so no pcall can swallow it. Raises now (does not return). */
int vg__sandbox_kill(lua_State *L, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* For C functions exposed to plugins: raise again if killed. */
void vg__sandbox_check(lua_State *L);

/* Replace the table at the top of the stack with a read-only proxy
 * (reads and pairs go through; writes, rawset and setmetatable raise). */
void vg__freeze(lua_State *L);

/* The global proxy (the plugin's _ENV) is pushed. */
void vg__push_env(lua_State *L);

/* For tests/bench/bench_plugin.c only: run `src` (text) in a sandbox
 * with the limits hook armed or not, and return its seconds in *secs.
 * Measures the hook's overhead; 0 or a VG_E* code. */
int vg__sandbox_bench(const char *src, bool hook, double *secs,
		      vg_error *err);

/* ---- the loaded plugin (manifest.c) ---------------------------------- */

struct cJSON;

struct vg_plugin {
	char *path, *name, *description, *schedule;
	uint64_t every;
	char **after;
	size_t nafter;
	vg_indicator *inds; /* declared indicators, in manifest order */
	size_t ninds;
	struct cJSON *config; /* object: key -> default */
	double timeout;
	size_t memory;
	char *source; /* the text that was validated; runs execute it */
	size_t source_len;
	/* copy of the vg_plugin_env */
	char *lib_dir, *cache_dir;
	char **roots;
	size_t nroots;
	size_t fetch_max;
};

/* ---- the run (run.c) and its ctx bindings (ctx_*.c) ------------------ */

struct cJSON;

#define VG__DRY_SAMPLE 5 /* points shown per indicator by a dry run */
#define VG__CTX_MT "vigie.ctx" /* metatable of the ctx object */

/* One run of a plugin: what the bindings of `ctx` share. Lives on the
 * stack of vg_plugin_run; found from the state through sb.user. */
typedef struct vg__run {
	const vg_plugin *p;
	vg_store *s;
	const vg_run_opts *o;
	vg_run_result *res;
	vg__sandbox sb;
	vg_batch *b;
	uint64_t *counts;     /* per declared indicator */
	const char **ind_ptr; /* interned Lua strings of the codes (anchored
				 in the registry): a pointer compare finds
				 the indicator of most puts */
	struct cJSON **samples; /* dry run: per declared indicator */
	uint64_t territories;
	/* caches of ctx:put */
	int last_ind;
	char last_per_s[VG_PERIOD_STRLEN];
	size_t last_per_len;
	vg_period last_per;
	/* checksums of fetched sources */
	vg_sha256 sum;
	unsigned nsources;
	char first_sum[72];
} vg__run;

/* The run of a ctx method: raises again if the sandbox was killed, and
 * checks that argument 1 is the ctx object. */
vg__run *vg__run_get(lua_State *L);
void vg__run_log(vg__run *r, const char *level, const char *msg);

/* Raise a C-side error as a Lua error located at the plugin's line; a
 * sandbox, deadline or cancel error kills the state (pcall cannot keep
 * going after it). */
int vg__raise(lua_State *L, const char *what, const vg_error *e);

/* A period argument: a string, or an integer year. With a run, the last
 * one parsed is cached (ctx:put in a loop). */
vg_period vg__arg_period(lua_State *L, vg__run *r, int idx);

/* Options tables: unknown keys refused (naming the function), booleans
 * checked. */
void vg__check_opts(lua_State *L, int t, const char *fn,
		    const char *const *known);
int vg__opt_bool(lua_State *L, int t, const char *k, int dflt);

/* The one guard: a userdata that owns a C pointer and frees it with
 * free_fn when collected. C code that holds memory across a call that may
 * raise (any Lua allocation: memory cap, deadline) pushes a guard first,
 * hands it the pointer, and frees it itself on the normal path; an error
 * that unwinds leaves the pointer to the collector. Never leaks. */
typedef struct vg__guard {
	void *p;
	void (*free_fn)(void *);
} vg__guard;
vg__guard *vg__guard_push(lua_State *L, void (*free_fn)(void *));
void vg__guard_set(vg__guard *g, void *p);
void vg__guard_done(vg__guard *g); /* free now; idempotent */

/* Row readers (ctx:csv, ctx:xlsx): rows reach Lua in batches of
 * VG__ROWS_PER_BATCH through a small Lua iterator. */
#define VG__ROWS_PER_BATCH 256
void vg__rows_setup(lua_State *L); /* compile the iterator (setup) */
int vg__push_rows_iter(lua_State *L, lua_CFunction batch, int handle);
/* Refuse two header columns of the same name (the header table is at the
 * top of the stack). */
void vg__check_header(lua_State *L, const char *fn, const char *src,
		      size_t n);

/* Sources (ctx_sources.c). */
vg_source *vg__source_push(lua_State *L); /* a new, empty source object */
/* The source at idx: a source object, or a string fetched now. Leaves
 * the source userdata at the top of the stack. */
vg_source *vg__arg_source(lua_State *L, vg__run *r, int idx);
/* The bytes of a source, for readers that need them whole: pushes a
 * guard holding them when they were read from a file (*g, freed by
 * vg__guard_done or the collector). Raises on error. */
const unsigned char *vg__source_bytes(lua_State *L, const vg_source *s,
				      size_t max, size_t *len, const char *fn,
				      vg__guard **g);
size_t vg__fetch_max(const vg_plugin *p);

/* Metatables, created by run.c's setup. */
void vg__ctx_sources_setup(lua_State *L);
void vg__ctx_csv_setup(lua_State *L);
void vg__ctx_zip_setup(lua_State *L);

/* The methods of ctx, by group. */
extern const luaL_Reg vg__ctx_points[];
extern const luaL_Reg vg__ctx_territories[];
extern const luaL_Reg vg__ctx_reads[];
extern const luaL_Reg vg__ctx_sources[];
extern const luaL_Reg vg__ctx_csv[];
extern const luaL_Reg vg__ctx_json[];
extern const luaL_Reg vg__ctx_zip[];

#endif
