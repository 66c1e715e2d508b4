/* `vigie plugin ...`: manifest check and (dry) runs for plugin authors. */
#ifndef VIGIE_CMD_PLUGIN_H
#define VIGIE_CMD_PLUGIN_H

/* argv[0] is "plugin". Implements
 *   plugin check FILE.lua [--lib DIR]
 *   plugin run FILE.lua [--dry-run] [--data DIR] [--config KEY=VALUE]...
 *              [--root DIR]... [--lib DIR] [--json]
 * Returns the process exit code: 0 ok, 1 the plugin or the run failed,
 * 2 usage error. Messages go to stderr, reports to stdout. */
int vg_cmd_plugin(int argc, char **argv);

#endif
