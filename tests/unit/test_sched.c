/* Tests for the scheduler engine (core/sched/sched.c): a real libuv loop,
 * the scheduler's real worker threads, C callbacks as jobs. Time is driven
 * by triggers and an injected clock where possible; the few tests that
 * need real time use intervals of a second or less. Every test ends by
 * closing the loop, which fails if a handle leaked. */
#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vigie/sched.h"

static vg_error E;

#define OK(call)                                                          \
	do {                                                              \
		int rc_ = (call);                                         \
		cr_assert_eq(rc_, 0, "%s -> %d (%s)", #call, rc_, E.msg); \
	} while (0)

/* How a job behaves when it runs. */
typedef struct behaviour {
	const char *name;
	int sleep_ms;
	atomic_int fail_times; /* fail this many times, then succeed */
	bool retryable;
	bool changed;
	bool block;            /* wait until ctx.release (or canceled) */
	uint64_t rows;
} behaviour;

typedef struct ctx {
	uv_loop_t loop;
	vg_sched *s;
	char dir[64];
	char hist[128];
	behaviour beh[8];
	int nbeh;
	atomic_int running, max_running, calls;
	atomic_bool release, canceled;
	int64_t fake_now; /* 0: real clock */
	cJSON *events;    /* finished records, in order (loop thread) */
	int nevents_all;
	bool stopped;
	bool set_in_event; /* event_cb tries vg_sched_set, stores the rc */
	int set_in_event_rc;
	bool (*pred)(struct ctx *);
	bool pred_ok;
	uint64_t deadline;
} ctx;

static behaviour *beh_of(ctx *c, const char *name)
{
	for (int i = 0; i < c->nbeh; i++)
		if (strcmp(c->beh[i].name, name) == 0)
			return &c->beh[i];
	return NULL;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void run_cb(void *ud, const char *name, uint64_t id, vg_job_report *rep)
{
	ctx *c = ud;
	behaviour *b = beh_of(c, name);
	int now = atomic_fetch_add(&c->running, 1) + 1;
	int m = atomic_load(&c->max_running);
	while (now > m && !atomic_compare_exchange_weak(&c->max_running, &m, now))
		;
	atomic_fetch_add(&c->calls, 1);
	if (b && b->sleep_ms)
		sleep_ms(b->sleep_ms);
	if (b && b->block)
		while (!atomic_load(&c->release) && !atomic_load(&c->canceled))
			sleep_ms(2);
	if (b && atomic_load(&b->fail_times) > 0) {
		atomic_fetch_sub(&b->fail_times, 1);
		rep->rc = VG_EIO;
		rep->retryable = b->retryable;
		snprintf(rep->error, sizeof(rep->error), "%s: source down", name);
	} else {
		rep->rows_written = b ? b->rows : 0;
		rep->changed = b ? b->changed : false;
		snprintf(rep->checksum, sizeof(rep->checksum), "sha256:%llu",
			 (unsigned long long)id);
	}
	atomic_fetch_sub(&c->running, 1);
}

static void event_cb(void *ud, const cJSON *job)
{
	ctx *c = ud;
	const cJSON *st = cJSON_GetObjectItem(job, "status");
	cr_assert(cJSON_IsString(st));
	c->nevents_all++;
	if (c->set_in_event) {
		vg_error e2;
		c->set_in_event_rc = vg_sched_set(c->s, NULL, 0, &e2);
		c->set_in_event = false;
	}
	if (strcmp(st->valuestring, "queued") != 0 &&
	    strcmp(st->valuestring, "running") != 0)
		cJSON_AddItemToArray(c->events, cJSON_Duplicate(job, true));
}

static void cancel_cb(void *ud, const char *name, uint64_t id)
{
	ctx *c = ud;
	atomic_store(&c->canceled, true);
}

static int64_t fake_clock(void *ud)
{
	return ((ctx *)ud)->fake_now;
}

static void add_beh(ctx *c, const char *name, int sleep, int fails,
		    bool retryable, bool changed)
{
	behaviour *b = &c->beh[c->nbeh++];
	b->name = name;
	b->sleep_ms = sleep;
	atomic_store(&b->fail_times, fails);
	b->retryable = retryable;
	b->changed = changed;
	b->rows = 10;
}

static void start(ctx *c, unsigned workers, bool history, double retry_base)
{
	cr_assert_eq(uv_loop_init(&c->loop), 0);
	c->events = cJSON_CreateArray();
	if (history && !c->dir[0]) {
		snprintf(c->dir, sizeof(c->dir), "/tmp/vigie-sched-XXXXXX");
		cr_assert_not_null(mkdtemp(c->dir));
		snprintf(c->hist, sizeof(c->hist), "%s/runs.jsonl", c->dir);
	}
	vg_sched_opts o = { .workers = workers,
			    .history_path = history ? c->hist : NULL,
			    .run = run_cb,
			    .event = event_cb,
			    .cancel = cancel_cb,
			    .ud = c,
			    .retry_base_s = retry_base,
			    .now = c->fake_now ? fake_clock : NULL };
	OK(vg_sched_new(&c->loop, &o, &c->s, &E));
}

static void poll_cb(uv_timer_t *t)
{
	ctx *c = t->data;
	if (c->pred(c)) {
		c->pred_ok = true;
		uv_stop(&c->loop);
	} else if (uv_now(&c->loop) > c->deadline) {
		uv_stop(&c->loop);
	}
}

/* Run the loop until pred is true (polled every 2 ms) or timeout. */
static bool run_until(ctx *c, bool (*pred)(ctx *), int timeout_ms)
{
	uv_timer_t t;
	uv_update_time(&c->loop);
	c->pred = pred;
	c->pred_ok = false;
	c->deadline = uv_now(&c->loop) + (uint64_t)timeout_ms;
	uv_timer_init(&c->loop, &t);
	t.data = c;
	uv_timer_start(&t, poll_cb, 0, 2);
	uv_run(&c->loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&c->loop, UV_RUN_NOWAIT);
	return c->pred_ok;
}

static void on_stopped(void *ud)
{
	((ctx *)ud)->stopped = true;
}

static bool is_stopped(ctx *c)
{
	return c->stopped;
}

/* Stop, free, close the loop: fails on a leaked handle. */
static void finish(ctx *c)
{
	atomic_store(&c->release, true);
	OK(vg_sched_stop(c->s, 5, on_stopped, c));
	cr_assert(run_until(c, is_stopped, 6000), "stop never completed");
	vg_sched_free(c->s);
	c->s = NULL;
	uv_run(&c->loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&c->loop), 0, "a handle leaked");
	cJSON_Delete(c->events);
	c->events = NULL;
	c->stopped = false;
}

static void cleanup_dir(ctx *c)
{
	if (c->dir[0]) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
		cr_assert_eq(system(cmd), 0);
	}
}

