/* The daemon's plugin side: loads the plugin directory, schedules the
 * runs (core/sched), runs them (core/lua) on worker threads, and turns
 * their progress and commits into events for the server's subscribers.
 * It provides the `plugins`, `jobs`, `run` and `reload` operations to the
 * API through vg_api_hooks. All functions run on the loop's thread. */
#ifndef VIGIE_DAEMON_H
#define VIGIE_DAEMON_H

#include <uv.h>

#include "vigie/api.h"
#include "vigie/server.h"
#include "vigie/store.h"

typedef struct vg_daemon vg_daemon;

/* `plugins_dir` may not exist (then no plugin is loaded, said in the
 * log). Plugins may read local files under the plugin directory, the
 * data directory and `roots` (copied). `workers`: plugin runs at once. */
int vg_daemon_new(uv_loop_t *loop, vg_store *store, const char *data_dir,
		  const char *plugins_dir, const char *const *roots,
		  size_t nroots, unsigned workers, vg_daemon **out,
		  vg_error *err);
/* The hooks to give the server (stats, plugins, jobs, run, reload). */
const vg_api_hooks *vg_daemon_hooks(vg_daemon *d);
/* Where job events go (subscribers). */
void vg_daemon_set_server(vg_daemon *d, vg_server *srv);
/* Arm the schedules (and the missed runs). */
void vg_daemon_start(vg_daemon *d);
/* Reload changed plugins; fills msg with a summary. Returns 0 or an
 * error (the previous plugins stay). */
int vg_daemon_reload(vg_daemon *d, char *msg, size_t n);
/* Stop scheduling, wait for running jobs up to grace_s, then done(ud). */
void vg_daemon_stop(vg_daemon *d, double grace_s, void (*done)(void *ud),
		    void *ud);
void vg_daemon_free(vg_daemon *d);

#endif
