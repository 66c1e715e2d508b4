#!/usr/bin/env bash
# `make run`: load the bundled real sample data into ./var/data once, then
# start vigied on it. Called by the Makefile after install-deps and
# the build. No network, no ../shared needed: everything, the geography
# first (plugin cog: the COG 2024 with its passage table), is ingested by
# the bundled plugins (plugins/*.lua) from the real files shipped in
# plugins/data/ — the same code the daemon runs.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${VIGIE_DATA:-var/data}
VIGIE=build/vigie
mkdir -p "$(dirname "$DATA")"

# Order matters: the geography first (every other plugin writes by
# territory), derived ratios last (health_densities only declares rules,
# it needs no data). The daemon keeps the same order through `after`.
PLUGINS="cog insee_population population_series insee_estimations drees_physicians drees_apl health_densities"

if ! "$VIGIE" --data "$DATA" stat 2>/dev/null | grep -q '^points;[1-9]'; then
	echo "== loading the sample data into $DATA"
	for p in $PLUGINS; do
		# insee_population's default path is relative to a data root:
		# plugins/data holds the same INSEE file.
		# population_series reads the npm packages of node_modules/.
		"$VIGIE" plugin run "plugins/$p.lua" --data "$DATA" --root plugins/data --root node_modules \
			2> >(grep -v '^\[warn\].*row rejected' >&2) | tail -1
	done
fi

show() {
	echo
	echo "== vigie --data $DATA $*"
	"$VIGIE" --data "$DATA" --format table "$@"
}
echo
echo "== $DATA"
"$VIGIE" --data "$DATA" --format table stat
show series population com:36044
show aggregate population --period 2022 --level reg
show slice population --level arm --period 2022 --in com:69123
show compare apl_mg com:85146 --period 2021
show compare apl_under_2_5_share com:85146 --period 2021
show aggregate physician_density --period 2025 --level reg
show compare pop_75p_share dep:85 --period 2025

PORT=${VIGIE_PORT:-7878}
HTTP_PORT=${VIGIE_HTTP_PORT:-7879}
# A port already taken (another program, a second `make run`): let the
# daemon pick a free one and say which in its log and in vigied.addr.
port_free() {
	python3 -c 'import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$1"
}
port_free "$PORT" || PORT=0
port_free "$HTTP_PORT" || HTTP_PORT=0

SOCK=$DATA/vigied.sock
cat <<MSG

== starting vigied on $DATA (plugins from plugins/); Ctrl-C stops it.
   It listens on unix:$SOCK, tcp:127.0.0.1:$PORT (NDJSON) and
   http://127.0.0.1:$HTTP_PORT (port 0 = a free port: see the log below
   or $DATA/vigied.addr). Try, from another terminal:

   build/vigie --socket $SOCK --format table compare apl_mg com:85146 --period 2021
   curl 'http://127.0.0.1:$HTTP_PORT/v1/series?indicator=population&territory=com:36044'
   build/vigie --connect 127.0.0.1:$PORT --format json compare population com:36044 --period 2022

MSG
# The bundled plugins read their sample files from plugins/data and, when
# present, the shared real data next to the repository (no network).
ROOTS=(--fetch-root "$PWD/plugins/data" --fetch-root "$PWD/node_modules")
[ -d ../shared/data ] && ROOTS+=(--fetch-root "$(cd ../shared/data && pwd)")
exec build/vigied --foreground "${ROOTS[@]}" --data "$DATA" --plugins plugins \
	--listen "unix:$SOCK" --listen "tcp:127.0.0.1:$PORT" \
	--http "127.0.0.1:$HTTP_PORT" --log-format text
