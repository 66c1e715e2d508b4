/* The scheduler: when plugin runs happen, where they run, what is recorded.
 *
 * Jobs (one per plugin) fire from a cron expression (vigie/cron.h), an
 * `every` interval, the commit of another job they depend on (`after`),
 * a manual trigger, a retry, or a run missed while the daemon was down.
 * Runs execute on the scheduler's own pool of worker threads, never on the
 * event loop: the run callback may block for minutes. Everything else
 * (timers, state, events, history) happens on the loop thread.
 *
 * Threading contract: every vg_sched_* function must be called on the loop
 * thread. The run callback is called on a worker thread; the event
 * callback on the loop thread, and it may call vg_sched_trigger and the
 * *_json functions but not vg_sched_set, _stop or _free (VG_EBUSY).
 *
 * Rules:
 *  - a job has at most one run queued or running. A cron/every trigger
 *    while it is active is dropped (coalesced); an `after` trigger while it
 *    runs is remembered and runs once more when it ends (its inputs
 *    changed under it); a manual trigger returns the active run's id.
 *  - a run that fails with report.retryable is retried up to max_retries
 *    times, after base * 2^(attempt-1) seconds with "equal jitter" (a
 *    uniform draw in [d/2, d]), d capped at VG_SCHED_RETRY_CAP_S. A
 *    trigger that arrives while a retry waits replaces the retry.
 *  - a run that ends with rc == 0 and report.changed triggers every job
 *    whose `after` lists it.
 *  - missed runs: at the first vg_sched_set, a cron or every job whose
 *    last recorded run started before its latest due time (cron: a fire
 *    time after the last start is <= now; every: last start + every <=
 *    now) runs once, whatever the number of fire times missed. With a
 *    history file, a job that never ran counts as missed (it has no data
 *    yet). Without one, nothing is known and nothing is run.
 *  - every finished run (ok, failed, retrying = failed and retry planned,
 *    canceled) is appended to the history file as one JSON line and
 *    fsync'd, on the loop thread (a few ms per run).
 *
 * Run record (JSON, as in events, `jobs` and the history file):
 *   {"id", "name", "trigger": "cron"|"every"|"after"|"manual"|"missed"|
 *    "retry", "attempt" (1 = first try), "status": "queued"|"running"|
 *    "ok"|"failed"|"retrying"|"canceled", "queued_at", "started_at",
 *    "ended_at" (Unix seconds, from the scheduler's clock; absent if not
 *    reached), "duration_s" (measured on a monotonic clock),
 *    "rows_written", "rows_rejected", "changed", "error", "checksum",
 *    "retry_at" (when status is retrying), "cause" (the job whose commit
 *    triggered an `after` run)} */
#ifndef VIGIE_SCHED_H
#define VIGIE_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "vigie/error.h"

struct cJSON;

/* Longest backoff between two retries, in seconds. */
#define VG_SCHED_RETRY_CAP_S 3600.0
/* Retries when a spec says 0. */
#define VG_SCHED_DEFAULT_RETRIES 3
/* Finished runs kept in memory for `jobs` (the file keeps them all). */
#define VG_SCHED_HISTORY_MEM 256

/* At start-up, a history file of more than twice this many records is
 * rewritten with the last VG_SCHED_HISTORY_KEEP ones (plus each job's
 * latest started run, so missed-run detection survives); `runs` and
 * `failures` then count what the file still holds. */
#define VG_SCHED_HISTORY_KEEP 10000

typedef struct vg_sched vg_sched;

/* One schedulable job (a plugin). Strings are copied by vg_sched_set. */
typedef struct vg_sched_spec {
	const char *name;
	const char *cron;         /* 5-field expression, or NULL */
	uint64_t every_s;         /* interval in seconds, 0: none */
	const char *const *after; /* names of jobs whose commits trigger it */
	size_t nafter;
	unsigned max_retries;     /* 0: VG_SCHED_DEFAULT_RETRIES */
} vg_sched_spec;

/* Filled by the run callback. The scheduler zeroes it and sets
 * retryable = true before each call. */
typedef struct vg_job_report {
	int rc;             /* 0 ok, else a VG_E* code */
	char error[512];    /* message when rc != 0 */
	uint64_t rows_written, rows_rejected;
	bool changed;       /* committed new data: triggers `after` dependents */
	char checksum[80];  /* checksum of the source data, "" if unknown */
	bool retryable;     /* false for errors a retry cannot fix */
} vg_job_report;

