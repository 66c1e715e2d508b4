/* Plugins and scheduler glue for vigied (see include/vigie/daemon.h).
 *
 * The plugin directory is scanned for `*.lua` files (not `lib/`); each is
 * loaded and validated (core/lua) and becomes a job of the scheduler
 * (core/sched) with its cron/every/after. Runs happen on the scheduler's
 * worker threads and call vg_plugin_run, which commits all or nothing.
 * Progress reported by a plugin on its worker thread reaches the loop
 * through a uv_async_t and goes out as events to subscribers; so do job
 * state changes. A reload reloads only the files whose size or mtime
 * changed; the scheduler keeps the state of unchanged jobs. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "vigie/common.h"
#include "vigie/daemon.h"
#include "vigie/log.h"
#include "vigie/plugin.h"
#include "vigie/sched.h"

#define MAX_PLUGINS 256

/* One plugin file. Shared between the loop (reload) and the worker
 * running it: freed when both let go (refs). */
typedef struct entry {
	char *name; /* from the manifest, or the file name when it failed */
	char *path;
	struct timespec mtime;
	off_t size;
	vg_plugin *p; /* NULL when it failed to load */
	char *error;  /* why it failed */
	cJSON *config; /* overrides for the next run (`run` op); owned */
	int refs;
} entry;

/* A run in progress: its cancel flag and its latest progress. */
typedef struct running {
	uint64_t job;
	char name[128];
	volatile int cancel;
	uint64_t done, total;
	bool dirty; /* progress not yet sent */
	struct running *next;
} running;

struct vg_daemon {
	uv_loop_t *loop;
	vg_store *store;
	vg_server *srv;
	vg_sched *sched;
	char *data_dir, *plugins_dir, *lib_dir, *cache_dir;
	char *roots[10]; /* plugins_dir, data_dir, then --fetch-root ones */
	size_t nroots;
	vg_api_hooks hooks;
	pthread_mutex_t mu; /* entries' refs, `running` */
	entry *entries[MAX_PLUGINS];
	size_t nentries;
	running *runs;
	uv_async_t async;
	bool async_open;
	void (*stop_done)(void *ud);
	void *stop_ud;
};

/* ---- entries ----------------------------------------------------------------- */

static void entry_unref(vg_daemon *d, entry *e)
{
	pthread_mutex_lock(&d->mu);
	bool last = --e->refs == 0;
	pthread_mutex_unlock(&d->mu);
	if (!last)
		return;
	vg_plugin_free(e->p);
	cJSON_Delete(e->config);
	free(e->name);
	free(e->path);
	free(e->error);
	free(e);
}

static entry *entry_find(vg_daemon *d, const char *name)
{
	for (size_t i = 0; i < d->nentries; i++)
		if (!strcmp(d->entries[i]->name, name))
			return d->entries[i];
	return NULL;
}