static int count_events(ctx *c, const char *name, const char *status)
{
	int n = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, c->events)
	{
		if ((!name || strcmp(cJSON_GetObjectItem(e, "name")->valuestring,
				     name) == 0) &&
		    (!status ||
		     strcmp(cJSON_GetObjectItem(e, "status")->valuestring,
			    status) == 0))
			n++;
	}
	return n;
}

static const cJSON *event_at(ctx *c, int i)
{
	return cJSON_GetArrayItem(c->events, i);
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(o, k);
	cr_assert(cJSON_IsString(v), "no string '%s'", k);
	return v->valuestring;
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(o, k);
	cr_assert(cJSON_IsNumber(v), "no number '%s'", k);
	return v->valuedouble;
}

/* The job's entry in plugins_json (a copy; caller frees the array). */
static const cJSON *plugin(cJSON *arr, const char *name)
{
	const cJSON *p;
	cJSON_ArrayForEach(p, arr)
	{
		if (strcmp(str(p, "name"), name) == 0)
			return p;
	}
	cr_assert_fail("no plugin %s", name);
	return NULL;
}

static bool all_idle(ctx *c)
{
	cJSON *arr = vg_sched_plugins_json(c->s);
	bool idle = true;
	const cJSON *p;
	cJSON_ArrayForEach(p, arr)
	{
		if (strcmp(str(p, "state"), "idle") != 0)
			idle = false;
	}
	cJSON_Delete(arr);
	return idle;
}

static int target;
static bool events_reached(ctx *c)
{
	return cJSON_GetArraySize(c->events) >= target;
}

/* ---- tests ------------------------------------------------------------ */

Test(sched, every_interval_fires_on_time)
{
	ctx c = { 0 };
	add_beh(&c, "tick", 0, 0, true, false);
	start(&c, 1, false, 0.05);
	vg_sched_spec spec = { .name = "tick", .every_s = 1 };
	OK(vg_sched_set(c.s, &spec, 1, &E));
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	target = 2;
	cr_assert(run_until(&c, events_reached, 4000), "interval never fired");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double el = (double)(t1.tv_sec - t0.tv_sec) +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* Fires at +1 s and +2 s: not before, and not much later. */
	cr_expect_geq(el, 1.95, "two runs after %.3f s", el);
	cr_expect_leq(el, 3.0, "two runs took %.3f s", el);
	cr_expect_eq(count_events(&c, "tick", "ok"), 2);
	cr_expect_str_eq(str(event_at(&c, 0), "trigger"), "every");
	double gap = num(event_at(&c, 1), "started_at") -
		     num(event_at(&c, 0), "started_at");
	cr_expect(gap > 0.9 && gap < 1.2, "gap %.3f s", gap);
	finish(&c);
}

