/* The scheduler engine (see vigie/sched.h for the contract).
 *
 * Ownership and threads: the loop thread owns every structure here. A run
 * crosses to a worker thread through `handoff` and comes back through
 * `done` (both under `mu`, woken by `cv` and `async`); while a run is on a
 * worker, the worker writes only r->rep and r->duration_s, and the loop
 * reads only the other fields. Dispatch happens on the loop: it hands a run
 * over only when a worker is idle, so a run's start time is the time it
 * really started and `running` never exceeds the pool size.
 *
 * One libuv timer serves all jobs: it is armed for the earliest due time
 * (next fire or retry) and at most a minute ahead, so a wall-clock change
 * is noticed within a minute. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "vigie/common.h"
#include "vigie/cron.h"
#include "vigie/sched.h"

enum run_status { ST_QUEUED, ST_RUNNING, ST_OK, ST_FAILED, ST_RETRYING,
		  ST_CANCELED };
static const char *const STATUS[] = { "queued", "running", "ok", "failed",
				      "retrying", "canceled" };

#define MAX_WORKERS 64
#define TIMER_MAX_MS 60000

typedef struct run {
	uint64_t id;
	char *name;
	const char *trigger; /* static string */
	char *cause;         /* job whose commit triggered it, or NULL */
	unsigned attempt;
	enum run_status status;
	int64_t queued_ms, started_ms, ended_ms, retry_at_ms;
	double duration_s;   /* written by the worker */
	vg_job_report rep;   /* written by the worker */
	struct run *qnext;   /* ready queue, handoff and done lists */
	struct run *lprev, *lnext; /* live (queued or running) runs */
} run;

typedef struct job {
	char *name;
	char *cron_text; /* NULL: no cron */
	vg_cron cron;
	uint64_t every_s;
	char **after;
	size_t nafter;
	unsigned max_retries; /* as given (0: default) */
	int64_t next_fire_ms; /* 0: none */
	int64_t retry_at_ms;  /* 0: no retry waiting */
	unsigned retry_attempt;
	run *active;          /* queued or running run of this job */
	bool rerun;           /* an `after` trigger came while running */
	char *rerun_cause;
	uint64_t runs, failures;
	int64_t last_start_ms; /* 0: never ran */
	cJSON *last;           /* last finished run record, owned */
} job;

/* What the history file says about one job name. */
typedef struct hist_entry {
	char *name;
	int64_t last_start_ms;
	uint64_t runs, failures;
	cJSON *last;
	cJSON *last_started; /* the record that gave last_start_ms */
} hist_entry;

struct vg_sched {
	uv_loop_t *loop;
	vg_sched_opts o;
	char *history_path;
	int history_fd;
	uv_async_t async;
	uv_timer_t timer;
	uv_timer_t stop_timer;
	int open_handles;

	pthread_t threads[MAX_WORKERS];
	unsigned nthreads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	run *handoff, *handoff_tail; /* under mu */
	run *done;                   /* under mu, any order */
	bool quit;                   /* under mu */

	job **jobs;
	size_t njobs;
	bool set_once;
	run *ready, *ready_tail;
	run *live;
	unsigned running;
	uint64_t next_id;
	uint64_t runs_total;
	cJSON *recent; /* finished records, oldest first */
	hist_entry *hist;
	size_t nhist;
	uint64_t history_bad_lines, history_write_errors;
	char history_last_error[256];
	uint64_t rng;

	int in_event; /* > 0 while an event callback runs */
	bool queuing; /* queuing several runs: dispatch once at the end */
	bool stopping, stop_done, freeing;
	void (*done_cb)(void *);
	void *done_ud;
};

/* ---- small helpers ------------------------------------------------- */

static int64_t now_ms(vg_sched *s)
{
	if (s->o.now)
		return s->o.now(s->o.ud) * 1000;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dupstr(const char *p)
{
	return p ? strdup(p) : NULL;
}

static bool streq_null(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static job *find_job(vg_sched *s, const char *name)
{
	for (size_t i = 0; i < s->njobs; i++)
		if (strcmp(s->jobs[i]->name, name) == 0)
			return s->jobs[i];
	return NULL;
}

/* xorshift64*: jitter only, not security. */
static double rand01(vg_sched *s)
{
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return (double)((s->rng * 2685821657736338717ULL) >> 11) /
	       (double)(1ULL << 53);
}

static unsigned max_retries(const job *j)
{
	return j->max_retries ? j->max_retries : VG_SCHED_DEFAULT_RETRIES;
}

/* ---- run records ----------------------------------------------------- */

static void add_time(cJSON *o, const char *k, int64_t ms)
{
	if (ms)
		cJSON_AddNumberToObject(o, k, (double)ms / 1000.0);
}

static cJSON *run_json(const run *r)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "id", (double)r->id);
	cJSON_AddStringToObject(o, "name", r->name);
	cJSON_AddStringToObject(o, "trigger", r->trigger);
	if (r->cause)
		cJSON_AddStringToObject(o, "cause", r->cause);
	cJSON_AddNumberToObject(o, "attempt", r->attempt);
	cJSON_AddStringToObject(o, "status", STATUS[r->status]);
	add_time(o, "queued_at", r->queued_ms);
	add_time(o, "started_at", r->started_ms);
	add_time(o, "ended_at", r->ended_ms);
	if (r->status >= ST_OK && r->status != ST_CANCELED) {
		cJSON_AddNumberToObject(o, "duration_s", r->duration_s);
		cJSON_AddNumberToObject(o, "rows_written",
					(double)r->rep.rows_written);
		cJSON_AddNumberToObject(o, "rows_rejected",
					(double)r->rep.rows_rejected);
		cJSON_AddBoolToObject(o, "changed", r->rep.changed);
		if (r->rep.rc)
			cJSON_AddNumberToObject(o, "rc", r->rep.rc);
		if (r->rep.checksum[0])
			cJSON_AddStringToObject(o, "checksum",
						r->rep.checksum);
	}
	if (r->status == ST_FAILED || r->status == ST_RETRYING ||
	    r->status == ST_CANCELED)
		cJSON_AddStringToObject(o, "error", r->rep.error);
	add_time(o, "retry_at", r->retry_at_ms);
	return o;
}