static entry *entry_load(vg_daemon *d, const char *path, const struct stat *st)
{
	entry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->path = strdup(path);
	e->mtime = st->st_mtim;
	e->size = st->st_size;
	e->refs = 1;
	vg_plugin_env env = { .lib_dir = d->lib_dir,
			      .cache_dir = d->cache_dir,
			      .roots = (const char *const *)d->roots,
			      .nroots = d->nroots };
	vg_error err = { 0 };
	if (vg_plugin_load(path, &env, &e->p, &err)) {
		char buf[1024];
		e->error = strdup(vg_error_format(&err, buf, sizeof(buf)));
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		e->name = strndup(base, strcspn(base, "."));
		vg_errlog("plugin %s not loaded: %s", path, e->error);
	} else {
		e->name = strdup(vg_plugin_name(e->p));
	}
	return e;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Rescan the directory: keep unchanged entries, (re)load the others,
 * hand the scheduler the new set. */
static int rescan(vg_daemon *d, char *msg, size_t n)
{
	entry *next[MAX_PLUGINS];
	size_t nn = 0, loaded = 0, kept = 0, failed = 0;
	char *files[MAX_PLUGINS] = { 0 };
	size_t nf = 0;
	DIR *dir = opendir(d->plugins_dir);
	if (!dir) {
		if (errno != ENOENT) {
			snprintf(msg, n, "cannot read plugin directory %s: %s",
				 d->plugins_dir, strerror(errno));
			return VG_EIO;
		}
	} else {
		struct dirent *de;
		while ((de = readdir(dir)) && nf < MAX_PLUGINS) {
			size_t l = strlen(de->d_name);
			if (l > 4 && !strcmp(de->d_name + l - 4, ".lua") &&
			    de->d_name[0] != '.')
				files[nf++] = strdup(de->d_name);
		}
		closedir(dir);
	}
	qsort(files, nf, sizeof(*files), cmp_str);
	for (size_t i = 0; i < nf; i++) {
		char path[4096];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", d->plugins_dir, files[i]);
		free(files[i]);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		entry *old = NULL;
		for (size_t k = 0; k < d->nentries; k++)
			if (!strcmp(d->entries[k]->path, path))
				old = d->entries[k];
		if (old && old->size == st.st_size &&
		    old->mtime.tv_sec == st.st_mtim.tv_sec &&
		    old->mtime.tv_nsec == st.st_mtim.tv_nsec) {
			pthread_mutex_lock(&d->mu);
			old->refs++;
			pthread_mutex_unlock(&d->mu);
			next[nn++] = old;
			kept++;
			continue;
		}
		entry *e = entry_load(d, path, &st);
		if (!e)
			continue;
		next[nn++] = e;
		if (e->p)
			loaded++;
		else
			failed++;
	}
	/* Two files declaring the same plugin name: the second is refused. */
	for (size_t i = 0; i < nn; i++)
		for (size_t k = 0; k < i; k++)
			if (next[i]->p && next[k]->p &&
			    !strcmp(next[i]->name, next[k]->name)) {
				char buf[600];
				snprintf(buf, sizeof(buf),
					 "plugin name '%s' already used by %s",
					 next[i]->name, next[k]->path);
				vg_plugin_free(next[i]->p);
				next[i]->p = NULL;
				free(next[i]->error);
				next[i]->error = strdup(buf);
				failed++;
				loaded--;
			}
	vg_sched_spec specs[MAX_PLUGINS];
	const char *afters[MAX_PLUGINS][16];
	size_t ns = 0;
	for (size_t i = 0; i < nn; i++) {
		vg_plugin *p = next[i]->p;
		if (!p)
			continue;
		vg_sched_spec *s = &specs[ns];
		memset(s, 0, sizeof(*s));
		s->name = next[i]->name;
		s->cron = vg_plugin_schedule(p);
		s->every_s = vg_plugin_every(p);
		size_t na = vg_plugin_after_count(p);
		for (size_t k = 0; k < na && k < 16; k++)
			afters[ns][k] = vg_plugin_after(p, k);
		s->after = afters[ns];
		s->nafter = na < 16 ? na : 16;
		ns++;
	}
	/* The new entries go in first: the scheduler may start a run (a
	 * missed one) as soon as it has the specs. */
	entry *prev[MAX_PLUGINS];
	size_t nprev = d->nentries;
	pthread_mutex_lock(&d->mu);
	memcpy(prev, d->entries, nprev * sizeof(*prev));
	memcpy(d->entries, next, nn * sizeof(*next));
	d->nentries = nn;
	pthread_mutex_unlock(&d->mu);
	vg_error err = { 0 };
	int rc = vg_sched_set(d->sched, specs, ns, &err);
	if (rc) {
		/* The new set is refused as a whole (e.g. a cycle): keep
		 * the previous one running. */
		snprintf(msg, n, "plugins not reloaded: %.400s", err.msg);
		pthread_mutex_lock(&d->mu);
		memcpy(d->entries, prev, nprev * sizeof(*prev));
		d->nentries = nprev;
		pthread_mutex_unlock(&d->mu);
		for (size_t i = 0; i < nn; i++)
			entry_unref(d, next[i]);
		return rc;
	}
	for (size_t i = 0; i < nprev; i++)
		entry_unref(d, prev[i]);
	snprintf(msg, n,
		 "%zu plugin(s): %zu loaded, %zu unchanged, %zu failed (%s)",
		 nn, loaded, kept, failed, d->plugins_dir);
	return 0;
}

/* ---- runs (worker threads) --------------------------------------------------- */

typedef struct run_ctx {
	vg_daemon *d;
	running *r;
	const char *plugin;
} run_ctx;

static void progress_cb(void *ud, uint64_t done, uint64_t total)
{
	run_ctx *x = ud;
	pthread_mutex_lock(&x->d->mu);
	x->r->done = done;
	x->r->total = total;
	x->r->dirty = true;
	pthread_mutex_unlock(&x->d->mu);
	uv_async_send(&x->d->async);
}

static void log_cb(void *ud, const char *level, const char *msg)
{
	run_ctx *x = ud;
	vg_log_level l = !strcmp(level, "error")  ? VG_LOG_ERROR
			 : !strcmp(level, "warn") ? VG_LOG_WARN
			 : !strcmp(level, "debug") ? VG_LOG_DEBUG
						  : VG_LOG_INFO;
	vg_log(l, "plugin %s: %s", x->plugin, msg);
}

static void run_job(void *ud, const char *name, uint64_t job,
		    vg_job_report *rep)
{
	vg_daemon *d = ud;
	pthread_mutex_lock(&d->mu);
	entry *e = NULL;
	for (size_t i = 0; i < d->nentries; i++)
		if (!strcmp(d->entries[i]->name, name))
			e = d->entries[i];
	if (e)
		e->refs++;
	running *r = calloc(1, sizeof(*r));
	cJSON *config = NULL;
	if (r) {
		r->job = job;
		snprintf(r->name, sizeof(r->name), "%s", name);
		r->next = d->runs;
		d->runs = r;
	}
	if (e) {
		config = e->config;
		e->config = NULL;
	}
	pthread_mutex_unlock(&d->mu);
	if (!e || !e->p || !r) {
		rep->rc = VG_ENOTFOUND;
		rep->retryable = false;
		snprintf(rep->error, sizeof(rep->error), "plugin %s is %s", name,
			 e ? "not loaded" : "gone");
	} else {
		run_ctx x = { d, r, name };
		vg_run_opts o = { .config = config,
				  .progress = progress_cb,
				  .log = log_cb,
				  .ud = &x,
				  .cancel = &r->cancel };
		vg_run_result res;
		vg_error err = { 0 };
		vg_info("plugin %s: job %llu started", name,
			(unsigned long long)job);
		int rc = vg_plugin_run(e->p, d->store, &o, &res, &err);
		rep->rc = rc;
		rep->rows_written = res.rows_written;
		rep->rows_rejected = res.rows_rejected;
		rep->changed = rc == 0 && res.commit.vintage != 0;
		snprintf(rep->checksum, sizeof(rep->checksum), "%s",
			 res.checksum);
		if (rc) {
			char buf[1024];
			snprintf(rep->error, sizeof(rep->error), "%s",
				 vg_error_format(&err, buf, sizeof(buf)));
			/* A broken plugin stays broken; a source that
			 * failed to download may come back. */
			rep->retryable = rc == VG_EIO || rc == VG_EBUSY ||
					 rc == VG_EFULL;
			vg_errlog("plugin %s: job %llu failed, nothing written: "
				  "%s",
				  name, (unsigned long long)job, rep->error);
		} else {
			vg_info("plugin %s: job %llu ok, %llu rows, vintage %u "
				"(%.2f s)",
				name, (unsigned long long)job,
				(unsigned long long)res.rows_written,
				res.commit.vintage, res.seconds);
		}
		vg_run_result_clear(&res);
	}
	cJSON_Delete(config);
	pthread_mutex_lock(&d->mu);
	for (running **pp = &d->runs; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	pthread_mutex_unlock(&d->mu);
	free(r);
	if (e)
		entry_unref(d, e);
}

static void cancel_job(void *ud, const char *name, uint64_t job)
{
	vg_daemon *d = ud;
	pthread_mutex_lock(&d->mu);
	for (running *r = d->runs; r; r = r->next)
		if (r->job == job) {
			r->cancel = 1;
			vg_warn("plugin %s: job %llu canceled at shutdown: "
				"nothing of it is written",
				name, (unsigned long long)job);
		}
	pthread_mutex_unlock(&d->mu);
}

/* ---- events (loop thread) ------------------------------------------------------ */

static void on_job_event(void *ud, const cJSON *job)
{
	vg_daemon *d = ud;
	if (!d->srv)
		return;
	cJSON *ev = cJSON_Duplicate(job, true);
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(job, "id");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(job, "name");
	cJSON_AddStringToObject(ev, "event", "job");
	if (cJSON_IsNumber(id))
		cJSON_AddNumberToObject(ev, "job", id->valuedouble);
	if (cJSON_IsString(name))
		cJSON_AddStringToObject(ev, "plugin", name->valuestring);
	vg_server_event(d->srv, ev);
	cJSON_Delete(ev);
}

static void on_async(uv_async_t *a)
{
	vg_daemon *d = a->data;
	cJSON *evs[64];
	size_t n = 0;
	pthread_mutex_lock(&d->mu);
	for (running *r = d->runs; r && n < 64; r = r->next) {
		if (!r->dirty)
			continue;
		r->dirty = false;
		cJSON *ev = cJSON_CreateObject();
		cJSON_AddStringToObject(ev, "event", "progress");
		cJSON_AddNumberToObject(ev, "job", (double)r->job);
		cJSON_AddStringToObject(ev, "plugin", r->name);
		cJSON_AddNumberToObject(ev, "done", (double)r->done);
		cJSON_AddNumberToObject(ev, "total", (double)r->total);
		evs[n++] = ev;
	}
	pthread_mutex_unlock(&d->mu);
	for (size_t i = 0; i < n; i++) {
		if (d->srv)
			vg_server_event(d->srv, evs[i]);
		cJSON_Delete(evs[i]);
	}
}

/* ---- API hooks (loop thread) --------------------------------------------------- */

static cJSON *hook_plugins(void *ud)
{
	vg_daemon *d = ud;
	cJSON *sched = vg_sched_plugins_json(d->sched);
	cJSON *rows = cJSON_CreateArray();
	for (size_t i = 0; i < d->nentries; i++) {
		entry *e = d->entries[i];
		cJSON *o = NULL;
		const cJSON *it;
		cJSON_ArrayForEach(it, sched)
		{
			const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it,
									   "name");
			if (cJSON_IsString(nm) && !strcmp(nm->valuestring, e->name))
				o = cJSON_Duplicate(it, true);
		}
		if (!o) {
			o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "name", e->name);
			cJSON_AddStringToObject(o, "state", "not loaded");
		}
		cJSON_AddStringToObject(o, "path", e->path);
		if (e->error)
			cJSON_AddStringToObject(o, "error", e->error);
		if (e->p)
			cJSON_AddItemToObject(o, "manifest",
					      vg_plugin_to_json(e->p));
		const cJSON *last = cJSON_GetObjectItemCaseSensitive(o,
								     "last_run");
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(last,
								   "status");
		if (cJSON_IsString(st))
			cJSON_AddStringToObject(o, "last_status",
						st->valuestring);
		cJSON_AddItemToArray(rows, o);
	}
	cJSON_Delete(sched);
	return rows;
}

