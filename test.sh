#!/usr/bin/env bash
# Runs the whole test suite the way CI does, from a clean clone, and ends with one line:
#   N passed, N failed[, N skipped]
# computed from the test results. Installs what the tests need when it is missing.
set -euo pipefail
cd "$(dirname "$0")"

# apt_need COMMAND PACKAGE: install PACKAGE from Debian when COMMAND is missing (tests never skip for it).
apt_updated=0
apt_need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: '$1' is missing; install the Debian package '$2' (or run as root)" >&2
    exit 1
  fi
  if [ "$apt_updated" -eq 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

command -v dotnet >/dev/null 2>&1 || { echo "test.sh: the .NET 10 SDK (dotnet) is required" >&2; exit 1; }
# The board's tests drive Debian's Chromium through Microsoft.Playwright (its node driver ships in the NuGet
# package; no browser download). The client library's unit tests run under node's built-in test runner,
# started from an NUnit test so that they count in the total below.
apt_need chromium chromium
apt_need node nodejs
apt_need npm npm
# The JS client package's dev dependencies (real react and react-dom, esbuild, typescript), pinned in
# clients/js/package-lock.json: `npm ci` when node_modules is missing or older than the lockfile.
if [ ! -f clients/js/node_modules/.package-lock.json ] || [ clients/js/package-lock.json -nt clients/js/node_modules/.package-lock.json ]; then
  (cd clients/js && npm ci --no-audit --no-fund --loglevel=error)
fi
apt_need shellcheck shellcheck              # install.sh is checked by the tests
apt_need systemd-analyze systemd            # ... and so is the unit it writes
apt_need nats-server nats-server            # the scale-out tests run a real NATS server (JetStream)
apt_need nginx nginx                        # the shipped nginx config is tested in front of a daemon

results="TestResults"
rm -rf "$results"
status=0
dotnet test PriceDaemon.sln -c Release --logger trx --results-directory "$results" "$@" || status=$?

passed=0 failed=0 skipped=0 runs=0
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  runs=$((runs + 1))
  counters=$(grep -o '<Counters [^>]*>' "$trx")
  get() { echo "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
  passed=$((passed + $(get passed)))
  failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
  skipped=$((skipped + $(get total) - $(get executed)))
done

# A run that crashed before writing results, or failed to build, is a failure, never "0 failed".
if [ "$runs" -eq 0 ] || { [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; }; then
  failed=$((failed + 1))
  status=1
fi

summary="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
exit "$status"
