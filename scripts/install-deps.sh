#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of Vigie from Debian
# packages. Idempotent: packages already present are not touched, and apt is
# only called when something is missing (so `make test` stays fast on a
# machine that already has everything).
set -euo pipefail

# One package per line: what it is for is in README.md ("Dependencies").
PKGS=(
  build-essential pkg-config
  libuv1-dev          # event loop (daemon)
  liblmdb-dev         # the store
  lmdb-utils          # mdb_stat/mdb_dump for operators and debugging
  liblua5.4-dev       # plugin runtime
  libcjson-dev        # JSON for metadata, protocol and plugins
  libcriterion-dev    # unit and integration tests
  libcsv-dev          # CSV parsing (imports, plugins)
  libcurl4-openssl-dev # downloads in plugins
  libsqlite3-dev      # the benchmark's reference database
  libhttp-parser-dev  # HTTP/1.1 request parsing in the daemon
  libzip-dev          # zip members (xlsx, INSEE archives) in plugins
  libexpat1-dev       # xlsx sheet XML in plugins
  python3             # small data-conversion scripts
  curl                # integration scripts
  cppcheck            # make lint (part of make test)
  clang libclang-rt-14-dev # make fuzz (libFuzzer; part of make test)
  nodejs              # the official geography package (package.json), below
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

# Debian's nodejs has npm in a package of its own; other builds of nodejs
# (NodeSource) ship it and conflict with Debian's: ask only when missing.
command -v npm >/dev/null || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  # An old or empty package list makes apt-get install fail on a fresh machine.
  # Another install may hold the dpkg lock (two checkouts set up at once):
  # wait for it instead of failing.
  APT=(apt-get -o DPkg::Lock::Timeout=900)
  $SUDO "${APT[@]}" update -qq
  $SUDO "${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "install-deps: done" >&2
fi

# The official geography (@etalab/decoupage-administratif, pinned in
# package.json and package-lock.json) into node_modules/ at the repository
# root: data for scripts/decoupage_to_territories.py and its tests. npm ci
# only when node_modules is missing or older than the lock file, so a
# machine that has it does not touch the network.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
stamp="$ROOT/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$ROOT/package-lock.json" -nt "$stamp" ]; then
  echo "install-deps: npm ci (node_modules)" >&2
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || {
    echo "install-deps: npm ci failed in $ROOT (the npm registry must be reachable once)" >&2
    exit 1
  }
fi
