#!/usr/bin/env bash
# `make run`: load the bundled real sample data (COG 2024 geography,
# populations légales 2022) into ./var/data once, then start vigied in the
# foreground on it with the bundled plugins. Called by the Makefile after
# install-deps and the build. Ctrl-C (SIGINT) stops the daemon cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${VIGIE_DATA:-var/data}
VIGIE=build/vigie
FIX=tests/fixtures/real
PORT=${VIGIE_PORT:-7878}
HTTP_PORT=${VIGIE_HTTP_PORT:-7879}
mkdir -p "$DATA"

if ! "$VIGIE" --data "$DATA" stat 2>/dev/null | grep -q '^points;[1-9]'; then
	echo "== loading the sample data into $DATA"
	"$VIGIE" --data "$DATA" import territories "$FIX/territories_cog2024.csv"
	"$VIGIE" --data "$DATA" import indicators "$FIX/indicators.json"
	"$VIGIE" --data "$DATA" import points "$FIX/population_2022.csv"
fi

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

   build/vigie --socket $SOCK --format table aggregate population --period 2022 --level reg
   curl 'http://127.0.0.1:$HTTP_PORT/v1/series?indicator=population&territory=com:36044'
   printf '{"id":1,"op":"compare","indicator":"population","territory":"com:36044","period":"2022"}\n' | nc -q1 127.0.0.1 $PORT

MSG
# The bundled plugins read their sample files from plugins/data and, when
# present, the shared real data next to the repository (no network).
ROOTS=(--fetch-root "$PWD/plugins/data")
[ -d ../shared/data ] && ROOTS+=(--fetch-root "$(cd ../shared/data && pwd)")
exec build/vigied --foreground "${ROOTS[@]}" --data "$DATA" --plugins plugins \
	--listen "unix:$SOCK" --listen "tcp:127.0.0.1:$PORT" \
	--http "127.0.0.1:$HTTP_PORT" --log-format text