/* `stats`: the server's counters and the scheduler's queue. */
static cJSON *hook_stats(void *ud)
{
	vg_daemon *d = ud;
	cJSON *o = d->srv ? vg_server_stats(d->srv) : cJSON_CreateObject();
	cJSON *j = vg_sched_stats_json(d->sched);
	if (j)
		cJSON_AddItemToObject(o, "jobs", j);
	/* Per plugin: runs, failures and the last run's outcome. */
	cJSON *pl = vg_sched_plugins_json(d->sched);
	cJSON *by = cJSON_AddObjectToObject(o, "plugins");
	const cJSON *it;
	cJSON_ArrayForEach(it, pl)
	{
		const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
		if (!cJSON_IsString(nm))
			continue;
		cJSON *e = cJSON_AddObjectToObject(by, nm->valuestring);
		static const char *const keys[] = { "state", "runs", "failures",
						    "next_fire" };
		for (size_t k = 0; k < VG_ARRAY_LEN(keys); k++) {
			const cJSON *v =
				cJSON_GetObjectItemCaseSensitive(it, keys[k]);
			if (v)
				cJSON_AddItemToObject(e, keys[k],
						      cJSON_Duplicate(v, true));
		}
		const cJSON *last = cJSON_GetObjectItemCaseSensitive(it,
								     "last_run");
		if (last) {
			static const char *const lk[] = { "status", "ended_at",
							  "rows_written",
							  "error" };
			cJSON *lr = cJSON_AddObjectToObject(e, "last_run");
			for (size_t k = 0; k < VG_ARRAY_LEN(lk); k++) {
				const cJSON *v = cJSON_GetObjectItemCaseSensitive(
					last, lk[k]);
				if (v)
					cJSON_AddItemToObject(
						lr, lk[k],
						cJSON_Duplicate(v, true));
			}
		}
	}
	cJSON_Delete(pl);
	return o;
}

