/* Lua plugins: load a plugin file, validate its manifest, run it in a
 * sandbox and commit what it wrote in one transaction.
 *
 * A plugin is one Lua 5.4 file returning a table (the manifest, see
 * docs/plugin-api.md). Loading runs the file once in a throwaway sandbox
 * to read and check the manifest; the source text is kept, so a run always
 * executes the text that was validated. Every run gets a fresh sandboxed
 * state with a memory cap, a wall-clock deadline and an instruction budget;
 * a plugin cannot catch the error that stops it (pcall included).
 *
 * All points a run writes (ctx:put) are buffered and committed in one LMDB
 * transaction when `run` returns; an error, a timeout, a memory overrun or
 * a cancel commits nothing. */
#ifndef VIGIE_PLUGIN_H
#define VIGIE_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigie/error.h"
#include "vigie/store.h"

struct cJSON;

/* Defaults for the manifest's `timeout` and `memory`, and for the run
 * options' instruction budget. */
#define VG_PLUGIN_TIMEOUT_DEFAULT 600.0                 /* seconds */
#define VG_PLUGIN_MEMORY_DEFAULT ((size_t)256 << 20)    /* bytes */
#define VG_PLUGIN_INSTRUCTIONS_DEFAULT 200000000000ULL /* Lua VM instr. */
#define VG_PLUGIN_FETCH_MAX_DEFAULT ((size_t)512 << 20) /* bytes */

typedef struct vg_plugin vg_plugin; /* a loaded, validated plugin file */

typedef struct vg_plugin_env {
	const char *lib_dir;   /* plugins/lib: the only place `require` reads;
				  NULL: require always fails */
	const char *cache_dir; /* download cache (in the data directory);
				  NULL: no cache */
	const char *const *roots; /* local directories ctx:fetch may read */
	size_t nroots;
	size_t fetch_max; /* max bytes of one fetched source; 0: default */
} vg_plugin_env;

/* Load `path` and validate its manifest (in a throwaway sandbox limited
 * to 5 s and 64 MiB). `env` is copied (strings included) and used by every
 * run. On success *out owns the plugin (vg_plugin_free). Errors:
 * VG_ENOTFOUND/VG_EIO (file), VG_EPARSE (Lua syntax, located file:line),
 * VG_EPLUGIN (the file raised an error or the manifest is wrong: the
 * message names the manifest key, e.g. "indicators.population.aggregate"),
 * VG_ETIMEOUT / VG_ENOMEM (top-level code exceeded its limits). */
int vg_plugin_load(const char *path, const vg_plugin_env *env,
		   vg_plugin **out, vg_error *err);
void vg_plugin_free(vg_plugin *p); /* safe on NULL */

const char *vg_plugin_name(const vg_plugin *p);
const char *vg_plugin_path(const vg_plugin *p);
const char *vg_plugin_schedule(const vg_plugin *p); /* 5-field cron, NULL */
uint64_t vg_plugin_every(const vg_plugin *p); /* seconds, 0 when none */
size_t vg_plugin_after_count(const vg_plugin *p);
const char *vg_plugin_after(const vg_plugin *p, size_t i); /* NULL if i out
							      of range */
double vg_plugin_timeout(const vg_plugin *p); /* seconds */
size_t vg_plugin_memory(const vg_plugin *p);  /* bytes */

/* Manifest summary: name, description, schedule or every, after,
 * indicators (as vg_indicator_to_json), config defaults, timeout
 * (seconds), memory (bytes). New object owned by the caller; NULL on
 * out of memory. */
struct cJSON *vg_plugin_to_json(const vg_plugin *p);

typedef void (*vg_plugin_progress_fn)(void *ud, uint64_t done,
				      uint64_t total);
typedef void (*vg_plugin_log_fn)(void *ud, const char *level,
				 const char *msg);

typedef struct vg_run_opts {
	bool dry_run; /* run fully, commit nothing, fill result->dry */
	/* Overrides of the manifest config defaults: an object whose keys
	 * must be declared in the manifest, with the default's type (a
	 * string is accepted for a number or boolean default when it parses
	 * as one). May be NULL. */
	const struct cJSON *config;
	vg_plugin_progress_fn progress; /* may be NULL */
	vg_plugin_log_fn log;           /* may be NULL: logs are dropped */
	void *ud;                       /* passed to progress and log */
	/* When it becomes non-zero the run stops with VG_ECANCELED and
	 * nothing is written. May be NULL. */
	const volatile int *cancel;
	/* Lua VM instruction budget; 0: VG_PLUGIN_INSTRUCTIONS_DEFAULT. */
	uint64_t max_instructions;
	/* Publication time of the vintage (Unix s); 0: now. */
	int64_t time;
} vg_run_opts;

typedef struct vg_run_result {
	uint64_t rows_written;  /* points accepted by ctx:put */
	uint64_t rows_rejected; /* rows the plugin reported with ctx:reject */
	vg_commit_info commit;  /* vintage 0 when nothing changed */
	char checksum[80];      /* "sha256:..." of the fetched sources ("" if
				   none); one source: its own checksum */
	double seconds;
	uint64_t instructions; /* approximate, in units of the hook period */
	size_t memory_peak;    /* bytes of the Lua heap */
	/* Dry run only: {"indicators": {code: {"points": n, "sample":
	 * [{territory, period, value, status}...]}}, "territories": n,
	 * "rows_written", "rows_rejected", "checksum"}. Owned; freed by
	 * vg_run_result_clear. */
	struct cJSON *dry;
} vg_run_result;

/* Run one plugin on the calling thread. Thread-safe across different
 * plugins and runs (each run has its own Lua state). `s` must be open
 * read-write (a dry run needs it too: points are validated against it,
 * then dropped). `o` may be NULL. `res` is always reset first; on error
 * it still holds the counts and time up to the failure.
 *
 * Errors (nothing is written in every case): VG_EPLUGIN (the plugin
 * raised an error: err->where is the plugin file and err->line the line,
 * err->msg the message and a traceback), VG_ETIMEOUT (deadline or
 * instruction budget), VG_ENOMEM (memory cap), VG_ECANCELED, VG_ESANDBOX
 * (a sandbox rule was broken, e.g. a read outside the roots), or the error
 * of committing. */
int vg_plugin_run(const vg_plugin *p, vg_store *s, const vg_run_opts *o,
		  vg_run_result *res, vg_error *err);
void vg_run_result_clear(vg_run_result *res); /* frees dry; safe on NULL */

#endif
