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

#include "vigie/error.h"
#include "vigie/plugin.h"
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

/* ---- fetched sources (fetch.c) ---------------------------------------- */

/* Where the bytes of a source are: a local file (read in place) or memory
 * owned by the source. */
typedef struct vg__source {
	char *name;          /* URL or path, for messages */
	char *path;          /* local file, or NULL */
	unsigned char *data; /* owned, when path is NULL */
	size_t len;
	char checksum[72];   /* "sha256:..." */
} vg__source;

/* Resolve and fetch `what` (http(s) URL, file:// URL, absolute path or a
 * path relative to a root). Local files must lie under one of the roots
 * (after resolving symlinks): else VG_ESANDBOX. Larger than max:
 * VG_ETOOBIG. HTTP errors, timeouts (deadline, CLOCK_MONOTONIC) and cancel
 * are VG_EIO/VG_ETIMEOUT/VG_ECANCELED. */
int vg__fetch(const vg_plugin *p, const char *what, double deadline,
	      const volatile int *cancel, vg__source *out, vg_error *err);
void vg__source_clear(vg__source *s);
/* The whole content (for JSON, xlsx, zip): memory sources return their
 * buffer, files are read (at most max bytes). *data owned by the caller
 * when *owned is set. */
int vg__source_bytes(const vg__source *s, size_t max, unsigned char **data,
		     size_t *len, bool *owned, vg_error *err);

/* ---- zip and xlsx (xlsx.c) -------------------------------------------- */

/* Names of the members of a zip archive: calls cb for each. */
int vg__zip_list(const unsigned char *data, size_t len, const char *name,
		 void (*cb)(void *ud, const char *member), void *ud,
		 vg_error *err);
/* One member's bytes (malloc'd, caller frees), at most max bytes. */
int vg__zip_read(const unsigned char *data, size_t len, const char *name,
		 const char *member, size_t max, unsigned char **out,
		 size_t *outlen, vg_error *err);

/* A parsed worksheet: rows of cells as text (shared strings resolved,
 * numbers as written in the file, booleans "TRUE"/"FALSE"); empty cells
 * are NULL. */
typedef struct vg__xlsx_row {
	long line; /* the sheet's 1-based row number */
	size_t ncells;
	char **cells;
} vg__xlsx_row;
typedef struct vg__xlsx_sheet {
	size_t nrows;
	vg__xlsx_row *rows;
} vg__xlsx_sheet;

/* Read sheet `sheet` (its name, or "#3" for the third) of a workbook.
 * VG_ENOTFOUND names the sheets that exist. */
int vg__xlsx_read(const unsigned char *data, size_t len, const char *name,
		  const char *sheet, size_t max, vg__xlsx_sheet *out,
		  vg_error *err);
void vg__xlsx_free(vg__xlsx_sheet *s);

#endif