static void emit(vg_sched *s, const run *r)
{
	if (!s->o.event)
		return;
	cJSON *o = run_json(r);
	if (o) {
		s->in_event++;
		s->o.event(s->o.ud, o);
		s->in_event--;
	}
	cJSON_Delete(o);
}

static void history_append(vg_sched *s, const cJSON *rec)
{
	if (s->history_fd < 0)
		return;
	char *line = cJSON_PrintUnformatted(rec);
	if (!line) {
		s->history_write_errors++;
		snprintf(s->history_last_error, sizeof(s->history_last_error),
			 "%s: out of memory formatting a record",
			 s->history_path);
		return;
	}
	size_t len = strlen(line);
	line[len] = '\n'; /* replaces the NUL; written by length */
	size_t off = 0;
	while (off < len + 1) {
		ssize_t w = write(s->history_fd, line + off, len + 1 - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			s->history_write_errors++;
			snprintf(s->history_last_error,
				 sizeof(s->history_last_error),
				 "%s: append failed: %s", s->history_path,
				 strerror(errno));
			break;
		}
		off += (size_t)w;
	}
	free(line);
	if (off == len + 1 && fsync(s->history_fd) != 0) {
		s->history_write_errors++;
		snprintf(s->history_last_error, sizeof(s->history_last_error),
			 "%s: fsync failed: %s", s->history_path,
			 strerror(errno));
	}
}

/* Record a finished run: history file, memory ring, the job's last run,
 * the event. Frees nothing. */
static void record(vg_sched *s, job *j, const run *r)
{
	cJSON *rec = run_json(r);
	if (!rec)
		return;
	history_append(s, rec);
	if (j) {
		cJSON_Delete(j->last);
		j->last = cJSON_Duplicate(rec, true);
	}
	cJSON_AddItemToArray(s->recent, rec);
	while (cJSON_GetArraySize(s->recent) > VG_SCHED_HISTORY_MEM)
		cJSON_DeleteItemFromArray(s->recent, 0);
	if (s->o.event) {
		s->in_event++;
		s->o.event(s->o.ud, rec);
		s->in_event--;
	}
}

static void run_free(run *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->cause);
	free(r);
}

static void live_unlink(vg_sched *s, run *r)
{
	if (r->lprev)
		r->lprev->lnext = r->lnext;
	else
		s->live = r->lnext;
	if (r->lnext)
		r->lnext->lprev = r->lprev;
	r->lprev = r->lnext = NULL;
}

static void ready_remove(vg_sched *s, run *r)
{
	run **pp = &s->ready, *prev = NULL;
	while (*pp && *pp != r) {
		prev = *pp;
		pp = &(*pp)->qnext;
	}
	if (!*pp)
		return;
	*pp = r->qnext;
	if (s->ready_tail == r)
		s->ready_tail = prev;
	r->qnext = NULL;
}

/* A queued run that will not run: recorded as canceled. */
static void cancel_queued(vg_sched *s, job *j, run *r, const char *why)
{
	ready_remove(s, r);
	live_unlink(s, r);
	r->status = ST_CANCELED;
	r->ended_ms = now_ms(s);
	snprintf(r->rep.error, sizeof(r->rep.error), "%s", why);
	if (j && j->active == r)
		j->active = NULL;
	record(s, j, r);
	run_free(r);
}

/* ---- dispatch and triggers ------------------------------------------- */

/* Does a job j runs `after`, directly or through others, have a run
 * queued or running? `after` has no cycles (refused by vg_sched_set);
 * the depth bound only guards against a bug. */
static bool input_active(vg_sched *s, const job *j, int depth)
{
	for (size_t k = 0; j && k < j->nafter && depth < 16; k++) {
		const job *d = find_job(s, j->after[k]);
		if (d && (d->active || input_active(s, d, depth + 1)))
			return true;
	}
	return false;
}

/* Must r wait? A run starts only once no job it runs `after` (directly
 * or not) is queued or running: at start-up every missed job is queued
 * at once, and a plugin that writes by territory must not run beside the
 * one defining the territories (it would fail, then run again when that
 * commits). */
static bool held(vg_sched *s, const run *r)
{
	return input_active(s, find_job(s, r->name), 0);
}

/* The first queued run free to start, unlinked from the ready queue. */
static run *next_ready(vg_sched *s)
{
	for (run *r = s->ready; r; r = r->qnext)
		if (!held(s, r)) {
			ready_remove(s, r);
			return r;
		}
	return NULL;
}

static void dispatch(vg_sched *s)
{
	run *r;
	while (s->ready && s->running < s->nthreads && !s->freeing &&
	       (r = next_ready(s)) != NULL) {
		r->status = ST_RUNNING;
		r->started_ms = now_ms(s);
		s->running++;
		job *j = find_job(s, r->name);
		if (j && j->active == r)
			j->last_start_ms = r->started_ms;
		pthread_mutex_lock(&s->mu);
		if (s->handoff_tail)
			s->handoff_tail->qnext = r;
		else
			s->handoff = r;
		s->handoff_tail = r;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		emit(s, r);
	}
}

