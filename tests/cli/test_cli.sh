#!/usr/bin/env bash
# End-to-end test of the vigie command-line client on the real INSEE files:
# territories from the COG, populations légales as points, queries in every
# format, export -> import round trip, revisions and --as-of, and the exit
# codes and messages of the error cases.
#
# Env: VIGIE (the binary), VIGIE_SHARED (../shared), VIGIE_ROOT (repo root).
# Exits non-zero if any check failed; the last line is "N passed, M failed".
set -u

VIGIE=${VIGIE:-build/vigie}
ROOT=${VIGIE_ROOT:-.}
SHARED=${VIGIE_SHARED:-../shared}
FIX=$ROOT/tests/fixtures/io
POPS="$SHARED/data/population/popref2025_rp2022/ensemble~Communes.csv"

T=$(mktemp -d /tmp/vigie-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT

. "$(dirname "$0")/lib/assert.sh"

# vg DIR ARGS...: run vigie on a data directory; stdout to $T/out, stderr
# to $T/err, exit code in $rc.
vg() {
	local dir=$1
	shift
	"$VIGIE" --data "$dir" "$@" >"$T/out" 2>"$T/err"
	rc=$?
}

# A number out of `vigie stat` (csv).
stat_of() {
	"$VIGIE" --data "$1" --format csv stat 2>/dev/null |
		awk -F';' -v k="$2" '$1 == k { print $2 }'
}

if [ ! -x "$VIGIE" ]; then
	echo "no vigie binary at $VIGIE" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

# ---- territories: the real COG --------------------------------------------
python3 "$ROOT/scripts/cog_to_territories.py" \
	--cog "$SHARED/data/cog/v_commune_2024.csv" \
	--names "$SHARED/data/population/popref2025_rp2022" \
	--epci "$SHARED/data/epci/EPCI_au_01-01-2024~Composition_communale.csv" \
	--epci-names "$SHARED/data/epci/EPCI_au_01-01-2024~EPCI.csv" \
	>"$T/terr.csv" 2>"$T/cog.err"
eq "cog_to_territories exit" "$?" 0
eq "territory rows" "$(($(wc -l <"$T/terr.csv") - 1))" 38346

A=$T/a
vg "$A" import territories "$T/terr.csv" --published 2001-01-01
eq "import territories exit" "$rc" 0
has "import territories report" "$T/err" "38346 territories defined"
eq "territories in store" "$(stat_of "$A" territories)" 38346
vg "$A" --format csv territories --level arm --in com:75056
eq "Paris arrondissements" "$(($(wc -l <"$T/out") - 1))" 20
vg "$A" --format csv territories --search "st etienne" --level com
eq "search exit" "$rc" 0
eq "search first" "$(sed -n 2p "$T/out" | cut -d';' -f1,3)" "com:42218;Saint-Étienne"
vg "$A" --format csv territories --search "lhay les roses"
eq "search elision" "$(sed -n 2p "$T/out" | cut -d';' -f1)" "com:94038"
vg "$A" --format csv territories --search "bouffere"
eq "search old code" "$(sed -n 2p "$T/out" | cut -d';' -f1,4)" "com:85027;"

# ---- indicators ---------------------------------------------------------
vg "$A" import indicators "$FIX/indicators.json" --published 2001-01-01
eq "import indicators exit" "$rc" 0
eq "indicators in store" "$(stat_of "$A" indicators)" 5

# ---- points: the populations légales 2022 by commune ---------------------
# INSEE code = département + commune (DOM: "97" + the 3-digit commune);
# the COM (975, 977, 978) are not in the COG; Paris, Lyon and Marseille
# come by arrondissement (arm:). Any other unknown code fails the awk.
awk -F';' '
	NR == FNR { if (FNR > 1) { split($1, a, ":"); lv[a[2]] = a[1] } next }
	FNR == 1 { print "indicator;territory;period;value"; next }
	$3 == "975" || $3 == "977" || $3 == "978" { next }
	{
		c = ($3 ~ /^97/ ? substr($3, 1, 2) : $3) $6
		if (!(c in lv)) { print "unknown " c > "/dev/stderr"; exit 1 }
		print "population;" lv[c] ":" c ";2022;" $8
	}' "$T/terr.csv" "$POPS" >"$T/pop.csv"
eq "points file built" "$?" 0
npts=$(($(wc -l <"$T/pop.csv") - 1))
eq "points rows" "$npts" 34960

vg "$A" import points "$T/pop.csv" --published 2023-01-10
eq "import points exit" "$rc" 0
has "import points report" "$T/err" "$npts new, 0 revised"
eq "points in store" "$(stat_of "$A" points)" "$npts"

# ---- queries ----------------------------------------------------------
vg "$A" --format csv series population com:85146
eq "series csv exit" "$rc" 0
eq "series csv header" "$(head -1 "$T/out")" "period;value;status;vintage;published"
eq "series csv row" "$(sed -n 2p "$T/out" | cut -d';' -f1-3)" "2022;20754;ok"
eq "series csv rows" "$(wc -l <"$T/out")" 2
eq "series csv published" "$(sed -n 2p "$T/out" | cut -d';' -f5)" \
	"2023-01-10T23:59:59Z"

vg "$A" --format json series population com:97101
eq "series json exit" "$rc" 0
eq "series json" "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(len(d), d[0]["period"], repr(d[0]["value"]), d[0]["status"])' "$T/out")" \
	"1 2022 51760 ok"

# Vendée: every commune of dep 85 in the points file, and their sum
want_n=$(grep -c ';com:85[0-9][0-9][0-9];' "$T/pop.csv")
want_sum=$(awk -F';' '$2 ~ /^com:85/ { s += $4 } END { print s }' "$T/pop.csv")
vg "$A" --format csv slice population --level com --period 2022 --in dep:85
eq "slice exit" "$rc" 0
eq "slice rows" "$(($(wc -l <"$T/out") - 1))" "$want_n"
eq "slice rows (Vendée has 255 communes)" "$want_n" 255
eq "slice sum" "$(awk -F';' 'NR > 1 { s += $3 } END { print s }' "$T/out")" \
	"$want_sum"
has "slice names" "$T/out" "com:85146;Montaigu-Vendée;20754;ok"

# aggregate: the département computed from its communes equals their sum
vg "$A" --format csv aggregate population --period 2022 --territory dep:85
eq "aggregate exit" "$rc" 0
eq "aggregate dep:85" "$(sed -n 2p "$T/out" | cut -d';' -f1,3-9,12)" \
	"dep:85;$want_sum;ok;computed;255;255;0;0;complete"
vg "$A" --format csv aggregate population --period 2022 --level dep --in reg:52
eq "aggregate level rows (5 départements in Pays de la Loire)" \
	"$(($(wc -l <"$T/out") - 1))" 5
vg "$A" aggregate population --level dep
eq "aggregate without --period exit" "$rc" 2

# compare: the commune, then what contains it, then France, with gaps
vg "$A" --format csv compare population com:85146 --period 2022
eq "compare exit" "$rc" 0
eq "compare first row" "$(sed -n 2p "$T/out" | cut -d';' -f1,4,6)" \
	"com:85146;20754;published"
has "compare has the département" "$T/out" "dep:85;Vendée;1;$want_sum"
eq "compare ends with France" "$(tail -1 "$T/out" | cut -d';' -f1)" fr
# rank among the communes of its département
vg "$A" --format csv rank population com:85146 --period 2022 --in dep:85
eq "rank exit" "$rc" 0
want_pos=$(awk -F';' '$2 ~ /^com:85/ && $4 > 20754 { n++ } END { print n + 1 }' "$T/pop.csv")
eq "rank position" "$(sed -n 2p "$T/out" | cut -d';' -f4,5)" "$want_pos;255"
vg "$A" rank population com:85146 --period 2022 --in dep:44
eq "rank outside its parent exit" "$rc" 2
has "rank outside message" "$T/err" "is not within 'dep:44'"

# disparities among the communes of Vendée: count, min and max
vg "$A" --format csv disparities population dep:85 --period 2022
eq "disparities exit" "$rc" 0
want_min=$(awk -F';' '$2 ~ /^com:85/ { if (m == "" || $4 < m) m = $4 } END { print m }' "$T/pop.csv")
want_max=$(awk -F';' '$2 ~ /^com:85/ { if ($4 > m) m = $4 } END { print m }' "$T/pop.csv")
eq "disparities count/min/max" "$(sed -n 2p "$T/out" | cut -d';' -f3,4,5,9)" \
	"255;255;$want_min;$want_max"
# profile: every indicator of the period, for the territory and its containers
vg "$A" --format csv profile dep:85 --period 2022
eq "profile exit" "$rc" 0
has "profile population of the département" "$T/out" "population;Population municipale;habitants;dep:85;0;$want_sum"

vg "$A" --format json slice population --level arm --period 2022 --in com:69123
eq "slice json arm" "$(python3 -c '
import json, sys
print(len(json.load(open(sys.argv[1]))))' "$T/out")" 9

# ---- export -> import into a fresh store -> export: identical -----------
vg "$A" export points
eq "export exit" "$rc" 0
cp "$T/out" "$T/exp_a.csv"
eq "export rows" "$(($(wc -l <"$T/exp_a.csv") - 1))" "$npts"
has "export line" "$T/exp_a.csv" "population;com:85146;2022;20754;ok"

B=$T/b
vg "$B" import territories "$T/terr.csv" --published 2001-01-01
eq "b: territories" "$rc" 0
vg "$B" import indicators "$FIX/indicators.json" --published 2001-01-01
eq "b: indicators" "$rc" 0
vg "$B" import points "$T/exp_a.csv" --published 2023-01-10
eq "b: import the export" "$rc" 0
vg "$B" export points
cp "$T/out" "$T/exp_b.csv"
if cmp -s "$T/exp_a.csv" "$T/exp_b.csv"; then ok; else
	ko "round trip: exports differ: $(diff "$T/exp_a.csv" "$T/exp_b.csv" | head -5)"
fi
# the export re-imported into its own store changes nothing
vint=$(stat_of "$A" vintages)
vg "$A" import points "$T/exp_a.csv"
eq "re-import export exit" "$rc" 0
has "re-import export" "$T/err" "nothing changed"
eq "re-import: no vintage" "$(stat_of "$A" vintages)" "$vint"

# ---- errors -------------------------------------------------------------
# A bad row: exit 1, located, and the store is untouched.
before=$(sha256sum <"$A/data.mdb")
npts_before=$(stat_of "$A" points)
vg "$A" import points "$FIX/points_bad_period.csv"
eq "bad row exit" "$rc" 1
has "bad row located" "$T/err" "points_bad_period.csv:3:22:"
has "bad row says nothing imported" "$T/err" "nothing was imported"
eq "bad row: points unchanged" "$(stat_of "$A" points)" "$npts_before"
eq "bad row: vintages unchanged" "$(stat_of "$A" vintages)" "$vint"
eq "bad row: data.mdb unchanged" "$(sha256sum <"$A/data.mdb")" "$before"

vg "$A" frobnicate
eq "unknown command exit" "$rc" 2
has "unknown command message" "$T/err" "unknown command 'frobnicate'"
vg "$A" --format xml series population com:85146
eq "--format xml exit" "$rc" 2
has "--format xml message" "$T/err" "unknown format 'xml'"
vg "$A" series population com:99999
eq "unknown territory exit" "$rc" 1
has "unknown territory message" "$T/err" "unknown territory 'com:99999'"
vg "$A" series nope com:85146
eq "unknown indicator exit" "$rc" 1
has "unknown indicator message" "$T/err" "unknown indicator 'nope'"
vg "$A" series population com:85146 --from 2022-13
eq "bad period exit" "$rc" 2
vg "$A" import widgets "$T/pop.csv"
eq "unknown import kind exit" "$rc" 2
vg "$A" import points "$T/no-such-file.csv"
eq "missing file exit" "$rc" 1
has "missing file message" "$T/err" "no-such-file.csv"

# ---- revisions and --as-of ------------------------------------------------
printf 'indicator;territory;period;value\npopulation;com:85146;2022;20801\n' \
	>"$T/rev.csv"
vg "$A" import points "$T/rev.csv" --published 2024-01-10
eq "revision exit" "$rc" 0
has "revision report" "$T/err" "0 new, 1 revised, 0 unchanged"
vg "$A" --format csv series population com:85146
eq "latest value" "$(sed -n 2p "$T/out" | cut -d';' -f2)" 20801
vg "$A" --format csv series population com:85146 --as-of 2023-06-30
eq "as-of value" "$(sed -n 2p "$T/out" | cut -d';' -f2)" 20754
vg "$A" --format csv series population com:85146 --as-of 2022-06-30
eq "as-of before any import" "$(wc -l <"$T/out")" 1
vg "$A" --format csv history population com:85146 2022
eq "history" "$(cut -d';' -f2 "$T/out" | tr '\n' ' ')" "value 20754 20801 "

# ---- versioned perimeters ---------------------------------------------------
# A CLS across Loire-Atlantique and Vendée: 3 communes from 2019, 4 from
# 2023 (last: a definition is a vintage of now). Its 2022 value uses the 2019 membership, or with --membership
# latest the 2023 one; both checked against awk sums of the imported file.
popsum() {
	awk -F';' -v set="$1" 'BEGIN { n = split(set, a, ","); for (i = 1; i <= n; i++) m[a[i]] = 1 }
		$1 == "population" && ($2 in m) { s += $4 } END { print s }' "$T/pop.csv"
}
V1=com:44001,com:44002,com:85001
V2=$V1,com:85003
vg "$A" perimeter define cls:sud-loire --name "CLS Sud-Loire" --members "$V1" --from 2019
eq "perimeter define exit" "$rc" 0
vg "$A" perimeter define cls:sud-loire --members "$V2" --from 2023
eq "perimeter second version exit" "$rc" 0
vg "$A" perimeter define cls:sud-loire --members com:44001,dep:44 --from 2024
eq "perimeter overlapping members exit" "$rc" 1
has "perimeter overlap named" "$T/err" "member 'com:44001' lies within member 'dep:44'"
vg "$A" perimeter define cls:nameless --members com:44001
eq "new perimeter without name exit" "$rc" 2
has "new perimeter without name message" "$T/err" "name: required"
vg "$A" perimeter frobnicate cls:sud-loire
eq "perimeter bad subcommand exit" "$rc" 2
vg "$A" --format csv perimeter show cls:sud-loire
eq "perimeter show exit" "$rc" 0
eq "perimeter versions" "$(sed -n '2p;3p' "$T/out" | cut -d';' -f1-3 | tr '\n' ' ')" "2019;2023;3 2023;;4 "
vg "$A" --format csv aggregate population --territory cls:sud-loire --period 2022
eq "perimeter 2022 in force" "$(sed -n 2p "$T/out" | cut -d';' -f3)" "$(popsum "$V1")"
vg "$A" --format json aggregate population --territory cls:sud-loire --period 2022
has "perimeter membership named" "$T/out" $'"membership_from":\t"2019"'
vg "$A" --format csv aggregate population --territory cls:sud-loire --period 2022 --membership latest
eq "perimeter 2022 latest" "$(sed -n 2p "$T/out" | cut -d';' -f3)" "$(popsum "$V2")"
vg "$A" --format csv territories --level cls
eq "perimeter listed with latest members" "$(sed -n 2p "$T/out" | cut -d';' -f1,5)" "cls:sud-loire;4"
# The communes within it follow the membership of the period too:
# com:85003 joined in 2023, so in 2022 it is not within the CLS (rank
# refuses it) and the CLS has 3 communes; on the latest membership, 4.
vg "$A" --format csv rank population com:85003 --in cls:sud-loire --period 2022
eq "perimeter rank of a later member in 2022: exit" "$rc" 2
has "perimeter rank of a later member: message" "$T/err" "'com:85003' is not within 'cls:sud-loire'"
vg "$A" --format csv rank population com:85003 --in cls:sud-loire --period 2022 --membership latest
eq "perimeter rank on the latest membership" "$(sed -n 2p "$T/out" | cut -d';' -f1,2)" "com:85003;cls:sud-loire"
vg "$A" --format csv aggregate population --level com --in cls:sud-loire --period 2022
eq "perimeter communes in 2022" "$(tail -n +2 "$T/out" | wc -l)" 3
vg "$A" --format csv aggregate population --level com --in cls:sud-loire --period 2022 --membership latest
eq "perimeter communes on the latest membership" "$(tail -n +2 "$T/out" | wc -l)" 4
vg "$A" --format csv slice population --level com --in cls:sud-loire --period 2022
eq "perimeter slice in 2022" "$(tail -n +2 "$T/out" | cut -d';' -f1 | sort | tr '\n' ' ')" "com:44001 com:44002 com:85001 "
vg "$A" --format csv slice population --level com --in cls:sud-loire --period 2022 --membership latest
eq "perimeter slice on the latest membership" "$(tail -n +2 "$T/out" | wc -l)" 4

summary
