#!/usr/bin/env bash
# docs/protocol.md embeds the operation reference generated from the op
# table: the two must not drift apart.
set -u
cd "$(dirname "$0")/../.."
if VIGIED=${VIGIED:-build/vigied} bash scripts/gen-protocol-doc.sh --check; then
	echo "ok - docs/protocol.md matches the op table"
	echo "1 passed, 0 failed"
else
	echo "FAIL: docs/protocol.md is out of date"
	echo "0 passed, 1 failed"
	exit 1
fi