static cJSON *hook_jobs(void *ud, size_t limit)
{
	vg_daemon *d = ud;
	return vg_sched_jobs_json(d->sched, limit);
}

static cJSON *hook_run(void *ud, const char *plugin, const cJSON *config,
		       const char **code, char *msg, size_t n)
{
	vg_daemon *d = ud;
	entry *e = entry_find(d, plugin);
	if (!e) {
		*code = "unknown_plugin";
		snprintf(msg, n, "no plugin '%s' (op \"plugins\" lists them)",
			 plugin);
		return NULL;
	}
	if (!e->p) {
		*code = "unavailable";
		snprintf(msg, n, "plugin '%s' did not load: %s", plugin,
			 e->error ? e->error : "?");
		return NULL;
	}
	if (config) {
		pthread_mutex_lock(&d->mu);
		cJSON_Delete(e->config);
		e->config = cJSON_Duplicate(config, true);
		pthread_mutex_unlock(&d->mu);
	}
	uint64_t job;
	vg_error err = { 0 };
	if (vg_sched_trigger(d->sched, plugin, &job, &err)) {
		*code = err.code == VG_EBUSY ? "busy" : "internal";
		snprintf(msg, n, "%s", err.msg);
		return NULL;
	}
	cJSON *res = cJSON_CreateObject();
	cJSON_AddNumberToObject(res, "job", (double)job);
	cJSON_AddStringToObject(res, "plugin", plugin);
	return res;
}

