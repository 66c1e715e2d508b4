#!/usr/bin/env bash
# The bundled plugins from the command line, as `make run` uses them: every
# manifest checks; plugins/data holds byte copies of the shared real files
# (plugins/data/SHA256SUMS, the checksums of ../shared/data/SOURCES.md);
# a store loaded offline by the plugins answers the issue's question (APL
# of Montaigu-Vendée with its EPCI, département, région and France) and
# the physician density matches the published one; the Assurance Maladie
# plugin reads its URL from the config (here a local http server).
#
# The cog plugin, on the INSEE files of plugins/data (no ../shared), defines
# exactly the territories of the committed fixture, passage table included,
# and a store loaded by the plugins alone (as `make run` does) answers.
#
# Env: VIGIE (the binary), VIGIE_ROOT (repo root), VIGIE_SHARED (../shared).
# Exits non-zero if any check failed; the last line is "N passed, M failed".
set -u

VIGIE=${VIGIE:-build/vigie}
ROOT=${VIGIE_ROOT:-.}
SHARED=${VIGIE_SHARED:-../shared}
P=$ROOT/plugins

T=$(mktemp -d /tmp/vigie-bundled-cli-XXXXXX)
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

# ---- manifests and bundled data ----------------------------------------------
for f in "$P"/*.lua; do
	vg plugin check "$f"
	eq "check $(basename "$f")" "$rc" 0
done
vg plugin check "$P/health_densities.lua"
has "health_densities: ratio rule" "$T/out" "ratio(physicians, population_estimee, 100000)"
if (cd "$P/data" && sha256sum --quiet -c SHA256SUMS) >"$T/sum" 2>&1; then ok; else
	ko "plugins/data differs from SOURCES.md: $(cat "$T/sum")"
fi

# ---- an offline store, loaded by the plugins ----------------------------------
D=$T/data
"$VIGIE" --data "$D" import territories "$ROOT/tests/fixtures/real/territories_cog2024.csv" >/dev/null 2>&1
for p in insee_estimations drees_physicians drees_apl health_densities; do
	vg plugin run "$P/$p.lua" --data "$D"
	eq "run $p: exit" "$rc" 0
done
vg --data "$D" --format csv compare apl_mg com:85146 --period 2021
eq "compare apl: exit" "$rc" 0
has "apl: the commune, published" "$T/out" "com:85146;Montaigu-Vendée;0;3.983;ok;published"
has "apl: its EPCI, computed" "$T/out" "epci:200070233;"
for t in "dep:85;Vendée" "reg:52;Pays de la Loire" "fr;France"; do
	has "apl: $t" "$T/out" "$t;"
done
v=$(grep '^epci:200070233;' "$T/out" | cut -d';' -f4)
eq "apl: EPCI weighted mean" "$(printf '%.3f' "$v")" "3.751"
v=$(grep '^fr;' "$T/out" | cut -d';' -f4)
eq "apl: France weighted mean" "$(printf '%.3f' "$v")" "3.811"

vg --data "$D" --format csv aggregate physician_density --period 2025 --territory fr
v=$(grep '^fr;' "$T/out" | cut -d';' -f3)
eq "physician density France rounds to the published 346" "$(printf '%.0f' "$v")" "346"
vg --data "$D" --format csv aggregate physician_density --period 2025 --territory zone:france-metropolitaine
v=$(grep '^zone:' "$T/out" | cut -d';' -f3)
eq "physician density metro rounds to the published 347" "$(printf '%.0f' "$v")" "347"

# A wrong period is refused with the file and line.
vg plugin run "$P/drees_physicians.lua" --data "$D" --config period=2024
eq "wrong period: exit" "$rc" 1
has "wrong period: located" "$T/err" "TCRD_068~DEP.csv:1: title"

# ---- cog: the geography from the INSEE files = the committed fixture --------------
# (anciens_codes off: the fixture, like the COG, has only the communes
# déléguées / associées as old codes; the package's are checked below).
G=$T/geo
vg plugin run "$P/cog.lua" --data "$G" --config anciens_codes=
eq "cog: exit" "$rc" 0
has "cog: counts" "$T/err" "18 régions, 101 départements, 1255 EPCI, 34935 communes, 45 arrondissements municipaux, 1991 old commune codes"
has "cog: EPCI across borders" "$T/err" "89 EPCI cross a département border (26 of them a région border)"
# The JSON listing carries the successors; written back as the fixture's
# columns (code;level;name;parent_codes;successors, a weight-1 successor
# without its weight) the two must be identical, line for line.
"$VIGIE" --data "$G" --format json territories --limit 100000 >"$T/geo.json"
python3 - "$T/geo.json" >"$T/geo.txt" <<'PY'
import json, sys
for t in json.load(open(sys.argv[1], encoding="utf-8")):
    su = t.get("successors", [])
    if len(su) == 1 and abs(su[0]["weight"] - 1) < 1e-12:
        s = su[0]["code"]
    else:
        s = "|".join(f"{e['code']}={e['weight']:.10g}" for e in su)
    print(";".join([t["code"], t["level"], t["name"], t["parent_codes"], s]))
PY
LC_ALL=C sort -o "$T/geo.txt" "$T/geo.txt"
python3 - "$ROOT/tests/fixtures/real/territories_cog2024.csv" >"$T/fix.txt" <<'PY'
import csv, sys
for r in csv.DictReader(open(sys.argv[1], encoding="utf-8"), delimiter=";"):
    print(";".join([r["code"], r["level"], r["name"], r["parent_codes"], r["successors"]]))
PY
LC_ALL=C sort -o "$T/fix.txt" "$T/fix.txt"
eq "cog: territories" "$(wc -l <"$T/geo.txt")" 38346
eq "cog: old codes" "$(awk -F';' '$5 != ""' "$T/geo.txt" | wc -l)" 1991
has "cog: Boufféré -> Montaigu-Vendée" "$T/geo.txt" "com:85027;com;Boufféré;;com:85146"
if cmp -s "$T/geo.txt" "$T/fix.txt"; then ok; else
	ko "cog: differs from the fixture: $(diff "$T/geo.txt" "$T/fix.txt" | head -5)"
fi
# As `make run` runs it: with the anciensCodes of the npm package (on the
# node_modules root), the communes absorbed outright become old codes too
# (Osmery absorbed 18131 in a fusion simple: no COMD row in the COG).
vg plugin run "$P/cog.lua" --data "$G" --root "$ROOT/node_modules"
eq "cog + anciensCodes: exit" "$rc" 0
has "cog + anciensCodes: counts" "$T/err" "4180 old commune codes"
has "cog + anciensCodes: absorbed outright" "$T/err" "2189 of the old codes are former communes absorbed outright"
vg --data "$G" --format json territories --search "ancienne commune dans Osmery"
has "cog + anciensCodes: 18131 -> Osmery" "$T/out" 'com:18173'
# Run again on unchanged files: nothing new (the daemon's yearly run
# then triggers none of the plugins listing cog in `after`).
vg plugin run "$P/cog.lua" --data "$G" --root "$ROOT/node_modules"
eq "cog again: exit" "$rc" 0
has "cog again: nothing new" "$T/out" "nothing changed (no vintage recorded)"
# The other plugins on the geography cog wrote, as `make run` does.
for p in insee_population insee_estimations drees_apl; do
	vg plugin run "$P/$p.lua" --data "$G" --root "$P/data"
	eq "run $p on cog's geography: exit" "$rc" 0
done
vg --data "$G" --format csv compare apl_mg com:85146 --period 2021
has "cog store: APL of Montaigu-Vendée" "$T/out" "com:85146;Montaigu-Vendée;0;3.983;ok;published"
vg --data "$G" --format csv aggregate population --territory dep:85 --period 2022
v=$(grep '^dep:85;' "$T/out" | cut -d';' -f3)
want=$(awk -F';' 'NR > 1 && $3 == "85" { print $8 }' "$P/data/population/popref2025_rp2022/ensemble~Departements.csv" | head -1)
eq "cog store: population of Vendée = the published one" "$v" "$want"

# ---- population_series: the npm packages of node_modules/ (npm ci) ----------------
vg plugin run "$P/population_series.lua" --data "$D" --root "$ROOT/node_modules"
eq "population_series: exit" "$rc" 0
has "population_series: rows" "$T/out" "rows written 139795, rejected 447"
vg --data "$D" --format csv series population com:85146
for y in "2020;20578" "2021;20605" "2022;20754" "2023;21134"; do
	has "population_series: Montaigu-Vendée $y" "$T/out" "$y;ok"
done

# ---- ameli: the URL is configuration ----------------------------------------------
if python3 -c 'import http.server' 2>/dev/null; then
	mkdir -p "$T/www"
	cp "$ROOT/tests/fixtures/plugins/ameli/demographie-effectifs-et-les-densites.csv" "$T/www/export.csv"
	cp "$ROOT/tests/fixtures/plugins/ameli/patients-longueduree-annuelle.csv" "$T/www/ald.csv"
	PORT=$((20000 + RANDOM % 20000))
	(cd "$T/www" && exec python3 -m http.server "$PORT" --bind 127.0.0.1) 2>"$T/http.log" >/dev/null &
	SERVER=$!
	for _ in $(seq 50); do
		curl -s -o /dev/null "http://127.0.0.1:$PORT/export.csv" && break
		sleep 0.1
	done
	vg plugin run "$P/ameli_open_data.lua" --data "$D" --config "url=http://127.0.0.1:$PORT/export.csv" \
		--config "ald_url=http://127.0.0.1:$PORT/ald.csv"
	eq "ameli over http: exit" "$rc" 0
	has "ameli over http: rows" "$T/out" "rows written 22, rejected 2"
	vg --data "$D" --format csv series ald_no_mt_share_pub dep:85
	has "ameli: ALD share, decimal comma" "$T/out" "2023;3.4;ok"
	vg --data "$D" --format csv series gp_liberal_count dep:44
	has "ameli: NS is suppressed" "$T/out" "2024;;suppressed"
	cp "$ROOT/tests/fixtures/plugins/ameli/patients-sans-medecin-traitant.csv" "$T/www/nomt.csv"
	vg plugin run "$P/ameli_no_mt.lua" --data "$D" --config "url=http://127.0.0.1:$PORT/nomt.csv"
	eq "ameli_no_mt over http: exit" "$rc" 0
	has "ameli_no_mt over http: rows" "$T/out" "rows written 20, rejected 1"
else
	echo "skip: python3 http.server not available" >&2
fi

summary