Test(sched, manual_trigger_and_record)
{
	ctx c = { 0 };
	add_beh(&c, "a", 0, 0, true, false);
	c.beh[0].block = true;
	start(&c, 1, false, 0.05);
	vg_sched_spec spec = { .name = "a" };
	OK(vg_sched_set(c.s, &spec, 1, &E));
	uint64_t id1 = 0, id2 = 0;
	c.set_in_event = true;
	OK(vg_sched_trigger(c.s, "a", &id1, &E));
	cr_expect_gt(id1, 0);
	/* Already queued or running: the same run. */
	OK(vg_sched_trigger(c.s, "a", &id2, &E));
	cr_expect_eq(id1, id2);
	cr_expect_eq(vg_sched_trigger(c.s, "nope", &id2, &E), VG_ENOTFOUND);
	cr_expect_neq(strstr(E.msg, "'nope'"), NULL, "%s", E.msg);

	cJSON *jobs = vg_sched_jobs_json(c.s, 10);
	cr_expect_eq(cJSON_GetArraySize(jobs), 1);
	cr_expect_str_eq(str(cJSON_GetArrayItem(jobs, 0), "status"), "running");
	cJSON_Delete(jobs);

	atomic_store(&c.release, true);
	target = 1;
	cr_assert(run_until(&c, events_reached, 3000));
	const cJSON *r = event_at(&c, 0);
	cr_expect_eq(num(r, "id"), (double)id1);
	cr_expect_str_eq(str(r, "status"), "ok");
	cr_expect_str_eq(str(r, "trigger"), "manual");
	cr_expect_eq(num(r, "rows_written"), 10);
	cr_expect_eq(num(r, "attempt"), 1);
	cr_expect_geq(num(r, "ended_at"), num(r, "started_at"));
	cr_expect_geq(num(r, "started_at"), num(r, "queued_at"));
	cr_expect_geq(num(r, "duration_s"), 0);
	char want[64];
	snprintf(want, sizeof(want), "sha256:%llu", (unsigned long long)id1);
	cr_expect_str_eq(str(r, "checksum"), want);
	cr_expect_eq(atomic_load(&c.calls), 1);
	cr_expect_eq(c.set_in_event_rc, VG_EBUSY,
		     "vg_sched_set accepted inside an event callback");

	/* After it ended, a trigger makes a new run. */
	OK(vg_sched_trigger(c.s, "a", &id2, &E));
	cr_expect_gt(id2, id1);
	target = 2;
	cr_assert(run_until(&c, events_reached, 3000));
	cJSON *pl = vg_sched_plugins_json(c.s);
	cr_expect_eq(num(plugin(pl, "a"), "runs"), 2);
	cr_expect_eq(num(plugin(pl, "a"), "failures"), 0);
	cJSON_Delete(pl);
	finish(&c);
}

Test(sched, concurrency_limit_is_honoured)
{
	ctx c = { 0 };
	const char *names[] = { "j1", "j2", "j3", "j4", "j5", "j6" };
	vg_sched_spec specs[6];
	memset(specs, 0, sizeof(specs));
	for (int i = 0; i < 6; i++) {
		add_beh(&c, names[i], 80, 0, true, false);
		specs[i].name = names[i];
	}
	start(&c, 2, false, 0.05);
	OK(vg_sched_set(c.s, specs, 6, &E));
	for (int i = 0; i < 6; i++)
		OK(vg_sched_trigger(c.s, names[i], NULL, &E));
	cJSON *st = vg_sched_stats_json(c.s);
	cr_expect_eq(num(st, "running"), 2);
	cr_expect_eq(num(st, "queued"), 4);
	cJSON_Delete(st);
	target = 6;
	cr_assert(run_until(&c, events_reached, 5000));
	cr_expect_eq(atomic_load(&c.max_running), 2,
		     "max concurrent runs %d with 2 workers",
		     atomic_load(&c.max_running));
	cr_expect_eq(count_events(&c, NULL, "ok"), 6);
	finish(&c);
}

Test(sched, after_chain_runs_only_when_changed)
{
	ctx c = { 0 };
	add_beh(&c, "a", 0, 0, true, true);
	add_beh(&c, "b", 0, 0, true, false); /* b commits nothing new */
	add_beh(&c, "c", 0, 0, true, false);
	start(&c, 2, false, 0.05);
	const char *after_a[] = { "a" }, *after_b[] = { "b" };
	vg_sched_spec specs[3] = {
		{ .name = "c", .after = after_b, .nafter = 1 },
		{ .name = "b", .after = after_a, .nafter = 1 },
		{ .name = "a" },
	};
	OK(vg_sched_set(c.s, specs, 3, &E));
	OK(vg_sched_trigger(c.s, "a", NULL, &E));
	target = 2;
	cr_assert(run_until(&c, events_reached, 3000));
	cr_assert(run_until(&c, all_idle, 3000));
	cr_expect_eq(count_events(&c, "a", "ok"), 1);
	cr_expect_eq(count_events(&c, "b", "ok"), 1);
	cr_expect_eq(count_events(&c, "c", NULL), 0, "c ran without new data");
	const cJSON *rb = event_at(&c, 1);
	cr_expect_str_eq(str(rb, "trigger"), "after");
	cr_expect_str_eq(str(rb, "cause"), "a");

	/* Now b commits: c follows. */
	beh_of(&c, "b")->changed = true;
	OK(vg_sched_trigger(c.s, "a", NULL, &E));
	target = 5;
	cr_assert(run_until(&c, events_reached, 3000));
	cr_expect_str_eq(str(event_at(&c, 2), "name"), "a");
	cr_expect_str_eq(str(event_at(&c, 3), "name"), "b");
	cr_expect_str_eq(str(event_at(&c, 4), "name"), "c");
	cr_expect_str_eq(str(event_at(&c, 4), "cause"), "b");

	/* A failed input triggers nothing. */
	atomic_store(&beh_of(&c, "a")->fail_times, 1);
	beh_of(&c, "a")->retryable = false;
	OK(vg_sched_trigger(c.s, "a", NULL, &E));
	target = 6;
	cr_assert(run_until(&c, events_reached, 3000));
	cr_assert(run_until(&c, all_idle, 3000));
	cr_expect_eq(cJSON_GetArraySize(c.events), 6);
	cr_expect_str_eq(str(event_at(&c, 5), "status"), "failed");
	finish(&c);
}