static cJSON *hook_reload(void *ud, const char **code, char *msg, size_t n)
{
	vg_daemon *d = ud;
	char summary[1024];
	int rc = rescan(d, summary, sizeof(summary));
	if (rc) {
		*code = "bad_input";
		snprintf(msg, n, "%s", summary);
		return NULL;
	}
	vg_info("reload: %s", summary);
	cJSON *res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "summary", summary);
	cJSON_AddItemToObject(res, "plugins", hook_plugins(d));
	return res;
}

/* ---- lifecycle ------------------------------------------------------------------ */

static char *path_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s/%s", a, b);
	return s;
}

int vg_daemon_new(uv_loop_t *loop, vg_store *store, const char *data_dir,
		  const char *plugins_dir, const char *const *roots,
		  size_t nroots, unsigned workers, vg_daemon **out,
		  vg_error *err)
{
	vg_daemon *d = calloc(1, sizeof(*d));
	if (!d)
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	d->loop = loop;
	d->store = store;
	d->data_dir = strdup(data_dir);
	d->plugins_dir = strdup(plugins_dir);
	d->lib_dir = path_join(plugins_dir, "lib");
	d->cache_dir = path_join(data_dir, "cache");
	d->roots[d->nroots++] = strdup(plugins_dir);
	d->roots[d->nroots++] = strdup(data_dir);
	for (size_t i = 0; i < nroots && d->nroots < 10; i++)
		d->roots[d->nroots++] = strdup(roots[i]);
	mkdir(d->cache_dir, 0755);
	pthread_mutex_init(&d->mu, NULL);
	char *hist = path_join(data_dir, "runs.jsonl");
	vg_sched_opts so = { .workers = workers ? workers : 2,
			     .history_path = hist,
			     .run = run_job,
			     .event = on_job_event,
			     .cancel = cancel_job,
			     .ud = d };
	int rc = vg_sched_new(loop, &so, &d->sched, err);
	free(hist);
	if (rc) {
		vg_daemon_free(d);
		return rc;
	}
	uv_async_init(loop, &d->async, on_async);
	d->async.data = d;
	d->async_open = true;
	d->hooks.ud = d;
	d->hooks.stats = hook_stats;
	d->hooks.plugins = hook_plugins;
	d->hooks.jobs = hook_jobs;
	d->hooks.run = hook_run;
	d->hooks.reload = hook_reload;
	*out = d;
	return 0;
}

