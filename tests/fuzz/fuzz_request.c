/* libFuzzer target: one NDJSON request line through the parser, the
 * argument checks and the operation handlers, on a real store holding the
 * Vendée/Loire-Atlantique fixture. Admin rights are off so no input can
 * write to the disk; everything else runs as in the daemon.
 *
 *   make fuzz FUZZ_SECS=60    (make test runs it for a few seconds) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "vigie/api.h"
#include "vigie/io.h"
#include "vigie/store.h"

static vg_store *store;
static char dir[] = "/tmp/vigie-fuzz-XXXXXX";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void load(const char *kind, const char *file)
{
	char path[1024];
	const char *root = getenv("VIGIE_ROOT");
	snprintf(path, sizeof(path), "%s/tests/fixtures/daemon/%s",
		 root ? root : ".", file);
	vg_import_opts o = { 0 };
	vg_import_report *rep = calloc(1, sizeof(*rep));
	vg_error err = { 0 };
	int rc = !strcmp(kind, "t")   ? vg_import_territories(store, path, &o,
								rep, &err)
		 : !strcmp(kind, "i") ? vg_import_indicators(store, path, &o,
							     rep, &err)
				      : vg_import_points(store, path, &o, rep,
							 &err);
	free(rep);
	if (rc) {
		fprintf(stderr, "fuzz setup: %s: %s\n", path, err.msg);
		exit(1);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vg_error err = { 0 };
	if (!mkdtemp(dir) || vg_store_open(&store, dir, NULL, &err)) {
		fprintf(stderr, "fuzz setup: %s\n", err.msg);
		exit(1);
	}
	load("t", "territories.csv");
	load("i", "indicators.json");
	load("p", "points.csv");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *req = NULL;
	cJSON *resp = vg_api_parse((const char *)data, size, &req);
	if (!resp)
		resp = vg_api_call(store, NULL, dir, req, false);
	/* Every answer is an envelope that prints. */
	char *s = cJSON_PrintUnformatted(resp);
	if (!s || !cJSON_GetObjectItemCaseSensitive(resp, "ok"))
		abort();
	cJSON_free(s);
	cJSON_Delete(resp);
	cJSON_Delete(req);
	return 0;
}
