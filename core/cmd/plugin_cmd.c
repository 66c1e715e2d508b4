/* `vigie plugin check` and `vigie plugin run [--dry-run]`.
 *
 * Defaults chosen so that an author can try a plugin where it lies:
 * `require` reads <plugin dir>/lib (plugins/lib for plugins/x.lua), local
 * sources may be read under the current directory and the plugin's
 * directory (plus every --root), the store is --data or $VIGIE_DATA, and
 * a dry run without either uses an empty temporary store (then only
 * territories the plugin defines itself can receive points). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/plugin_cmd.h"
#include "vigie/plugin.h"
#include "vigie/store.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };
#define MAX_ROOTS 16

static int usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "vigie plugin: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nusage: vigie plugin check FILE.lua [--lib DIR]\n"
		"       vigie plugin run FILE.lua [--dry-run] [--data DIR] "
		"[--config KEY=VALUE]... [--root DIR]... [--lib DIR] "
		"[--json]\n");
	return EXIT_USAGE;
}

static int fail(const vg_error *e)
{
	char buf[1024];
	fprintf(stderr, "vigie plugin: %s\n", vg_error_format(e, buf,
							       sizeof(buf)));
	return EXIT_FAIL;
}

static void on_log(void *ud, const char *level, const char *msg)
{
	(void)ud;
	fprintf(stderr, "[%s] %s\n", level, msg);
}

typedef struct opts {
	bool dry, json;
	const char *data, *lib;
	const char *roots[MAX_ROOTS];
	size_t nroots;
	cJSON *config;
} opts;

static int parse(int argc, char **argv, opts *o)
{
	static const struct option longs[] = {
		{ "dry-run", no_argument, 0, 'n' },
		{ "json", no_argument, 0, 'j' },
		{ "data", required_argument, 0, 'd' },
		{ "lib", required_argument, 0, 'l' },
		{ "root", required_argument, 0, 'r' },
		{ "config", required_argument, 0, 'c' },
		{ 0, 0, 0, 0 },
	};
	optind = 1;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'n': o->dry = true; break;
		case 'j': o->json = true; break;
		case 'd': o->data = optarg; break;
		case 'l': o->lib = optarg; break;
		case 'r':
			if (o->nroots == MAX_ROOTS)
				return usage("at most %s --root options", "16");
			o->roots[o->nroots++] = optarg;
			break;
		case 'c': {
			char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg)
				return usage("--config '%s': expected "
					     "KEY=VALUE", optarg);
			*eq = '\0';
			cJSON_DeleteItemFromObject(o->config, optarg);
			cJSON_AddStringToObject(o->config, optarg, eq + 1);
			*eq = '=';
			break;
		}
		default:
			return usage("unknown or incomplete option '%s'",
				     argv[optind - 1]);
		}
	}
	return 0;
}

static void print_json(const cJSON *j)
{
	char *s = cJSON_Print(j);
	if (s)
		printf("%s\n", s);
	free(s);
}

static void print_check(const vg_plugin *p)
{
	printf("plugin %s (%s): manifest ok\n", vg_plugin_name(p),
	       vg_plugin_path(p));
	if (vg_plugin_schedule(p))
		printf("  schedule: %s\n", vg_plugin_schedule(p));
	else if (vg_plugin_every(p))
		printf("  every: %llu s\n",
		       (unsigned long long)vg_plugin_every(p));
	else
		printf("  runs only on demand (no schedule, no every)\n");
	for (size_t i = 0; i < vg_plugin_after_count(p); i++)
		printf("  after: %s\n", vg_plugin_after(p, i));
	cJSON *j = vg_plugin_to_json(p);
	const cJSON *inds = cJSON_GetObjectItem(j, "indicators");
	const cJSON *it;
	cJSON_ArrayForEach(it, inds) {
		printf("  indicator %s: %s [%s], aggregate %s\n",
		       cJSON_GetObjectItem(it, "code")->valuestring,
		       cJSON_GetStringValue(cJSON_GetObjectItem(it, "label"))
			       ?: "",
		       cJSON_GetStringValue(cJSON_GetObjectItem(it,
								"periodicity"))
			       ?: "",
		       cJSON_GetStringValue(cJSON_GetObjectItem(it,
								"aggregate"))
			       ?: "");
	}
	const cJSON *cfg = cJSON_GetObjectItem(j, "config");
	cJSON_ArrayForEach(it, cfg) {
		char *v = cJSON_PrintUnformatted(it);
		printf("  config %s = %s\n", it->string, v ? v : "?");
		free(v);
	}
	printf("  timeout %g s, memory %zu bytes\n", vg_plugin_timeout(p),
	       vg_plugin_memory(p));
	cJSON_Delete(j);
}

static void print_dry(const vg_plugin *p, const vg_run_result *r)
{
	printf("plugin %s: dry run, nothing written\n", vg_plugin_name(p));
	const cJSON *inds = cJSON_GetObjectItem(r->dry, "indicators");
	const cJSON *it, *s;
	cJSON_ArrayForEach(it, inds) {
		printf("  %s: %.0f points\n", it->string,
		       cJSON_GetNumberValue(cJSON_GetObjectItem(it, "points")));
		cJSON_ArrayForEach(s, cJSON_GetObjectItem(it, "sample")) {
			const cJSON *v = cJSON_GetObjectItem(s, "value");
			char vb[64];
			if (cJSON_IsNumber(v))
				snprintf(vb, sizeof(vb), "%.17g",
					 v->valuedouble);
			else
				snprintf(vb, sizeof(vb), "-");
			printf("    %s %s = %s (%s)\n",
			       cJSON_GetObjectItem(s, "territory")->valuestring,
			       cJSON_GetObjectItem(s, "period")->valuestring,
			       vb,
			       cJSON_GetObjectItem(s, "status")->valuestring);
		}
	}
	printf("  territories defined: %.0f\n",
	       cJSON_GetNumberValue(cJSON_GetObjectItem(r->dry,
							"territories")));
}

/* --data, else $VIGIE_DATA (empty means unset), else NULL. */
static const char *data_dir(const opts *o)
{
	const char *d = o->data ? o->data : getenv("VIGIE_DATA");
	return d && *d ? d : NULL;
}