/* A job waits while a job it runs `after` (directly or not) is queued or
 * running. At start-up every missed job is queued at once, listed here
 * dependents first: c (after b) and b (after a, the geography) must not
 * run beside a, whatever the order, even with free workers; b's input
 * commits nothing new, so b and c run on their own (missed) triggers,
 * once each. Then by hand: a running, c triggered before b: c waits for
 * a through b. */
Test(sched, dependents_wait_for_their_inputs)
{
	setenv("TZ", "UTC", 1);
	tzset();
	ctx c = { 0 };
	c.fake_now = 1772445600; /* 2026-03-02T10:00:00Z */
	add_beh(&c, "a", 150, 0, true, false);
	add_beh(&c, "b", 50, 0, true, false);
	add_beh(&c, "c", 0, 0, true, false);
	start(&c, 3, true, 0.05);
	const char *after_a[] = { "a" }, *after_b[] = { "b" };
	vg_sched_spec specs[3] = {
		{ .name = "c", .after = after_b, .nafter = 1,
		  .every_s = 86400 },
		{ .name = "b", .after = after_a, .nafter = 1,
		  .every_s = 86400 },
		{ .name = "a", .every_s = 86400 },
	};
	OK(vg_sched_set(c.s, specs, 3, &E));
	target = 3;
	cr_assert(run_until(&c, events_reached, 5000));
	cr_assert(run_until(&c, all_idle, 3000));
	cr_expect_eq(atomic_load(&c.max_running), 1,
		     "%d runs at once: a dependent ran beside its input",
		     atomic_load(&c.max_running));
	const char *order[] = { "a", "b", "c" };
	for (int i = 0; i < 3; i++) {
		cr_expect_str_eq(str(event_at(&c, i), "name"), order[i]);
		cr_expect_str_eq(str(event_at(&c, i), "trigger"), "missed");
		cr_expect_str_eq(str(event_at(&c, i), "status"), "ok");
	}

	OK(vg_sched_trigger(c.s, "a", NULL, &E));
	OK(vg_sched_trigger(c.s, "c", NULL, &E));
	OK(vg_sched_trigger(c.s, "b", NULL, &E));
	target = 6;
	cr_assert(run_until(&c, events_reached, 5000));
	cr_assert(run_until(&c, all_idle, 3000));
	cr_expect_eq(atomic_load(&c.max_running), 1);
	for (int i = 0; i < 3; i++)
		cr_expect_str_eq(str(event_at(&c, 3 + i), "name"), order[i]);
	cr_expect_eq(cJSON_GetArraySize(c.events), 6);
	finish(&c);
	cleanup_dir(&c);
}

Test(sched, cycle_refused_with_its_name)
{
	ctx c = { 0 };
	start(&c, 1, false, 0.05);
	vg_sched_spec ok = { .name = "keep", .every_s = 3600 };
	OK(vg_sched_set(c.s, &ok, 1, &E));

	const char *aa[] = { "c" }, *ab[] = { "a" }, *ac[] = { "b" };
	vg_sched_spec cyc[3] = {
		{ .name = "a", .after = aa, .nafter = 1 },
		{ .name = "b", .after = ab, .nafter = 1 },
		{ .name = "c", .after = ac, .nafter = 1 },
	};
	cr_expect_eq(vg_sched_set(c.s, cyc, 3, &E), VG_EINVAL);
	cr_expect_neq(strstr(E.msg, "a -> b -> c -> a"), NULL, "%s", E.msg);

	const char *self[] = { "s" };
	vg_sched_spec me = { .name = "s", .after = self, .nafter = 1 };
	cr_expect_eq(vg_sched_set(c.s, &me, 1, &E), VG_EINVAL);
	cr_expect_neq(strstr(E.msg, "s -> s"), NULL, "%s", E.msg);

	/* A cycle below an acyclic start. */
	const char *dx[] = { "y" }, *dy[] = { "x", "root" }, *dr[] = { "x" };
	vg_sched_spec deep[3] = {
		{ .name = "root" },
		{ .name = "x", .after = dx, .nafter = 1 },
		{ .name = "y", .after = dy, .nafter = 2 },
	};
	(void)dr;
	cr_expect_eq(vg_sched_set(c.s, deep, 3, &E), VG_EINVAL);
	cr_expect_neq(strstr(E.msg, "y -> x -> y"), NULL, "%s", E.msg);

	const char *unk[] = { "ghost" };
	vg_sched_spec u = { .name = "u", .after = unk, .nafter = 1 };
	cr_expect_eq(vg_sched_set(c.s, &u, 1, &E), VG_ENOTFOUND);
	cr_expect_neq(strstr(E.msg, "'ghost'"), NULL, "%s", E.msg);

	vg_sched_spec bad = { .name = "bad", .cron = "0 0 45 * *" };
	cr_expect_eq(vg_sched_set(c.s, &bad, 1, &E), VG_EPARSE);
	cr_expect_neq(strstr(E.msg, "job 'bad'"), NULL, "%s", E.msg);
	cr_expect_neq(strstr(E.msg, "day-of-month"), NULL, "%s", E.msg);
	vg_sched_spec never = { .name = "never", .cron = "0 0 30 2 *" };
	cr_expect_eq(vg_sched_set(c.s, &never, 1, &E), VG_EINVAL);
	cr_expect_neq(strstr(E.msg, "never fires"), NULL, "%s", E.msg);
	vg_sched_spec both = { .name = "both", .cron = "0 0 * * *",
			       .every_s = 60 };
	cr_expect_eq(vg_sched_set(c.s, &both, 1, &E), VG_EINVAL);
	vg_sched_spec dup[2] = { { .name = "d" }, { .name = "d" } };
	cr_expect_eq(vg_sched_set(c.s, dup, 2, &E), VG_EINVAL);
	cr_expect_neq(strstr(E.msg, "twice"), NULL, "%s", E.msg);

	/* Every refusal left the previous set untouched. */
	cJSON *pl = vg_sched_plugins_json(c.s);
	cr_expect_eq(cJSON_GetArraySize(pl), 1);
	cr_expect_str_eq(str(cJSON_GetArrayItem(pl, 0), "name"), "keep");
	cJSON_Delete(pl);
	finish(&c);
}