/* Runs ON A WORKER THREAD; may block. job_id identifies the run. */
typedef void (*vg_sched_run_fn)(void *ud, const char *name, uint64_t job_id,
				vg_job_report *rep);
/* Called ON THE LOOP THREAD each time a run changes state; `job` is the
 * run record, owned by the scheduler and valid during the call only. */
typedef void (*vg_sched_event_fn)(void *ud, const struct cJSON *job);
/* Called ON THE LOOP THREAD when stop's grace period ends with this run
 * still going: ask it to give up (e.g. interrupt the Lua state). */
typedef void (*vg_sched_cancel_fn)(void *ud, const char *name,
				   uint64_t job_id);

typedef struct vg_sched_opts {
	unsigned workers;         /* worker threads (1..64) = max concurrent runs */
	const char *history_path; /* JSON lines, appended; NULL: not persisted */
	vg_sched_run_fn run;      /* required */
	vg_sched_event_fn event;  /* optional */
	vg_sched_cancel_fn cancel; /* optional */
	void *ud;
	double retry_base_s;      /* first backoff; 0: 30 s */
	int64_t (*now)(void *ud); /* clock in Unix seconds; NULL: the real
				   * clock (with millisecond resolution) */
} vg_sched_opts;

/* Create a scheduler on `loop`, start its worker threads and load the
 * history file if any (a line that is not a valid record, e.g. one cut by
 * a crash, is skipped and counted in plugins_json's "history_bad_lines").
 * Errors: VG_EINVAL (bad options), VG_EIO (history file cannot be opened
 * or read, with the path and reason), VG_ENOMEM. */
int vg_sched_new(uv_loop_t *loop, const vg_sched_opts *o, vg_sched **out,
		 vg_error *err);

/* Replace the whole set of jobs at once. Validates first and changes
 * nothing on error: unique non-empty names; a cron that parses and fires
 * at least once; not both cron and every; every `after` name exists;
 * no dependency cycle (VG_EINVAL, message names it: "a -> b -> a").
 * Jobs whose spec is unchanged keep their timers and state; changed ones
 * are rescheduled (counters, last run and an active run are kept);
 * removed ones are dropped (a queued run is canceled, a running one
 * finishes and is recorded). At the first call, missed runs are queued.
 * Errors: VG_EINVAL, VG_EPARSE (cron), VG_ENOTFOUND (unknown `after`),
 * VG_EBUSY (stopping), VG_ENOMEM. */
int vg_sched_set(vg_sched *s, const vg_sched_spec *specs, size_t n,
		 vg_error *err);

/* Manual trigger: queue a run of `name` now; *job_id gets its id, or the
 * id of the run already queued or running. VG_ENOTFOUND for an unknown
 * name, VG_EBUSY once stop has been called. */
int vg_sched_trigger(vg_sched *s, const char *name, uint64_t *job_id,
		     vg_error *err);

/* Current runs (queued, running) then finished ones, newest first, at
 * most `limit` (0: all kept in memory). Caller frees (cJSON_Delete). NULL
 * only when out of memory. */
struct cJSON *vg_sched_jobs_json(vg_sched *s, size_t limit);

/* Array, one object per job: name, cron, every_s, after, max_retries,
 * state (idle, queued, running, retry_wait), next_fire (Unix s, absent if
 * none), retry_at, last_run (record), runs, failures. Caller frees. */
struct cJSON *vg_sched_plugins_json(vg_sched *s);

/* Object: workers, running, queued, runs_total (finished since start),
 * history_path, history_bad_lines (skipped at load), history_write_errors
 * and history_last_error (appends that failed: the runs still happened).
 * Caller frees. */
struct cJSON *vg_sched_stats_json(vg_sched *s);

/* Stop timers, cancel queued runs and pending retries, refuse new runs,
 * then wait up to grace_s seconds (the loop keeps running) for running
 * jobs; at the deadline, opts.cancel is called for each one still
 * running. done_cb is then called on the loop thread (never from inside
 * this call). VG_EBUSY if already stopping. */
int vg_sched_stop(vg_sched *s, double grace_s, void (*done_cb)(void *ud),
		  void *ud);

/* Join the worker threads (waiting for runs still going), close the
 * handles and free everything once they are closed: the caller must run
 * the loop afterwards (uv_run) before closing it. Call after stop's
 * done_cb, or before any job was set. NULL is a no-op. */
void vg_sched_free(vg_sched *s);

#endif