static int run_cmd(const char *file, opts *o, vg_plugin_env *env)
{
	vg_error err;
	vg_error_clear(&err);
	vg_plugin *p;
	if (vg_plugin_load(file, env, &p, &err))
		return fail(&err);
	const char *data = data_dir(o);
	char tmp[] = "/tmp/vigie-dry-XXXXXX";
	bool temp = false;
	if (!data && !o->dry) {
		vg_plugin_free(p);
		return usage("a real run needs --data DIR (or $VIGIE_DATA)%s",
			     "");
	}
	if (!data) {
		if (!mkdtemp(tmp)) {
			vg_plugin_free(p);
			perror("vigie plugin: mkdtemp");
			return EXIT_FAIL;
		}
		data = tmp;
		temp = true;
	}
	vg_store *s;
	int rc = vg_store_open(&s, data, NULL, &err);
	if (rc) {
		vg_plugin_free(p);
		return fail(&err);
	}
	vg_run_opts ro = { .dry_run = o->dry, .config = o->config,
			   .log = on_log };
	vg_run_result res;
	rc = vg_plugin_run(p, s, &ro, &res, &err);
	int code = EXIT_OK;
	if (rc) {
		code = fail(&err);
	} else if (o->json) {
		cJSON *j = o->dry ? cJSON_Duplicate(res.dry, true)
				  : cJSON_CreateObject();
		cJSON_AddNumberToObject(j, "vintage", res.commit.vintage);
		cJSON_AddNumberToObject(j, "points_new",
					(double)res.commit.points_new);
		cJSON_AddNumberToObject(j, "points_changed",
					(double)res.commit.points_changed);
		cJSON_AddNumberToObject(j, "points_unchanged",
					(double)res.commit.points_unchanged);
		if (!o->dry) {
			cJSON_AddNumberToObject(j, "rows_written",
						(double)res.rows_written);
			cJSON_AddNumberToObject(j, "rows_rejected",
						(double)res.rows_rejected);
			cJSON_AddStringToObject(j, "checksum", res.checksum);
		}
		print_json(j);
		cJSON_Delete(j);
	} else {
		if (o->dry)
			print_dry(p, &res);
		else if (res.commit.vintage)
			printf("plugin %s: vintage %u: %llu new, %llu revised, "
			       "%llu unchanged points\n", vg_plugin_name(p),
			       res.commit.vintage,
			       (unsigned long long)res.commit.points_new,
			       (unsigned long long)res.commit.points_changed,
			       (unsigned long long)res.commit.points_unchanged);
		else
			printf("plugin %s: nothing changed (no vintage "
			       "recorded)\n", vg_plugin_name(p));
		printf("  rows written %llu, rejected %llu; source %s; "
		       "%.3f s\n", (unsigned long long)res.rows_written,
		       (unsigned long long)res.rows_rejected,
		       res.checksum[0] ? res.checksum : "(none)", res.seconds);
	}
	vg_run_result_clear(&res);
	vg_store_close(s);
	vg_plugin_free(p);
	if (temp) {
		char cmd[PATH_MAX + 32];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "vigie plugin: could not remove %s\n",
				tmp);
	}
	return code;
}

