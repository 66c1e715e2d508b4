/* bench_plugin: points per second of a Lua plugin ingesting a
 * France-shaped CSV, and the cost of the sandbox's limits hook.
 *
 *   make bench              (runs bench_store, then this)
 *   build/bench_plugin [--communes N] [--years N]
 *
 * Data: N communes (default 34 900) × Y years (default 5) rows of
 * `code;year;v1..v10`, i.e. 10 points a row (1.745 M points by default),
 * values multiples of 1/4 written with a decimal comma half of the time.
 * The plugin puts every value; after the real run the store must hold
 * exactly the generated values (checked on every 97th row), or the
 * program exits 1: a fast wrong ingest is worthless.
 *
 * Reported: the dry run (CSV parse + Lua + vg_batch_point, nothing
 * committed) and the real run (plus the LMDB commit) in points/s; then a
 * CPU-bound Lua loop with and without the hook. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <time.h>

#include "vigie/plugin.h"
#include "vigie/store.h"

/* core/lua/host.c: the hook overhead probe (not public API). */
int vg__sandbox_bench(const char *src, bool hook, double *secs,
		      vg_error *err);

#define NIND 10

static double value_of(long c, int y, int k)
{
	return (double)((c * 7 + y * 13 + k * 101) % 100000) / 4.0;
}

static int die(const char *what, const vg_error *e)
{
	char buf[1024];
	fprintf(stderr, "bench_plugin: %s: %s\n", what,
		vg_error_format(e, buf, sizeof(buf)));
	return 1;
}

static const char PLUGIN[] =
	"local inds = { 'v1','v2','v3','v4','v5','v6','v7','v8','v9','v10' }\n"
	"local defs = {}\n"
	"for _, c in ipairs(inds) do defs[c] = { label = c, aggregate = 'sum' } end\n"
	"return {\n"
	"  name = 'bench', indicators = defs, config = { csv = '' },\n"
	"  memory = '1G', timeout = '1h',\n"
	"  run = function(ctx)\n"
	"    local put = ctx.put\n"
	"    for row in ctx:csv(ctx.config.csv, { sep = ';' }) do\n"
	"      local terr, year = 'com:' .. row.code, row.year\n"
	"      for i = 1, 10 do\n"
	"        local c = inds[i]\n"
	"        put(ctx, c, terr, year, row[c])\n"
	"      end\n"
	"    end\n"
	"  end,\n"
	"}\n";

static const char CPU[] =
	"local s = 0\n"
	"for i = 1, 200000000 do s = s + i % 7 end\n"
	"assert(s > 0)\n";

/* Closer to plugin code: string building and table updates. */
static const char CPU2[] =
	"local t = {}\n"
	"for i = 1, 5000000 do\n"
	"  local code = 'com:' .. (i % 35000)\n"
	"  t[code] = (t[code] or 0) + i * 0.5\n"
	"end\n";

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The reference: SQLite's bulk import of the same file, in C — read the
 * CSV line by line, convert the decimal commas, insert every value with
 * one prepared statement in one transaction into a WITHOUT ROWID table
 * keyed like Vigie's points (WAL, synchronous=NORMAL, as bench_store).
 * Returns the seconds, or -1. */
static double sqlite_import(const char *csv, const char *db_path,
			    unsigned long long *rows)
{
	sqlite3 *db;
	if (sqlite3_open(db_path, &db) != SQLITE_OK)
		return -1;
	double t0 = mono();
	char *err = NULL;
	if (sqlite3_exec(db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			 "CREATE TABLE points(ind INTEGER, terr TEXT, period "
			 "INTEGER, value REAL, PRIMARY KEY(ind, terr, period)) "
			 "WITHOUT ROWID; BEGIN;",
			 NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "sqlite: %s\n", err);
		return -1;
	}
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db, "INSERT INTO points VALUES(?,?,?,?)", -1, &st,
			   NULL);
	FILE *f = fopen(csv, "r");
	char line[1024];
	*rows = 0;
	if (!f || !fgets(line, sizeof(line), f)) /* header */
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *save, *code = strtok_r(line, ";\n", &save);
		char *year = strtok_r(NULL, ";\n", &save);
		char terr[32];
		snprintf(terr, sizeof(terr), "com:%s", code);
		int y = atoi(year);
		char *v;
		for (int k = 1; (v = strtok_r(NULL, ";\n", &save)); k++) {
			char *comma = strchr(v, ',');
			if (comma)
				*comma = '.';
			sqlite3_bind_int(st, 1, k);
			sqlite3_bind_text(st, 2, terr, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int(st, 3, y);
			sqlite3_bind_double(st, 4, strtod(v, NULL));
			if (sqlite3_step(st) != SQLITE_DONE)
				return -1;
			sqlite3_reset(st);
			(*rows)++;
		}
	}
	fclose(f);
	sqlite3_finalize(st);
	if (sqlite3_exec(db, "COMMIT;", NULL, NULL, &err) != SQLITE_OK)
		return -1;
	double t = mono() - t0;
	sqlite3_close(db);
	return t;
}

