#!/usr/bin/env bash
# `make run`: load the bundled real sample data into ./var/data once, then
# show it answering queries. Called by the Makefile after install-deps and
# the build. No network: the geography is the committed COG 2024 fixture,
# everything else is ingested by the bundled plugins (plugins/*.lua) from
# the real files shipped in plugins/data/ — the same code the daemon runs.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${VIGIE_DATA:-var/data}
VIGIE=build/vigie
FIX=tests/fixtures/real
mkdir -p "$(dirname "$DATA")"

# Order matters: rpps-free derived ratios last (health_densities only
# declares rules, it needs no data).
PLUGINS="insee_population insee_estimations drees_physicians drees_apl health_densities"

if ! "$VIGIE" --data "$DATA" stat 2>/dev/null | grep -q '^points;[1-9]'; then
	echo "== loading the sample data into $DATA"
	"$VIGIE" --data "$DATA" import territories "$FIX/territories_cog2024.csv"
	for p in $PLUGINS; do
		# insee_population's default path is relative to a data root:
		# plugins/data holds the same INSEE file.
		"$VIGIE" plugin run "plugins/$p.lua" --data "$DATA" --root plugins/data \
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