Test(sched, retry_with_backoff_then_success)
{
	ctx c = { 0 };
	add_beh(&c, "flaky", 0, 2, true, false);
	start(&c, 1, false, 0.1);
	vg_sched_spec spec = { .name = "flaky" };
	OK(vg_sched_set(c.s, &spec, 1, &E));
	OK(vg_sched_trigger(c.s, "flaky", NULL, &E));
	target = 3;
	cr_assert(run_until(&c, events_reached, 3000));
	const char *want_status[] = { "retrying", "retrying", "ok" };
	const char *want_trigger[] = { "manual", "retry", "retry" };
	for (int i = 0; i < 3; i++) {
		const cJSON *r = event_at(&c, i);
		cr_expect_str_eq(str(r, "status"), want_status[i], "run %d", i);
		cr_expect_str_eq(str(r, "trigger"), want_trigger[i], "run %d", i);
		cr_expect_eq(num(r, "attempt"), i + 1);
	}
	/* Backoff: d = 0.1 * 2^(attempt-1), waited in [d/2, d]. */
	for (int i = 0; i < 2; i++) {
		const cJSON *r = event_at(&c, i), *n = event_at(&c, i + 1);
		double d = 0.1 * (double)(1 << i);
		double planned = num(r, "retry_at") - num(r, "ended_at");
		cr_expect(planned >= d / 2 - 0.002 && planned <= d + 0.002,
			  "retry %d planned after %.4f s, want [%.3f, %.3f]", i,
			  planned, d / 2, d);
		double waited = num(n, "started_at") - num(r, "ended_at");
		cr_expect_geq(waited, d / 2 - 0.002, "retry %d after %.4f s",
			      i, waited);
		cr_expect_str_eq(str(r, "error"), "flaky: source down");
	}
	cJSON *pl = vg_sched_plugins_json(c.s);
	cr_expect_eq(num(plugin(pl, "flaky"), "runs"), 3);
	cr_expect_eq(num(plugin(pl, "flaky"), "failures"), 2);
	cJSON_Delete(pl);
	finish(&c);
}

Test(sched, non_retryable_and_exhausted_failures)
{
	ctx c = { 0 };
	add_beh(&c, "syntax", 0, 100, false, false);
	add_beh(&c, "down", 0, 100, true, false);
	start(&c, 2, false, 0.01);
	vg_sched_spec specs[2] = { { .name = "syntax" },
				   { .name = "down", .max_retries = 2 } };
	OK(vg_sched_set(c.s, specs, 2, &E));
	OK(vg_sched_trigger(c.s, "syntax", NULL, &E));
	OK(vg_sched_trigger(c.s, "down", NULL, &E));
	target = 4;
	cr_assert(run_until(&c, events_reached, 3000));
	cr_assert(run_until(&c, all_idle, 3000));
	cr_expect_eq(count_events(&c, "syntax", NULL), 1);
	cr_expect_eq(count_events(&c, "syntax", "failed"), 1);
	/* 1 try + 2 retries, the last one final. */
	cr_expect_eq(count_events(&c, "down", "retrying"), 2);
	cr_expect_eq(count_events(&c, "down", "failed"), 1);
	cr_expect_eq(cJSON_GetArraySize(c.events), 4);
	finish(&c);
}

static int64_t T0; /* Monday 2026-03-02 10:00 UTC */

static const cJSON *last_record(ctx *c)
{
	return cJSON_GetArrayItem(c->events, cJSON_GetArraySize(c->events) - 1);
}

