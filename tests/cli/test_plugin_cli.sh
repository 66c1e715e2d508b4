#!/usr/bin/env bash
# `vigie plugin check` and `vigie plugin run [--dry-run]` end to end: the
# worked example on the real INSEE file, a broken manifest, a failing
# plugin, config overrides, exit codes, and http(s) fetching with the
# download cache and a conditional request (a local python3 http.server).
#
# Env: VIGIE (the binary), VIGIE_SHARED (../shared), VIGIE_ROOT (repo root).
# Exits non-zero if any check failed; the last line is "N passed, M failed".
set -u

VIGIE=${VIGIE:-build/vigie}
ROOT=${VIGIE_ROOT:-.}
SHARED=${VIGIE_SHARED:-../shared}
FIX=$ROOT/tests/fixtures/plugins
EX=$ROOT/plugins/insee_population.lua

T=$(mktemp -d /tmp/vigie-plugin-cli-XXXXXX)
SERVER=
cleanup() {
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

. "$(dirname "$0")/lib/assert.sh"
vg() {
	"$VIGIE" "$@" >"$T/out" 2>"$T/err"
	rc=$?
}

# ---- check -----------------------------------------------------------------
vg plugin check "$EX"
eq "check example: exit" "$rc" 0
has "check example: name" "$T/out" "plugin insee_population"
has "check example: schedule" "$T/out" "schedule: 0 4 * * 1"
has "check example: indicator" "$T/out" "indicator population: Population municipale [year], aggregate sum"
has "check example: config" "$T/out" 'config period = "2022"'

vg plugin check "$EX" --json
eq "check --json: exit" "$rc" 0
has "check --json: name" "$T/out" '"name":	"insee_population"'

printf 'return {\n  name = "x",\n  run = function() end,\n  colour = "red",\n}\n' >"$T/bad.lua"
vg plugin check "$T/bad.lua"
eq "check bad manifest: exit" "$rc" 1
has "check bad manifest: message" "$T/err" "bad.lua: manifest key 'colour': unknown key"

printf 'return {\n  name = "x"\n  run = 1 }\n' >"$T/syntax.lua"
vg plugin check "$T/syntax.lua"
eq "check syntax: exit" "$rc" 1
has "check syntax: located" "$T/err" "syntax.lua:3:"

vg plugin check
eq "check without file: usage" "$rc" 2
vg plugin check "$EX" --dry-run
eq "check --dry-run: usage" "$rc" 2
vg plugin frobnicate "$EX"
eq "unknown subcommand: usage" "$rc" 2
has "unknown subcommand: message" "$T/err" "unknown subcommand 'frobnicate'"
vg help
has "help lists plugin" "$T/out" "plugin"

# ---- dry run of the example on the real file ----------------------------------
D=$T/data
"$VIGIE" --data "$D" import territories "$ROOT/tests/fixtures/real/territories_cog2024.csv" >/dev/null 2>&1
vg plugin run "$EX" --dry-run --data "$D" --root "$SHARED/data"
eq "dry run: exit" "$rc" 0
has "dry run: header" "$T/out" "plugin insee_population: dry run, nothing written"
has "dry run: count" "$T/out" "population: 34960 points"
has "dry run: sample" "$T/out" "com:01001 2022 = 859 (ok)"
has "dry run: totale sample" "$T/out" "com:01001 2022 = 875 (ok)"
has "dry run: rejected" "$T/out" "rows written 69920, rejected 4"
has "dry run: checksum" "$T/out" "sha256:39eae0743dbf385cb0dbceafbf22dae240a2081d18b7d9b8b84631596b5044d1"
has "dry run: reject logged" "$T/err" "collectivité d'outre-mer 975501"
VIGIE_DATA="$D" "$VIGIE" --format csv indicators >"$T/ind" 2>&1
hasnt "dry run wrote no indicator" "$T/ind" "population"

vg plugin run "$EX" --dry-run --data "$D" --root "$SHARED/data" --json
eq "dry run --json: exit" "$rc" 0
has "dry run --json: points" "$T/out" '"points":	34960'

# --config overrides: another period
vg plugin run "$EX" --dry-run --data "$D" --root "$SHARED/data" --config period=2021
has "config override" "$T/out" "com:01001 2021 = 859 (ok)"
vg plugin run "$EX" --dry-run --data "$D" --root "$SHARED/data" --config colour=red
eq "unknown config key: exit" "$rc" 1
has "unknown config key: message" "$T/err" "config key 'colour' is not declared"
vg plugin run "$EX" --dry-run --data "$D" --config period
eq "--config without =: usage" "$rc" 2

# without --root the shared data is out of reach
vg plugin run "$EX" --dry-run --data "$D"
eq "no root: exit" "$rc" 1
has "no root: message" "$T/err" "no such file under the roots"

# a dry run without any store: a temporary empty one
(cd "$T" && VIGIE_DATA= "$VIGIE" plugin run "$FIX/halfway.lua" --dry-run --config fail_at=99 >"$T/out" 2>"$T/err")
eq "dry run, temporary store: exit (unknown territories)" "$?" 1
has "dry run, temporary store: message" "$T/err" "unknown territory 'fr'"

# ---- real runs -----------------------------------------------------------------
vg plugin run "$EX" --data "$D" --root "$SHARED/data"
eq "run: exit" "$rc" 0
has "run: vintage" "$T/out" "69920 new, 0 revised, 0 unchanged points"
VIGIE_DATA="$D" "$VIGIE" --format csv series population com:85146 >"$T/s" 2>&1
has "run: value stored" "$T/s" "2022;20754;ok"
vg plugin run "$EX" --data "$D" --root "$SHARED/data"
has "rerun: nothing changed" "$T/out" "nothing changed (no vintage recorded)"

vg plugin run "$FIX/halfway.lua" --data "$D"
eq "failing plugin: exit" "$rc" 1
has "failing plugin: located" "$T/err" "halfway.lua:9: source is truncated at row 3"
has "failing plugin: traceback" "$T/err" "stack traceback:"
vg plugin run "$FIX/loop.lua" --data "$D"
eq "loop: exit" "$rc" 1
has "loop: deadline" "$T/err" "deadline exceeded"
vg plugin run "$EX" --root "$SHARED/data"
# VIGIE_DATA may be set by the caller: only check without it
if [ -z "${VIGIE_DATA:-}" ]; then
	eq "real run without data: usage" "$rc" 2
fi

# ---- http fetch, download cache, conditional request ------------------------------
if python3 -c 'import http.server' 2>/dev/null; then
	mkdir -p "$T/www"
	printf 'territory;period;value\nfr;2024;1\ndep:44;2024;2,5\n' >"$T/www/x.csv"
	PORT=$((20000 + RANDOM % 20000))
	(cd "$T/www" && exec python3 -m http.server "$PORT" --bind 127.0.0.1) 2>"$T/http.log" >/dev/null &
	SERVER=$!
	for _ in $(seq 50); do
		curl -s -o /dev/null "http://127.0.0.1:$PORT/x.csv" && break
		sleep 0.1
	done
	cat >"$T/web.lua" <<'LUA'
return {
  name = "web",
  indicators = { v = { label = "v", aggregate = "sum" } },
  config = { url = "" },
  run = function(ctx)
    local src = ctx:fetch(ctx.config.url)
    for row in ctx:csv(src) do ctx:put("v", row.territory, row.period, row.value) end
  end,
}
LUA
	W=$T/web
	"$VIGIE" --data "$W" import territories "$ROOT/tests/fixtures/real/territories_cog2024.csv" >/dev/null 2>&1
	vg plugin run "$T/web.lua" --data "$W" --config "url=http://127.0.0.1:$PORT/x.csv"
	eq "http: exit" "$rc" 0
	has "http: written" "$T/out" "2 new, 0 revised"
	sum=$(sha256sum "$T/www/x.csv" | cut -d' ' -f1)
	has "http: checksum of the download" "$T/out" "sha256:$sum"
	n=$(ls "$W/cache"/*.data 2>/dev/null | wc -l)
	eq "http: cached" "$n" 1
	vg plugin run "$T/web.lua" --data "$W" --config "url=http://127.0.0.1:$PORT/x.csv"
	eq "http again: exit" "$rc" 0
	has "http again: unchanged" "$T/out" "nothing changed"
	has "http again: conditional request answered 304" "$T/http.log" '"GET /x.csv HTTP/1.1" 304'
	vg plugin run "$T/web.lua" --data "$W" --config "url=http://127.0.0.1:$PORT/missing.csv"
	eq "http 404: exit" "$rc" 1
	has "http 404: message" "$T/err" "HTTP status 404"
else
	echo "skip: python3 http.server not available" >&2
fi

summary