/* Queue a run of j. Returns its id (or the active run's id). */
static int enqueue(vg_sched *s, job *j, const char *trigger,
		   const char *cause, uint64_t *id, vg_error *err)
{
	if (s->stopping)
		return vg_error_set(err, VG_EBUSY,
				    "job '%s': the scheduler is stopping, "
				    "no new runs",
				    j->name);
	if (j->active) {
		if (j->active->status == ST_RUNNING &&
		    strcmp(trigger, "after") == 0) {
			/* Its inputs changed while it ran: once more. */
			j->rerun = true;
			free(j->rerun_cause);
			j->rerun_cause = dupstr(cause);
		}
		if (id)
			*id = j->active->id;
		return 0;
	}
	run *r = calloc(1, sizeof(*r));
	if (!r || !(r->name = strdup(j->name)) ||
	    (cause && !(r->cause = strdup(cause)))) {
		run_free(r);
		return vg_error_set(err, VG_ENOMEM,
				    "job '%s': out of memory queuing a run",
				    j->name);
	}
	r->id = s->next_id++;
	r->trigger = trigger;
	r->attempt = strcmp(trigger, "retry") == 0 ? j->retry_attempt : 1;
	r->status = ST_QUEUED;
	r->queued_ms = now_ms(s);
	/* Any trigger supersedes a retry that was waiting. */
	j->retry_at_ms = 0;
	j->active = r;
	r->lnext = s->live;
	if (s->live)
		s->live->lprev = r;
	s->live = r;
	if (s->ready_tail)
		s->ready_tail->qnext = r;
	else
		s->ready = r;
	s->ready_tail = r;
	if (id)
		*id = r->id;
	emit(s, r);
	if (!s->queuing) /* see vg_sched_set */
		dispatch(s);
	return 0;
}

static void arm(vg_sched *s);

static void trigger_dependents(vg_sched *s, const char *name)
{
	for (size_t i = 0; i < s->njobs; i++) {
		job *d = s->jobs[i];
		for (size_t k = 0; k < d->nafter; k++) {
			if (strcmp(d->after[k], name) == 0) {
				(void)enqueue(s, d, "after", name, NULL, NULL);
				break;
			}
		}
	}
}

static void finish_run(vg_sched *s, run *r)
{
	job *j = find_job(s, r->name);
	if (j && j->active != r)
		j = NULL; /* the job was removed (or replaced) meanwhile */
	s->running--;
	s->runs_total++;
	live_unlink(s, r);
	r->ended_ms = now_ms(s);
	if (j) {
		j->active = NULL;
		j->runs++;
	}
	if (r->rep.rc == 0) {
		r->status = ST_OK;
	} else {
		if (!r->rep.error[0])
			snprintf(r->rep.error, sizeof(r->rep.error),
				 "run failed: %s", vg_strerror(r->rep.rc));
		if (j)
			j->failures++;
		r->status = ST_FAILED;
		if (j && r->rep.retryable && !s->stopping &&
		    r->attempt <= max_retries(j)) {
			double d = s->o.retry_base_s *
				   (double)(1ULL << (r->attempt - 1 < 40
							    ? r->attempt - 1
							    : 40));
			if (d > VG_SCHED_RETRY_CAP_S)
				d = VG_SCHED_RETRY_CAP_S;
			d = d / 2 + rand01(s) * d / 2;
			int64_t ms = (int64_t)(d * 1000.0);
			r->status = ST_RETRYING;
			r->retry_at_ms = r->ended_ms + (ms > 0 ? ms : 1);
			j->retry_at_ms = r->retry_at_ms;
			j->retry_attempt = r->attempt + 1;
		}
	}
	record(s, j, r);
	if (j && !s->stopping) {
		if (r->status == ST_OK && r->rep.changed)
			trigger_dependents(s, j->name);
		if (j->rerun) {
			j->rerun = false;
			char *cause = j->rerun_cause;
			j->rerun_cause = NULL;
			(void)enqueue(s, j, "after", cause, NULL, NULL);
			free(cause);
		}
	}
	run_free(r);
}

/* ---- timers -------------------------------------------------------- */

static int64_t compute_next(vg_sched *s, const job *j, int64_t now)
{
	if (j->cron_text) {
		int64_t t;
		if (vg_cron_next(&j->cron, now / 1000, &t) != 0)
			return 0;
		return t * 1000;
	}
	if (j->every_s) {
		int64_t every = (int64_t)j->every_s * 1000;
		int64_t n = j->last_start_ms ? j->last_start_ms + every
					     : now + every;
		return n > now ? n : now + every;
	}
	return 0;
}

static void on_timer(uv_timer_t *t)
{
	vg_sched *s = t->data;
	int64_t now = now_ms(s);

	if (s->stopping)
		return;
	for (size_t i = 0; i < s->njobs; i++) {
		job *j = s->jobs[i];
		if (j->retry_at_ms && j->retry_at_ms <= now)
			(void)enqueue(s, j, "retry", NULL, NULL, NULL);
		if (j->next_fire_ms && j->next_fire_ms <= now) {
			(void)enqueue(s, j, j->cron_text ? "cron" : "every",
				      NULL, NULL, NULL);
			if (j->cron_text) {
				j->next_fire_ms = compute_next(s, j, now);
			} else {
				int64_t every = (int64_t)j->every_s * 1000;
				j->next_fire_ms += every;
				if (j->next_fire_ms <= now)
					j->next_fire_ms = now + every;
			}
		}
	}
	arm(s);
}

static void arm(vg_sched *s)
{
	int64_t due = 0;
	if (s->stopping)
		return;
	for (size_t i = 0; i < s->njobs; i++) {
		const job *j = s->jobs[i];
		if (j->next_fire_ms && (!due || j->next_fire_ms < due))
			due = j->next_fire_ms;
		if (j->retry_at_ms && (!due || j->retry_at_ms < due))
			due = j->retry_at_ms;
	}
	if (!due) {
		uv_timer_stop(&s->timer);
		return;
	}
	int64_t delay = due - now_ms(s);
	if (delay < 0)
		delay = 0;
	if (delay > TIMER_MAX_MS)
		delay = TIMER_MAX_MS;
	uv_timer_start(&s->timer, on_timer, (uint64_t)delay, 0);
}

/* ---- workers --------------------------------------------------------- */