int vg_cmd_plugin(int argc, char **argv)
{
	if (argc < 3)
		return usage("expects 'check FILE.lua' or 'run FILE.lua'%s",
			     "");
	const char *sub = argv[1], *file = argv[2];
	if (strcmp(sub, "check") && strcmp(sub, "run"))
		return usage("unknown subcommand '%s' (check, run)", sub);
	opts o = { 0 };
	o.config = cJSON_CreateObject();
	if (!o.config)
		return EXIT_FAIL;
	/* getopt sees "run FILE --opts": skip the subcommand and file. */
	int rc = parse(argc - 2, argv + 2, &o);
	if (rc == 0 && optind < argc - 2)
		rc = usage("unexpected argument '%s'", argv[2 + optind]);
	if (rc == 0 && !strcmp(sub, "check") &&
	    (o.dry || o.data || o.config->child))
		rc = usage("check takes only --lib (did you mean 'plugin "
			   "run'?)%s", "");
	if (rc) {
		cJSON_Delete(o.config);
		return rc;
	}
	char dir[PATH_MAX], lib[PATH_MAX + 8], cache[PATH_MAX + 8];
	snprintf(dir, sizeof(dir), "%s", file);
	snprintf(lib, sizeof(lib), "%s/lib", dirname(dir));
	const char *roots[MAX_ROOTS + 2];
	size_t n = 0;
	roots[n++] = ".";
	roots[n++] = dir;
	for (size_t i = 0; i < o.nroots; i++)
		roots[n++] = o.roots[i];
	vg_plugin_env env = { .lib_dir = o.lib ? o.lib : lib,
			      .roots = roots, .nroots = n };
	const char *data = data_dir(&o);
	if (data) {
		snprintf(cache, sizeof(cache), "%s/cache", data);
		env.cache_dir = cache;
	}
	if (!strcmp(sub, "check")) {
		vg_error err;
		vg_error_clear(&err);
		vg_plugin *p;
		if (vg_plugin_load(file, &env, &p, &err)) {
			rc = fail(&err);
		} else {
			if (o.json) {
				cJSON *j = vg_plugin_to_json(p);
				print_json(j);
				cJSON_Delete(j);
			} else {
				print_check(p);
			}
			vg_plugin_free(p);
		}
	} else {
		rc = run_cmd(file, &o, &env);
	}
	cJSON_Delete(o.config);
	return rc;
}