const vg_api_hooks *vg_daemon_hooks(vg_daemon *d)
{
	return &d->hooks;
}

void vg_daemon_set_server(vg_daemon *d, vg_server *srv)
{
	d->srv = srv;
}

void vg_daemon_start(vg_daemon *d)
{
	char msg[512];
	if (rescan(d, msg, sizeof(msg)))
		vg_errlog("%s", msg);
	else
		vg_info("%s", msg);
}

int vg_daemon_reload(vg_daemon *d, char *msg, size_t n)
{
	char buf[512];
	int rc = rescan(d, buf, sizeof(buf));
	if (rc)
		vg_errlog("%s", buf);
	else
		vg_info("reload: %s", buf);
	if (msg && n)
		snprintf(msg, n, "%s", buf);
	return rc;
}

static void on_sched_stopped(void *ud)
{
	vg_daemon *d = ud;
	if (d->async_open) {
		uv_close((uv_handle_t *)&d->async, NULL);
		d->async_open = false;
	}
	d->stop_done(d->stop_ud);
}

void vg_daemon_stop(vg_daemon *d, double grace_s, void (*done)(void *ud),
		    void *ud)
{
	d->stop_done = done;
	d->stop_ud = ud;
	if (vg_sched_stop(d->sched, grace_s, on_sched_stopped, d))
		on_sched_stopped(d);
}

static void daemon_release(vg_daemon *d)
{
	for (size_t i = 0; i < d->nentries; i++)
		entry_unref(d, d->entries[i]);
	pthread_mutex_destroy(&d->mu);
	free(d->data_dir);
	free(d->plugins_dir);
	free(d->lib_dir);
	free(d->cache_dir);
	for (size_t i = 0; i < d->nroots; i++)
		free(d->roots[i]);
	free(d);
}

static void on_async_closed(uv_handle_t *h)
{
	daemon_release(h->data);
}

/* The caller runs the loop afterwards so the handles finish closing. */
void vg_daemon_free(vg_daemon *d)
{
	if (!d)
		return;
	vg_sched_free(d->sched);
	d->sched = NULL;
	if (d->async_open) {
		d->async_open = false;
		uv_close((uv_handle_t *)&d->async, on_async_closed);
		return;
	}
	daemon_release(d);
}