Test(sched, history_persisted_and_missed_run_once)
{
	setenv("TZ", "UTC", 1);
	tzset();
	T0 = 1772445600; /* 2026-03-02T10:00:00Z */
	ctx c = { 0 };
	add_beh(&c, "daily", 0, 0, true, false);
	add_beh(&c, "hourly", 0, 0, true, false);
	add_beh(&c, "derived", 0, 0, true, false);
	const char *after[] = { "daily" };
	vg_sched_spec specs[3] = {
		{ .name = "daily", .cron = "0 4 * * *" },
		{ .name = "hourly", .every_s = 3600 },
		{ .name = "derived", .after = after, .nafter = 1 },
	};

	/* Session 1: nothing recorded yet, so both scheduled jobs count as
	 * missed (they have no data); `derived` only runs after `daily`. */
	c.fake_now = T0;
	start(&c, 2, true, 0.05);
	OK(vg_sched_set(c.s, specs, 3, &E));
	target = 2;
	cr_assert(run_until(&c, events_reached, 3000));
	cr_assert(run_until(&c, all_idle, 3000));
	cr_expect_eq(count_events(&c, NULL, "ok"), 2);
	cr_expect_eq(count_events(&c, "derived", NULL), 0);
	cr_expect_str_eq(str(event_at(&c, 0), "trigger"), "missed");
	double first_id = num(last_record(&c), "id");
	cJSON *pl = vg_sched_plugins_json(c.s);
	/* Next fire: 04:00 the next day; hourly: one hour on. */
	cr_expect_eq(num(plugin(pl, "daily"), "next_fire"),
		     (double)(T0 + 18 * 3600));
	cr_expect_eq(num(plugin(pl, "hourly"), "next_fire"),
		     (double)(T0 + 3600));
	cJSON_Delete(pl);
	finish(&c);

	/* Session 2, same day 12:00: daily's next fire (tomorrow 04:00) has
	 * not come, hourly's has (10:00 + 1 h <= 12:00): only hourly runs,
	 * once although two fire times were missed. */
	c.fake_now = T0 + 2 * 3600;
	start(&c, 2, true, 0.05);
	OK(vg_sched_set(c.s, specs, 3, &E));
	cJSON *jobs = vg_sched_jobs_json(c.s, 0);
	/* The queued missed run, then the 2 records of session 1. */
	cr_expect_eq(cJSON_GetArraySize(jobs), 3);
	cr_expect_str_eq(str(cJSON_GetArrayItem(jobs, 0), "name"), "hourly");
	cr_expect_str_eq(str(cJSON_GetArrayItem(jobs, 0), "trigger"), "missed");
	cr_expect_gt(num(cJSON_GetArrayItem(jobs, 0), "id"), first_id,
		     "ids continue after the history's");
	cJSON_Delete(jobs);
	target = 1;
	cr_assert(run_until(&c, events_reached, 3000));
	cr_assert(run_until(&c, all_idle, 3000));
	cr_expect_eq(cJSON_GetArraySize(c.events), 1);
	cr_expect_str_eq(str(event_at(&c, 0), "name"), "hourly");
	pl = vg_sched_plugins_json(c.s);
	cr_expect_eq(num(plugin(pl, "daily"), "runs"), 1, "loaded count");
	cr_expect_eq(num(plugin(pl, "hourly"), "runs"), 2);
	cr_expect_str_eq(str(cJSON_GetObjectItem(plugin(pl, "daily"),
						 "last_run"),
			     "status"),
			 "ok");
	cJSON_Delete(pl);
	finish(&c);

	/* Session 3, three days later: one missed run each, not three. A
	 * cut last line (crash mid-write) is skipped and counted. */
	FILE *f = fopen(c.hist, "a");
	cr_assert_not_null(f);
	fputs("{\"id\": 1e300, \"name\": \"daily\", \"status\": \"ok\"}\n", f);
	fputs("{\"id\": 98, \"name\": \"daily\", \"status\": \"ok\", "
	      "\"started_at\": -5}\n", f);
	fputs("{\"id\": 99, \"name\": \"daily\", \"sta", f);
	fclose(f);
	c.fake_now = T0 + 3 * 86400;
	start(&c, 2, true, 0.05);
	OK(vg_sched_set(c.s, specs, 3, &E));
	target = 2;
	cr_assert(run_until(&c, events_reached, 3000));
	cr_assert(run_until(&c, all_idle, 3000));
	cr_expect_eq(count_events(&c, "daily", "ok"), 1);
	cr_expect_eq(count_events(&c, "hourly", "ok"), 1);
	/* daily changed nothing, so derived did not run. */
	cr_expect_eq(count_events(&c, "derived", NULL), 0);
	cJSON *st = vg_sched_stats_json(c.s);
	cr_expect_eq(num(st, "history_bad_lines"), 3);
	cJSON_Delete(st);
	finish(&c);

	/* The file holds one JSON line per finished run: 2 + 1 + 2. */
	f = fopen(c.hist, "r");
	char line[2048];
	int n = 0, bad = 0;
	while (fgets(line, sizeof(line), f)) {
		cJSON *r = cJSON_Parse(line);
		if (!r)
			bad++;
		else
			n++;
		cJSON_Delete(r);
	}
	fclose(f);
	cr_expect_eq(n, 7); /* 5 records + the 2 out-of-range lines */
	cr_expect_eq(bad, 1);
	cleanup_dir(&c);
}

