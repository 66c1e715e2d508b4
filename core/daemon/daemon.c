/* Plugins and scheduler glue for vigied (see include/vigie/daemon.h).
 * This build has no plugin runtime yet: the daemon serves queries and
 * answers the plugin operations with `unavailable`. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "vigie/daemon.h"
#include "vigie/log.h"

struct vg_daemon {
	uv_loop_t *loop;
	vg_store *store;
	vg_server *srv;
	vg_api_hooks hooks;
};

int vg_daemon_new(uv_loop_t *loop, vg_store *store, const char *data_dir,
		  const char *plugins_dir, unsigned workers, vg_daemon **out,
		  vg_error *err)
{
	(void)data_dir;
	(void)plugins_dir;
	(void)workers;
	vg_daemon *d = calloc(1, sizeof(*d));
	if (!d)
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	d->loop = loop;
	d->store = store;
	*out = d;
	return 0;
}

vg_api_hooks *vg_daemon_hooks(vg_daemon *d)
{
	return &d->hooks;
}

void vg_daemon_set_server(vg_daemon *d, vg_server *srv)
{
	d->srv = srv;
}

void vg_daemon_start(vg_daemon *d)
{
	(void)d;
}

int vg_daemon_reload(vg_daemon *d, char *msg, size_t n)
{
	(void)d;
	if (msg && n)
		msg[0] = '\0';
	return 0;
}

cJSON *vg_daemon_stats(vg_daemon *d)
{
	(void)d;
	return NULL;
}

void vg_daemon_stop(vg_daemon *d, double grace_s, void (*done)(void *ud),
		    void *ud)
{
	(void)d;
	(void)grace_s;
	done(ud);
}

void vg_daemon_free(vg_daemon *d)
{
	free(d);
}