int main(int argc, char **argv)
{
	long ncom = 34900;
	int nyear = 5;
	bool cpu = true;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-cpu"))
			cpu = false;
		else if (!strcmp(argv[i], "--communes") && i + 1 < argc)
			ncom = atol(argv[++i]);
		else if (!strcmp(argv[i], "--years") && i + 1 < argc)
			nyear = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: bench_plugin [--communes N] "
				"[--years N] [--no-cpu]\n");
			return 2;
		}
	}
	char dir[] = "/tmp/vigie-bench-plugin-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	char path[256], csv[256], plug[256];
	snprintf(path, sizeof(path), "%s/data", dir);
	snprintf(csv, sizeof(csv), "%s/france.csv", dir);
	snprintf(plug, sizeof(plug), "%s/bench.lua", dir);

	FILE *f = fopen(csv, "w");
	fprintf(f, "code;year");
	for (int k = 1; k <= NIND; k++)
		fprintf(f, ";v%d", k);
	fprintf(f, "\n");
	for (int y = 0; y < nyear; y++)
		for (long c = 0; c < ncom; c++) {
			fprintf(f, "%05ld;%d", c, 2020 + y);
			for (int k = 0; k < NIND; k++) {
				char b[32];
				snprintf(b, sizeof(b), "%.2f", value_of(c, y, k));
				if ((c + k) % 2) {
					char *dot = strchr(b, '.');
					if (dot)
						*dot = ',';
				}
				fprintf(f, ";%s", b);
			}
			fprintf(f, "\n");
		}
	fclose(f);
	f = fopen(plug, "w");
	fputs(PLUGIN, f);
	fclose(f);

	vg_error e;
	vg_store *s;
	vg_store_opts so = { .map_size = (size_t)2 << 30 };
	if (vg_store_open(&s, path, &so, &e))
		return die("open", &e);
	vg_batch *b;
	if (vg_batch_new(s, NULL, &b, &e))
		return die("batch", &e);
	vg_territory t;
	memset(&t, 0, sizeof(t));
	snprintf(t.code, sizeof(t.code), "fr");
	snprintf(t.name, sizeof(t.name), "France");
	vg_batch_territory(b, &t, &e);
	for (long c = 0; c < ncom; c++) {
		memset(&t, 0, sizeof(t));
		snprintf(t.code, sizeof(t.code), "com:%05ld", c);
		snprintf(t.name, sizeof(t.name), "C%ld", c);
		t.nparents = 1;
		snprintf(t.parents[0], VG_CODE_MAX, "fr");
		if (vg_batch_territory(b, &t, &e))
			return die("territory", &e);
	}
	vg_commit_info ci;
	if (vg_batch_commit(b, &ci, &e))
		return die("commit territories", &e);

	const char *roots[] = { dir };
	vg_plugin_env env = { .roots = roots, .nroots = 1 };
	vg_plugin *p;
	if (vg_plugin_load(plug, &env, &p, &e))
		return die("load", &e);
	cJSON *cfg = cJSON_Parse("{\"csv\": \"france.csv\"}");
	uint64_t npts = (uint64_t)ncom * (uint64_t)nyear * NIND;

	vg_run_opts dry = { .dry_run = true, .config = cfg };
	vg_run_result r;
	if (vg_plugin_run(p, s, &dry, &r, &e))
		return die("dry run", &e);
	if (r.rows_written != npts) {
		fprintf(stderr, "bench_plugin: dry run wrote %llu points, want "
			"%llu\n", (unsigned long long)r.rows_written,
			(unsigned long long)npts);
		return 1;
	}
	double dry_s = r.seconds;
	vg_run_result_clear(&r);

	vg_run_opts real = { .config = cfg };
	if (vg_plugin_run(p, s, &real, &r, &e))
		return die("run", &e);
	double real_s = r.seconds;
	if (r.commit.points_new != npts) {
		fprintf(stderr, "bench_plugin: committed %llu new points, want "
			"%llu\n", (unsigned long long)r.commit.points_new,
			(unsigned long long)npts);
		return 1;
	}
	vg_run_result_clear(&r);

	/* Check values: every 97th row, all indicators. */
	vg_read *rd;
	if (vg_read_begin(s, &rd, &e))
		return die("read", &e);
	long checked = 0;
	for (long c = 0; c < ncom; c += 97)
		for (int y = 0; y < nyear; y++)
			for (int k = 0; k < NIND; k++) {
				char ic[16], tc[32], ps[16];
				snprintf(ic, sizeof(ic), "v%d", k + 1);
				snprintf(tc, sizeof(tc), "com:%05ld", c);
				snprintf(ps, sizeof(ps), "%d", 2020 + y);
				uint32_t ii, ti;
				vg_period per;
				vg_point pt;
				if (vg_read_indicator_id(rd, ic, &ii, &e) ||
				    vg_read_territory_id(rd, tc, &ti, &e) ||
				    vg_period_parse(ps, strlen(ps), &per) ||
				    vg_read_point(rd, ii, ti, per, VG_LATEST,
						  &pt) ||
				    pt.value != value_of(c, y, k)) {
					fprintf(stderr, "bench_plugin: wrong "
						"value %s %s %s\n", ic, tc, ps);
					return 1;
				}
				checked++;
			}
	vg_read_end(rd);

	double hook_s = 0, nohook_s = 1, hook2_s = 0, nohook2_s = 1;
	if (cpu && (vg__sandbox_bench(CPU, false, &nohook_s, &e) ||
	    vg__sandbox_bench(CPU, true, &hook_s, &e) ||
	    vg__sandbox_bench(CPU2, false, &nohook2_s, &e) ||
	    vg__sandbox_bench(CPU2, true, &hook2_s, &e)))
		return die("cpu bench", &e);

	printf("bench_plugin: %ld communes x %d years x %d indicators = %llu "
	       "points (CSV %s)\n", ncom, nyear, NIND,
	       (unsigned long long)npts, csv);
	printf("  dry run  (csv + lua + ctx:put)    %7.3f s  %10.0f points/s\n",
	       dry_s, (double)npts / dry_s);
	printf("  real run (... + LMDB commit)      %7.3f s  %10.0f points/s\n",
	       real_s, (double)npts / real_s);
	printf("  values checked: %ld, all equal\n", checked);
	char sqlp[300];
	unsigned long long sqrows = 0;
	snprintf(sqlp, sizeof(sqlp), "%s/ref.sqlite", dir);
	double sq_s = sqlite_import(csv, sqlp, &sqrows);
	if (sq_s > 0 && sqrows == npts)
		printf("  SQLite bulk import in C (same CSV)  %7.3f s  %10.0f "
		       "points/s: Vigie's plugin run is %.2fx SQLite\n",
		       sq_s, (double)npts / sq_s, sq_s / real_s);
	else
		printf("  SQLite bulk import failed (%llu rows)\n", sqrows);
	if (cpu)
	printf("  CPU-bound Lua loop (2e8 iterations): no hook %.3f s, with "
	       "hook %.3f s: overhead %+.1f %%\n", nohook_s, hook_s,
	       (hook_s / nohook_s - 1) * 100);
	if (cpu)
	printf("  string/table Lua loop (5e6 iterations): no hook %.3f s, with "
	       "hook %.3f s: overhead %+.1f %%\n", nohook2_s, hook2_s,
	       (hook2_s / nohook2_s - 1) * 100);
	cJSON_Delete(cfg);
	vg_plugin_free(p);
	vg_store_close(s);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) ? 1 : 0;
}