Test(sched, reload_changes_one_job_keeps_the_other)
{
	setenv("TZ", "UTC", 1);
	tzset();
	ctx c = { 0 };
	c.fake_now = 1772445600; /* 2026-03-02T10:00:00Z */
	add_beh(&c, "a", 0, 0, true, false);
	add_beh(&c, "b", 0, 0, true, false);
	add_beh(&c, "gone", 0, 0, true, false);
	c.beh[2].block = true;
	start(&c, 2, false, 0.05);
	vg_sched_spec v1[3] = { { .name = "a", .every_s = 600 },
				{ .name = "b", .cron = "0 4 * * *" },
				{ .name = "gone" } };
	OK(vg_sched_set(c.s, v1, 3, &E));
	OK(vg_sched_trigger(c.s, "a", NULL, &E));
	target = 1;
	cr_assert(run_until(&c, events_reached, 3000));
	uint64_t gone_id;
	OK(vg_sched_trigger(c.s, "gone", &gone_id, &E));

	cJSON *before = vg_sched_plugins_json(c.s);
	double a_next = num(plugin(before, "a"), "next_fire");
	cr_expect_eq(num(plugin(before, "b"), "next_fire"),
		     (double)(c.fake_now + 18 * 3600));

	/* Reload: a unchanged, b's schedule changed, gone removed while it
	 * runs, new added. */
	c.fake_now += 60;
	vg_sched_spec v2[3] = { { .name = "a", .every_s = 600 },
				{ .name = "b", .cron = "30 12 * * *" },
				{ .name = "new", .every_s = 60 } };
	OK(vg_sched_set(c.s, v2, 3, &E));
	cJSON *after = vg_sched_plugins_json(c.s);
	cr_expect_eq(cJSON_GetArraySize(after), 3);
	cr_expect_eq(num(plugin(after, "a"), "next_fire"), a_next,
		     "unchanged job rescheduled");
	cr_expect_eq(num(plugin(after, "a"), "runs"), 1, "unchanged job lost "
							 "its counters");
	cr_expect_str_eq(str(cJSON_GetObjectItem(plugin(after, "a"), "last_run"),
			     "status"),
			 "ok");
	cr_expect_eq(num(plugin(after, "b"), "next_fire"),
		     (double)(1772445600 + 2 * 3600 + 30 * 60));
	cr_expect_str_eq(str(plugin(after, "b"), "cron"), "30 12 * * *");
	cr_expect_eq(num(plugin(after, "new"), "next_fire"),
		     (double)(c.fake_now + 60));
	cJSON_Delete(before);
	cJSON_Delete(after);

	/* The removed job's run finishes and is recorded, nothing else. */
	cr_expect_eq(vg_sched_trigger(c.s, "gone", NULL, &E), VG_ENOTFOUND);
	atomic_store(&c.release, true);
	target = 2;
	cr_assert(run_until(&c, events_reached, 3000));
	cr_expect_eq(num(event_at(&c, 1), "id"), (double)gone_id);
	cr_expect_str_eq(str(event_at(&c, 1), "status"), "ok");
	finish(&c);
}

Test(sched, stop_waits_for_a_running_job)
{
	ctx c = { 0 };
	add_beh(&c, "slow", 300, 0, true, false);
	add_beh(&c, "queued", 0, 0, true, false);
	start(&c, 1, false, 0.05);
	vg_sched_spec specs[2] = { { .name = "slow" }, { .name = "queued" } };
	OK(vg_sched_set(c.s, specs, 2, &E));
	OK(vg_sched_trigger(c.s, "slow", NULL, &E));
	OK(vg_sched_trigger(c.s, "queued", NULL, &E));
	OK(vg_sched_stop(c.s, 5, on_stopped, &c));
	cr_expect(!c.stopped, "done_cb called from inside stop");
	cr_expect_eq(vg_sched_trigger(c.s, "slow", NULL, &E), VG_EBUSY);
	cr_expect_eq(vg_sched_stop(c.s, 5, on_stopped, &c), VG_EBUSY);
	/* The queued run was canceled at once. */
	cr_expect_eq(count_events(&c, "queued", "canceled"), 1);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert(run_until(&c, is_stopped, 5000));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* done_cb came after the slow run ended, not at the 5 s grace. */
	cr_expect_eq(count_events(&c, "slow", "ok"), 1);
	double el = (double)(t1.tv_sec - t0.tv_sec) +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_expect_lt(el, 2.0, "stop took %.3f s", el);
	cr_expect(!atomic_load(&c.canceled));
	vg_sched_free(c.s);
	uv_run(&c.loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&c.loop), 0, "a handle leaked");
	cJSON_Delete(c.events);
}

Test(sched, stop_grace_expires_and_cancels)
{
	ctx c = { 0 };
	add_beh(&c, "stuck", 0, 0, true, false);
	c.beh[0].block = true; /* ends only when canceled */
	start(&c, 1, false, 0.05);
	vg_sched_spec spec = { .name = "stuck" };
	OK(vg_sched_set(c.s, &spec, 1, &E));
	OK(vg_sched_trigger(c.s, "stuck", NULL, &E));
	uv_run(&c.loop, UV_RUN_NOWAIT);
	OK(vg_sched_stop(c.s, 0.2, on_stopped, &c));
	cr_assert(run_until(&c, is_stopped, 3000));
	cr_expect(atomic_load(&c.canceled), "cancel callback not called");
	/* free waits for the run, which ends now that it was canceled, and
	 * records it. */
	vg_sched_free(c.s);
	cr_expect_eq(count_events(&c, "stuck", "ok"), 1);
	uv_run(&c.loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&c.loop), 0, "a handle leaked");
	cJSON_Delete(c.events);
}

