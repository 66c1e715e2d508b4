#!/usr/bin/env bash
# `make run`: load the bundled real sample data (COG 2024 geography,
# populations légales 2022) into ./var/data once, then show it answering
# queries. Called by the Makefile after install-deps and the build.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${VIGIE_DATA:-var/data}
VIGIE=build/vigie
FIX=tests/fixtures/real
mkdir -p "$(dirname "$DATA")"

if ! "$VIGIE" --data "$DATA" stat 2>/dev/null | grep -q '^points;[1-9]'; then
	echo "== loading the sample data into $DATA"
	"$VIGIE" --data "$DATA" import territories "$FIX/territories_cog2024.csv"
	"$VIGIE" --data "$DATA" import indicators "$FIX/indicators.json"
	"$VIGIE" --data "$DATA" import points "$FIX/population_2022.csv"
fi

echo
echo "== $DATA"
"$VIGIE" --data "$DATA" --format table stat
echo
echo "== vigie --data $DATA series population com:36044   (Châteauroux)"
"$VIGIE" --data "$DATA" --format table series population com:36044
echo
echo "== vigie --data $DATA aggregate population --period 2022 --level reg"
"$VIGIE" --data "$DATA" --format table aggregate population --period 2022 --level reg
echo
echo "== vigie --data $DATA slice population --level arm --period 2022 --in com:69123   (Lyon)"
"$VIGIE" --data "$DATA" --format table slice population --level arm --period 2022 --in com:69123
echo
cat <<MSG
Ready. Query the store with build/vigie --data $DATA (see 'build/vigie help').
The daemon and its socket API (build/vigied) are the subject of issue 6 and
are not in this build yet: queries run offline, straight on the store.
MSG