static void *worker_main(void *arg)
{
	vg_sched *s = arg;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->handoff && !s->quit)
			pthread_cond_wait(&s->cv, &s->mu);
		if (!s->handoff)
			break; /* quit, nothing left to run */
		run *r = s->handoff;
		s->handoff = r->qnext;
		if (!s->handoff)
			s->handoff_tail = NULL;
		r->qnext = NULL;
		pthread_mutex_unlock(&s->mu);

		struct timespec t0, t1;
		memset(&r->rep, 0, sizeof(r->rep));
		r->rep.retryable = true;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		s->o.run(s->o.ud, r->name, r->id, &r->rep);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		r->rep.error[sizeof(r->rep.error) - 1] = '\0';
		r->rep.checksum[sizeof(r->rep.checksum) - 1] = '\0';
		r->duration_s = (double)(t1.tv_sec - t0.tv_sec) +
				(double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

		pthread_mutex_lock(&s->mu);
		r->qnext = s->done;
		s->done = r;
		uv_async_send(&s->async);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void call_done(vg_sched *s)
{
	if (s->stop_done)
		return;
	s->stop_done = true;
	uv_timer_stop(&s->stop_timer);
	if (s->done_cb)
		s->done_cb(s->done_ud);
}

static void drain_done(vg_sched *s)
{
	pthread_mutex_lock(&s->mu);
	run *list = s->done;
	s->done = NULL;
	pthread_mutex_unlock(&s->mu);
	/* The list is newest first: reverse it to record in end order. */
	run *rev = NULL;
	while (list) {
		run *n = list->qnext;
		list->qnext = rev;
		rev = list;
		list = n;
	}
	while (rev) {
		run *n = rev->qnext;
		rev->qnext = NULL;
		finish_run(s, rev);
		rev = n;
	}
}

static void on_async(uv_async_t *a)
{
	vg_sched *s = a->data;
	drain_done(s);
	dispatch(s);
	arm(s);
	if (s->stopping && !s->running && !s->freeing)
		call_done(s);
}

/* ---- history file ---------------------------------------------------- */

static hist_entry *hist_get(vg_sched *s, const char *name, bool create)
{
	for (size_t i = 0; i < s->nhist; i++)
		if (strcmp(s->hist[i].name, name) == 0)
			return &s->hist[i];
	if (!create)
		return NULL;
	hist_entry *n = realloc(s->hist, (s->nhist + 1) * sizeof(*n));
	if (!n)
		return NULL;
	s->hist = n;
	hist_entry *e = &s->hist[s->nhist];
	memset(e, 0, sizeof(*e));
	if (!(e->name = strdup(name)))
		return NULL;
	s->nhist++;
	return e;
}

static int cmp_id(const void *a, const void *b)
{
	double x = cJSON_GetObjectItem(*(cJSON *const *)a, "id")->valuedouble;
	double y = cJSON_GetObjectItem(*(cJSON *const *)b, "id")->valuedouble;
	return (x > y) - (x < y);
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Rewrite the history file with its last VG_SCHED_HISTORY_KEEP lines,
 * preceded by each job's latest started run if it is older (a monthly
 * job's last run must survive, or it would look missed). Written to a
 * temporary file, fsync'd and renamed over: a crash leaves either file
 * whole. A failure only leaves the file long: it is reported in stats. */
static void history_compact(vg_sched *s, char **ring, uint64_t nvalid)
{
	size_t keep = VG_SCHED_HISTORY_KEEP;
	size_t first = (size_t)(nvalid % keep); /* oldest slot of the ring */
	cJSON *oldest = cJSON_Parse(ring[first]);
	double oldest_id = oldest ? cJSON_GetObjectItem(oldest, "id")->valuedouble
				  : 0;
	cJSON_Delete(oldest);
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%.4000s.compact", s->history_path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	bool ok = fd >= 0;
	cJSON **olds = calloc(s->nhist ? s->nhist : 1, sizeof(cJSON *));
	size_t nold = 0;
	ok = ok && olds;
	for (size_t i = 0; ok && i < s->nhist; i++) {
		cJSON *r = s->hist[i].last_started;
		if (r && cJSON_GetObjectItem(r, "id")->valuedouble < oldest_id)
			olds[nold++] = r;
	}
	if (ok)
		qsort(olds, nold, sizeof(*olds), cmp_id);
	for (size_t i = 0; ok && i < nold; i++) {
		char *txt = cJSON_PrintUnformatted(olds[i]);
		ok = txt && write_all(fd, txt, strlen(txt)) &&
		     write_all(fd, "\n", 1);
		free(txt);
	}
	for (size_t i = 0; ok && i < keep; i++) {
		const char *l = ring[(first + i) % keep];
		size_t n = strlen(l);
		ok = write_all(fd, l, n) &&
		     (n && l[n - 1] == '\n' ? true : write_all(fd, "\n", 1));
	}
	free(olds);
	ok = ok && fsync(fd) == 0;
	if (fd >= 0 && close(fd) != 0)
		ok = false;
	ok = ok && rename(tmp, s->history_path) == 0;
	if (!ok) {
		s->history_write_errors++;
		snprintf(s->history_last_error, sizeof(s->history_last_error),
			 "%.200s: compaction failed: %s", s->history_path,
			 strerror(errno));
		unlink(tmp);
	}
}

static int history_load(vg_sched *s, vg_error *err)
{
	FILE *f = fopen(s->history_path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if (!f) {
		if (errno == ENOENT)
			return 0;
		return vg_error_at(err, VG_EIO, s->history_path, 0, 0,
				   "cannot read the run history: %s",
				   strerror(errno));
	}
	/* The last VG_SCHED_HISTORY_KEEP valid lines, for compaction. */
	char **ring = calloc(VG_SCHED_HISTORY_KEEP, sizeof(char *));
	uint64_t nvalid = 0;
	int rc = 0;
	if (!ring) {
		fclose(f);
		return vg_error_set(err, VG_ENOMEM,
				    "%s: out of memory loading the run history",
				    s->history_path);
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		cJSON *rec = cJSON_ParseWithLength(line, (size_t)len);
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(rec, "name");
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec, "id");
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(rec, "status");
		const cJSON *started =
			cJSON_GetObjectItemCaseSensitive(rec, "started_at");
		/* Ranges checked before any double -> integer conversion. */
		if (!cJSON_IsObject(rec) || !cJSON_IsString(name) ||
		    !cJSON_IsNumber(id) || !cJSON_IsString(st) ||
		    !(id->valuedouble >= 1 && id->valuedouble <= 9e15) ||
		    (started && !(cJSON_IsNumber(started) &&
				  started->valuedouble >= 0 &&
				  started->valuedouble <= 1e11))) {
			cJSON_Delete(rec);
			if (len > 1 || line[0] != '\n')
				s->history_bad_lines++;
			continue;
		}
		if (id->valuedouble >= (double)s->next_id)
			s->next_id = (uint64_t)id->valuedouble + 1;
		hist_entry *e = hist_get(s, name->valuestring, true);
		char **slot = &ring[nvalid % VG_SCHED_HISTORY_KEEP];
		free(*slot);
		*slot = strndup(line, (size_t)len);
		nvalid++;
		if (!e || !*slot) {
			cJSON_Delete(rec);
			rc = vg_error_set(err, VG_ENOMEM,
					  "%s: out of memory loading the "
					  "run history",
					  s->history_path);
			break;
		}
		if (strcmp(st->valuestring, "canceled") != 0 &&
		    cJSON_IsNumber(started)) {
			int64_t ms = (int64_t)(started->valuedouble * 1000.0);
			if (ms > e->last_start_ms) {
				e->last_start_ms = ms;
				cJSON_Delete(e->last_started);
				e->last_started = cJSON_Duplicate(rec, true);
			}
			e->runs++;
			if (strcmp(st->valuestring, "ok") != 0)
				e->failures++;
		}
		cJSON_Delete(e->last);
		e->last = cJSON_Duplicate(rec, true);
		cJSON_AddItemToArray(s->recent, rec);
		if (cJSON_GetArraySize(s->recent) > VG_SCHED_HISTORY_MEM)
			cJSON_DeleteItemFromArray(s->recent, 0);
	}
	bool bad = ferror(f);
	free(line);
	fclose(f);
	if (!rc && bad)
		rc = vg_error_at(err, VG_EIO, s->history_path, 0, 0,
				 "error reading the run history");
	if (!rc && nvalid > 2 * (uint64_t)VG_SCHED_HISTORY_KEEP)
		history_compact(s, ring, nvalid);
	for (size_t i = 0; i < VG_SCHED_HISTORY_KEEP; i++)
		free(ring[i]);
	free(ring);
	return rc;
}

/* ---- life cycle ------------------------------------------------------ */

static void job_free(job *j)
{
	if (!j)
		return;
	free(j->name);
	free(j->cron_text);
	for (size_t i = 0; i < j->nafter; i++)
		free(j->after[i]);
	free(j->after);
	free(j->rerun_cause);
	cJSON_Delete(j->last);
	free(j);
}

static void free_all(vg_sched *s)
{
	for (size_t i = 0; i < s->njobs; i++)
		job_free(s->jobs[i]);
	free(s->jobs);
	while (s->live) {
		run *r = s->live;
		live_unlink(s, r);
		run_free(r);
	}
	for (size_t i = 0; i < s->nhist; i++) {
		free(s->hist[i].name);
		cJSON_Delete(s->hist[i].last);
		cJSON_Delete(s->hist[i].last_started);
	}
	free(s->hist);
	cJSON_Delete(s->recent);
	if (s->history_fd >= 0)
		close(s->history_fd);
	free(s->history_path);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

static void join_workers(vg_sched *s)
{
	pthread_mutex_lock(&s->mu);
	s->quit = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	for (unsigned i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	s->nthreads = 0;
}

int vg_sched_new(uv_loop_t *loop, const vg_sched_opts *o, vg_sched **out,
		 vg_error *err)
{
	if (!loop || !o || !out || !o->run)
		return vg_error_set(err, VG_EINVAL,
				    "scheduler: loop, options and a run "
				    "callback are required");
	if (o->workers < 1 || o->workers > MAX_WORKERS)
		return vg_error_set(err, VG_EINVAL,
				    "scheduler: %u workers requested, "
				    "allowed 1..%d",
				    o->workers, MAX_WORKERS);
	if (o->retry_base_s < 0 || o->retry_base_s > VG_SCHED_RETRY_CAP_S)
		return vg_error_set(err, VG_EINVAL,
				    "scheduler: retry base %g s out of range "
				    "0..%g",
				    o->retry_base_s, VG_SCHED_RETRY_CAP_S);
	*out = NULL;
	vg_sched *s = calloc(1, sizeof(*s));
	if (!s)
		return vg_error_set(err, VG_ENOMEM, "scheduler: out of memory");
	s->loop = loop;
	s->o = *o;
	if (s->o.retry_base_s == 0)
		s->o.retry_base_s = 30;
	s->history_fd = -1;
	s->next_id = 1;
	s->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^
		 (uint64_t)(uintptr_t)s;
	if (!s->rng)
		s->rng = 88172645463325252ULL;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->recent = cJSON_CreateArray();
	int rc = 0;
	if (!s->recent) {
		rc = vg_error_set(err, VG_ENOMEM, "scheduler: out of memory");
		goto fail;
	}
	if (o->history_path) {
		s->history_path = strdup(o->history_path);
		if (!s->history_path) {
			rc = vg_error_set(err, VG_ENOMEM,
					  "scheduler: out of memory");
			goto fail;
		}
		s->o.history_path = s->history_path;
		if ((rc = history_load(s, err)))
			goto fail;
		s->history_fd = open(s->history_path,
				     O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC,
				     0644);
		if (s->history_fd < 0) {
			rc = vg_error_at(err, VG_EIO, s->history_path, 0, 0,
					 "cannot open the run history for "
					 "appending: %s",
					 strerror(errno));
			goto fail;
		}
		/* A crash mid-append leaves a cut last line: end it, so the
		 * next record starts on a line of its own. */
		off_t end = lseek(s->history_fd, 0, SEEK_END);
		char last = '\n';
		if (end > 0 && pread(s->history_fd, &last, 1, end - 1) == 1 &&
		    last != '\n' && write(s->history_fd, "\n", 1) != 1) {
			rc = vg_error_at(err, VG_EIO, s->history_path, 0, 0,
					 "cannot repair the cut last line of "
					 "the run history: %s",
					 strerror(errno));
			goto fail;
		}
	}
	for (unsigned i = 0; i < o->workers; i++) {
		int e = pthread_create(&s->threads[i], NULL, worker_main, s);
		if (e) {
			join_workers(s);
			rc = vg_error_set(err, VG_ENOMEM,
					  "scheduler: cannot start worker "
					  "thread %u of %u: %s",
					  i + 1, o->workers, strerror(e));
			goto fail;
		}
		s->nthreads++;
	}
	/* Handles last: nothing above can fail after they exist. */
	uv_async_init(loop, &s->async, on_async);
	uv_timer_init(loop, &s->timer);
	uv_timer_init(loop, &s->stop_timer);
	s->async.data = s->timer.data = s->stop_timer.data = s;
	*out = s;
	return 0;
fail:
	free_all(s);
	return rc;
}

/* ---- vg_sched_set ---------------------------------------------------- */

static int spec_index(const vg_sched_spec *specs, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(specs[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Depth-first search along "X's commit triggers Y" edges; on a back edge,
 * the cycle is the stack from Y's position. */
static int find_cycle(const vg_sched_spec *specs, size_t n, size_t at,
		      char *color, int *stack, size_t depth, vg_error *err)
{
	color[at] = 1;
	stack[depth] = (int)at;
	for (size_t y = 0; y < n; y++) {
		bool edge = false;
		for (size_t k = 0; k < specs[y].nafter; k++)
			if (strcmp(specs[y].after[k], specs[at].name) == 0)
				edge = true;
		if (!edge)
			continue;
		if (color[y] == 1) {
			char buf[400] = "";
			size_t from = 0;
			while ((size_t)stack[from] != y)
				from++;
			for (size_t k = from; k <= depth; k++) {
				strncat(buf, specs[stack[k]].name,
					sizeof(buf) - strlen(buf) - 1);
				strncat(buf, " -> ",
					sizeof(buf) - strlen(buf) - 1);
			}
			strncat(buf, specs[y].name,
				sizeof(buf) - strlen(buf) - 1);
			return vg_error_set(err, VG_EINVAL,
					    "dependency cycle in `after`: %s "
					    "(each job runs after the one "
					    "before it)",
					    buf);
		}
		if (color[y] == 0) {
			int rc = find_cycle(specs, n, y, color, stack,
					    depth + 1, err);
			if (rc)
				return rc;
		}
	}
	color[at] = 2;
	return 0;
}

static int validate(vg_sched *s, const vg_sched_spec *specs, size_t n,
		    vg_cron *crons, vg_error *err)
{
	int64_t now = now_ms(s) / 1000;
	for (size_t i = 0; i < n; i++) {
		const vg_sched_spec *p = &specs[i];
		if (!p->name || !p->name[0])
			return vg_error_set(err, VG_EINVAL,
					    "job #%zu has no name", i + 1);
		if (spec_index(specs, i, p->name) >= 0)
			return vg_error_set(err, VG_EINVAL,
					    "job '%s' is defined twice",
					    p->name);
		if (p->cron && p->every_s)
			return vg_error_set(err, VG_EINVAL,
					    "job '%s': give a cron schedule "
					    "or an interval, not both",
					    p->name);
		if (p->every_s > 366ULL * 86400)
			return vg_error_set(err, VG_ERANGE,
					    "job '%s': interval of %llu s is "
					    "longer than 366 days",
					    p->name,
					    (unsigned long long)p->every_s);
		if (p->cron) {
			int64_t t;
			int rc = vg_cron_parse(p->cron, &crons[i], err);
			if (rc) {
				if (err) {
					char m[sizeof(err->msg)];
					size_t k = (size_t)snprintf(
						m, 128, "job '%.100s': ",
						p->name);
					size_t rest = sizeof(m) - k - 1;
					memcpy(m + k, err->msg, rest);
					m[sizeof(m) - 1] = '\0';
					memcpy(err->msg, m, sizeof(m));
				}
				return rc;
			}
			if (vg_cron_next(&crons[i], now, &t) != 0)
				return vg_error_set(err, VG_EINVAL,
						    "job '%s': cron \"%s\" "
						    "never fires",
						    p->name, p->cron);
		}
		if (p->nafter && !p->after)
			return vg_error_set(err, VG_EINVAL,
					    "job '%s': %zu `after` names but "
					    "no array",
					    p->name, p->nafter);
		for (size_t k = 0; k < p->nafter; k++) {
			if (!p->after[k] ||
			    spec_index(specs, n, p->after[k]) < 0)
				return vg_error_set(err, VG_ENOTFOUND,
						    "job '%s': `after` names "
						    "'%s', which is not a "
						    "known job",
						    p->name,
						    p->after[k] ? p->after[k]
								: "(null)");
		}
	}
	char *color = calloc(n ? n : 1, 1);
	int *stack = calloc(n ? n : 1, sizeof(int));
	int rc = 0;
	if (!color || !stack)
		rc = vg_error_set(err, VG_ENOMEM, "scheduler: out of memory");
	for (size_t i = 0; !rc && i < n; i++)
		if (!color[i])
			rc = find_cycle(specs, n, i, color, stack, 0, err);
	free(color);
	free(stack);
	return rc;
}

static bool same_spec(const job *j, const vg_sched_spec *p)
{
	if (!streq_null(j->cron_text, p->cron) || j->every_s != p->every_s ||
	    j->max_retries != p->max_retries || j->nafter != p->nafter)
		return false;
	for (size_t k = 0; k < p->nafter; k++)
		if (strcmp(j->after[k], p->after[k]) != 0)
			return false;
	return true;
}

/* Copy the spec's fields into j (which keeps its state). */
static int apply_spec(job *j, const vg_sched_spec *p, const vg_cron *c)
{
	char *cron = NULL;
	char **after = NULL;
	if (p->cron && !(cron = strdup(p->cron)))
		return VG_ENOMEM;
	if (p->nafter && !(after = calloc(p->nafter, sizeof(char *)))) {
		free(cron);
		return VG_ENOMEM;
	}
	for (size_t k = 0; k < p->nafter; k++) {
		if (!(after[k] = strdup(p->after[k]))) {
			for (size_t m = 0; m < k; m++)
				free(after[m]);
			free(after);
			free(cron);
			return VG_ENOMEM;
		}
	}
	free(j->cron_text);
	for (size_t k = 0; k < j->nafter; k++)
		free(j->after[k]);
	free(j->after);
	j->cron_text = cron;
	if (c)
		j->cron = *c;
	j->every_s = p->every_s;
	j->after = after;
	j->nafter = p->nafter;
	j->max_retries = p->max_retries;
	return 0;
}

static bool is_missed(vg_sched *s, const job *j, int64_t now)
{
	if (!s->history_path || (!j->cron_text && !j->every_s))
		return false;
	if (!j->last_start_ms)
		return true; /* never ran: no data yet */
	if (j->cron_text) {
		int64_t t;
		return vg_cron_next(&j->cron, j->last_start_ms / 1000, &t) ==
			       0 &&
		       t * 1000 <= now;
	}
	return j->last_start_ms + (int64_t)j->every_s * 1000 <= now;
}

int vg_sched_set(vg_sched *s, const vg_sched_spec *specs, size_t n,
		 vg_error *err)
{
	if (!s || (n && !specs))
		return vg_error_set(err, VG_EINVAL,
				    "scheduler: no scheduler or no specs");
	if (s->stopping)
		return vg_error_set(err, VG_EBUSY,
				    "scheduler: stopping, jobs cannot be "
				    "changed");
	if (s->in_event)
		return vg_error_set(err, VG_EBUSY,
				    "scheduler: jobs cannot be changed from "
				    "inside an event callback");
	vg_cron *crons = calloc(n ? n : 1, sizeof(*crons));
	job **jobs = calloc(n ? n : 1, sizeof(*jobs));
	bool *changed = calloc(n ? n : 1, sizeof(bool));
	int rc = 0;
	if (!crons || !jobs || !changed) {
		rc = vg_error_set(err, VG_ENOMEM, "scheduler: out of memory");
		goto out;
	}
	if ((rc = validate(s, specs, n, crons, err)))
		goto out;

	/* Build the new jobs without touching the old ones, so that an
	 * allocation failure leaves everything as it was. */
	for (size_t i = 0; i < n; i++) {
		job *old = find_job(s, specs[i].name);
		if (old && same_spec(old, &specs[i]))
			continue;
		job *j = calloc(1, sizeof(*j));
		if (!j || !(j->name = strdup(specs[i].name)) ||
		    apply_spec(j, &specs[i], specs[i].cron ? &crons[i] : NULL)) {
			job_free(j);
			rc = vg_error_set(err, VG_ENOMEM,
					  "scheduler: out of memory");
			goto out;
		}
		jobs[i] = j;
		changed[i] = true;
	}

	/* Commit: nothing below fails. */
	int64_t now = now_ms(s);
	for (size_t i = 0; i < n; i++) {
		job *old = find_job(s, specs[i].name);
		if (!changed[i]) {
			jobs[i] = old;
			continue;
		}
		job *j = jobs[i];
		if (old) {
			/* Changed spec: keep the state, new schedule. */
			j->active = old->active;
			j->rerun = old->rerun;
			j->rerun_cause = old->rerun_cause;
			old->rerun_cause = NULL;
			j->retry_at_ms = old->retry_at_ms;
			j->retry_attempt = old->retry_attempt;
			j->runs = old->runs;
			j->failures = old->failures;
			j->last_start_ms = old->last_start_ms;
			j->last = old->last;
			old->last = NULL;
			old->active = NULL;
		} else {
			hist_entry *h = hist_get(s, j->name, false);
			if (h) {
				j->runs = h->runs;
				j->failures = h->failures;
				j->last_start_ms = h->last_start_ms;
				j->last = h->last;
				h->last = NULL;
			}
		}
		j->next_fire_ms = compute_next(s, j, now);
	}
	/* Jobs that disappear: cancel what is queued, let runs finish. */
	for (size_t i = 0; i < s->njobs; i++) {
		job *old = s->jobs[i];
		int keep = spec_index(specs, n, old->name);
		if (keep >= 0 && jobs[keep] == old)
			continue;
		if (keep < 0) {
			if (old->active && old->active->status == ST_QUEUED)
				cancel_queued(s, old, old->active,
					      "job removed before it ran");
			/* A running one finishes as an orphan: recorded,
			 * no retry, no dependents. */
		}
		job_free(old);
	}
	free(s->jobs);
	s->jobs = jobs;
	s->njobs = n;
	jobs = NULL;

	if (!s->set_once) {
		s->set_once = true;
		/* Queue every missed job before starting any, so that `held`
		 * sees all of them: the jobs' order must not decide whether a
		 * dependent runs beside its input. */
		s->queuing = true;
		for (size_t i = 0; i < n; i++) {
			job *j = s->jobs[i];
			if (is_missed(s, j, now)) {
				(void)enqueue(s, j, "missed", NULL, NULL, NULL);
				if (j->every_s)
					j->next_fire_ms =
						now + (int64_t)j->every_s * 1000;
			}
		}
		s->queuing = false;
		dispatch(s);
	}
	arm(s);
out:
	free(crons);
	free(jobs);
	free(changed);
	return rc;
}

int vg_sched_trigger(vg_sched *s, const char *name, uint64_t *job_id,
		     vg_error *err)
{
	if (!s || !name)
		return vg_error_set(err, VG_EINVAL,
				    "trigger: no scheduler or no name");
	job *j = find_job(s, name);
	if (!j)
		return vg_error_set(err, VG_ENOTFOUND,
				    "trigger: no job named '%s'", name);
	uint64_t id = 0;
	int rc = enqueue(s, j, "manual", NULL, &id, err);
	if (!rc && job_id)
		*job_id = id;
	arm(s);
	return rc;
}

/* ---- introspection ---------------------------------------------------- */

cJSON *vg_sched_jobs_json(vg_sched *s, size_t limit)
{
	cJSON *arr = cJSON_CreateArray();
	size_t count = 0;
	if (!arr || !s)
		return arr;
	/* Live runs are pushed at the head of `live`: newest first. */
	for (run *r = s->live; r && (!limit || count < limit); r = r->lnext) {
		cJSON_AddItemToArray(arr, run_json(r));
		count++;
	}
	for (int i = cJSON_GetArraySize(s->recent) - 1;
	     i >= 0 && (!limit || count < limit); i--) {
		cJSON_AddItemToArray(
			arr,
			cJSON_Duplicate(cJSON_GetArrayItem(s->recent, i), true));
		count++;
	}
	return arr;
}

cJSON *vg_sched_plugins_json(vg_sched *s)
{
	cJSON *arr = cJSON_CreateArray();
	if (!arr || !s)
		return arr;
	for (size_t i = 0; i < s->njobs; i++) {
		const job *j = s->jobs[i];
		cJSON *o = cJSON_CreateObject();
		if (!o)
			break;
		cJSON_AddStringToObject(o, "name", j->name);
		if (j->cron_text)
			cJSON_AddStringToObject(o, "cron", j->cron_text);
		if (j->every_s)
			cJSON_AddNumberToObject(o, "every_s",
						(double)j->every_s);
		cJSON *after = cJSON_AddArrayToObject(o, "after");
		for (size_t k = 0; k < j->nafter; k++)
			cJSON_AddItemToArray(after,
					     cJSON_CreateString(j->after[k]));
		cJSON_AddNumberToObject(o, "max_retries", max_retries(j));
		const char *state = "idle";
		if (j->active)
			state = j->active->status == ST_QUEUED ? "queued"
							       : "running";
		else if (j->retry_at_ms)
			state = "retry_wait";
		cJSON_AddStringToObject(o, "state", state);
		if (j->active)
			cJSON_AddNumberToObject(o, "job_id",
						(double)j->active->id);
		add_time(o, "next_fire", j->next_fire_ms);
		add_time(o, "retry_at", j->retry_at_ms);
		if (j->last)
			cJSON_AddItemToObject(o, "last_run",
					      cJSON_Duplicate(j->last, true));
		cJSON_AddNumberToObject(o, "runs", (double)j->runs);
		cJSON_AddNumberToObject(o, "failures", (double)j->failures);
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

cJSON *vg_sched_stats_json(vg_sched *s)
{
	cJSON *o = cJSON_CreateObject();
	if (!o || !s)
		return o;
	unsigned queued = 0;
	for (run *r = s->ready; r; r = r->qnext)
		queued++;
	cJSON_AddNumberToObject(o, "workers", s->nthreads);
	cJSON_AddNumberToObject(o, "running", s->running);
	cJSON_AddNumberToObject(o, "queued", queued);
	cJSON_AddNumberToObject(o, "runs_total", (double)s->runs_total);
	if (s->history_path)
		cJSON_AddStringToObject(o, "history_path", s->history_path);
	cJSON_AddNumberToObject(o, "history_bad_lines",
				(double)s->history_bad_lines);
	cJSON_AddNumberToObject(o, "history_write_errors",
				(double)s->history_write_errors);
	if (s->history_last_error[0])
		cJSON_AddStringToObject(o, "history_last_error",
					s->history_last_error);
	return o;
}

/* ---- stop and free ---------------------------------------------------- */

static void on_stop_timer(uv_timer_t *t)
{
	vg_sched *s = t->data;
	if (s->running && s->o.cancel) {
		for (run *r = s->live; r; r = r->lnext)
			if (r->status == ST_RUNNING)
				s->o.cancel(s->o.ud, r->name, r->id);
	}
	call_done(s);
}

/* Cancel everything that has not started. */
static void quiesce(vg_sched *s)
{
	s->stopping = true;
	uv_timer_stop(&s->timer);
	while (s->ready) {
		run *r = s->ready;
		job *j = find_job(s, r->name);
		cancel_queued(s, j && j->active == r ? j : NULL, r,
			      "canceled: the scheduler stopped");
	}
	for (size_t i = 0; i < s->njobs; i++) {
		s->jobs[i]->retry_at_ms = 0;
		s->jobs[i]->next_fire_ms = 0;
		s->jobs[i]->rerun = false;
	}
}

int vg_sched_stop(vg_sched *s, double grace_s, void (*done_cb)(void *ud),
		  void *ud)
{
	if (!s)
		return VG_EINVAL;
	if (s->stopping || s->in_event)
		return VG_EBUSY;
	quiesce(s);
	s->done_cb = done_cb;
	s->done_ud = ud;
	double ms = grace_s > 0 ? grace_s * 1000.0 : 0;
	if (ms > 86400e3)
		ms = 86400e3;
	/* With nothing running, done_cb still comes from the loop. */
	uv_timer_start(&s->stop_timer, on_stop_timer,
		       s->running ? (uint64_t)ms : 0, 0);
	return 0;
}

static void on_close(uv_handle_t *h)
{
	vg_sched *s = h->data;
	if (--s->open_handles == 0)
		free_all(s);
}

void vg_sched_free(vg_sched *s)
{
	if (!s || VG_FAILS_ASSERT(!s->in_event))
		return;
	if (!s->stopping)
		quiesce(s);
	s->stop_done = true; /* done_cb is not called from here */
	join_workers(s);
	/* Runs that ended after the grace period: record them. */
	drain_done(s);
	s->freeing = true;
	s->open_handles = 3;
	uv_close((uv_handle_t *)&s->async, on_close);
	uv_close((uv_handle_t *)&s->timer, on_close);
	uv_close((uv_handle_t *)&s->stop_timer, on_close);
}