Test(sched, after_trigger_while_running_reruns_once)
{
	ctx c = { 0 };
	add_beh(&c, "src", 0, 0, true, true);
	add_beh(&c, "dst", 300, 0, true, false);
	start(&c, 2, false, 0.05);
	const char *after[] = { "src" };
	vg_sched_spec specs[2] = { { .name = "src" },
				   { .name = "dst", .after = after,
				     .nafter = 1 } };
	OK(vg_sched_set(c.s, specs, 2, &E));
	OK(vg_sched_trigger(c.s, "src", NULL, &E));
	target = 1;
	cr_assert(run_until(&c, events_reached, 3000)); /* src ok, dst runs */
	/* Two more commits of src while dst runs: one more dst run. */
	OK(vg_sched_trigger(c.s, "src", NULL, &E));
	target = 2;
	cr_assert(run_until(&c, events_reached, 3000));
	OK(vg_sched_trigger(c.s, "src", NULL, &E));
	cr_assert(run_until(&c, all_idle, 3000));
	cr_expect_eq(count_events(&c, "src", "ok"), 3);
	cr_expect_eq(count_events(&c, "dst", "ok"), 2,
		     "dst ran %d times", count_events(&c, "dst", "ok"));
	finish(&c);
}

Test(sched, bad_options)
{
	uv_loop_t loop;
	vg_sched *s = NULL;
	cr_assert_eq(uv_loop_init(&loop), 0);
	vg_sched_opts o = { .workers = 0, .run = run_cb };
	cr_expect_eq(vg_sched_new(&loop, &o, &s, &E), VG_EINVAL);
	cr_expect_neq(strstr(E.msg, "0 workers"), NULL, "%s", E.msg);
	o.workers = 1;
	o.run = NULL;
	cr_expect_eq(vg_sched_new(&loop, &o, &s, &E), VG_EINVAL);
	o.run = run_cb;
	o.history_path = "/nonexistent-dir/runs.jsonl";
	cr_expect_eq(vg_sched_new(&loop, &o, &s, &E), VG_EIO);
	cr_expect_str_eq(E.where, "/nonexistent-dir/runs.jsonl");
	cr_expect_null(s);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(sched, long_history_is_compacted_keeping_each_jobs_last_run)
{
	setenv("TZ", "UTC", 1);
	tzset();
	ctx c = { 0 };
	int64_t now = 1772445600; /* 2026-03-02T10:00:00Z */
	snprintf(c.dir, sizeof(c.dir), "/tmp/vigie-sched-XXXXXX");
	cr_assert_not_null(mkdtemp(c.dir));
	snprintf(c.hist, sizeof(c.hist), "%s/runs.jsonl", c.dir);
	FILE *f = fopen(c.hist, "w");
	cr_assert_not_null(f);
	/* The monthly job ran on the 1st; then 25 000 hourly records. */
	fprintf(f, "{\"id\":1,\"name\":\"monthly\",\"status\":\"ok\","
		   "\"started_at\":%lld}\n",
		(long long)(now - 34 * 3600));
	int total = 25000;
	for (int i = 0; i < total; i++)
		fprintf(f,
			"{\"id\":%d,\"name\":\"hourly\",\"status\":\"%s\","
			"\"started_at\":%lld}\n",
			i + 2, i % 10 ? "ok" : "failed",
			(long long)(now - (total - i) * 60));
	fclose(f);

	add_beh(&c, "monthly", 0, 0, true, false);
	add_beh(&c, "hourly", 0, 0, true, false);
	c.fake_now = now;
	start(&c, 1, true, 0.05);
	vg_sched_spec specs[2] = { { .name = "monthly", .cron = "0 0 1 * *" },
				   { .name = "hourly", .every_s = 3600 } };
	OK(vg_sched_set(c.s, specs, 2, &E));
	/* Counts come from the whole file as read; nothing was missed. */
	cJSON *pl = vg_sched_plugins_json(c.s);
	cr_expect_eq(num(plugin(pl, "monthly"), "runs"), 1);
	cr_expect_eq(num(plugin(pl, "hourly"), "runs"), total);
	cr_expect_eq(num(plugin(pl, "hourly"), "failures"), total / 10);
	cr_expect_str_eq(str(plugin(pl, "monthly"), "state"), "idle");
	cr_expect_str_eq(str(plugin(pl, "hourly"), "state"), "idle");
	cJSON_Delete(pl);
	cJSON *st = vg_sched_stats_json(c.s);
	cr_expect_eq(num(st, "history_write_errors"), 0);
	cJSON_Delete(st);
	finish(&c);

	/* The file now holds the monthly record and the last 10 000. */
	f = fopen(c.hist, "r");
	char line[512];
	int n = 0;
	cJSON *first = NULL, *second = NULL;
	while (fgets(line, sizeof(line), f)) {
		if (n == 0)
			first = cJSON_Parse(line);
		if (n == 1)
			second = cJSON_Parse(line);
		n++;
	}
	fclose(f);
	cr_expect_eq(n, VG_SCHED_HISTORY_KEEP + 1);
	cr_expect_str_eq(str(first, "name"), "monthly");
	cr_expect_eq(num(second, "id"), total + 2 - VG_SCHED_HISTORY_KEEP);
	cJSON_Delete(first);
	cJSON_Delete(second);

	/* Reloaded: the monthly job is still not missed. */
	start(&c, 1, true, 0.05);
	OK(vg_sched_set(c.s, specs, 2, &E));
	pl = vg_sched_plugins_json(c.s);
	cr_expect_str_eq(str(plugin(pl, "monthly"), "state"), "idle");
	cr_expect_eq(num(plugin(pl, "hourly"), "runs"), VG_SCHED_HISTORY_KEEP);
	cJSON_Delete(pl);
	finish(&c);
	cleanup_dir(&c);
}
