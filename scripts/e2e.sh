#!/usr/bin/env bash
# e2e.sh runs the e2e suite (e2e/, make e2e): every step is printed as it
# runs, with what it checked and measured; the output of the commands it
# drives (make up, terraform, nomad) goes to the full log only, which is
# printed whole around a failure.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
PATH=$("$top/scripts/tools.sh" bindir):$PATH
log=$top/.run/e2e.log
mkdir -p "$top/.run"
echo "== e2e: the full log is $log"
set +e
(cd "$top/e2e" && go test -count=1 -timeout "${E2E_TIMEOUT:-30m}" -v . 2>&1) | tee "$log" |
	grep --line-buffered -vE '^\s+[a-z_]+_test\.go:[0-9]+:   '
rc=${PIPESTATUS[0]}
set -e
if grep -q -- '--- SKIP' "$log"; then
	echo "FAIL: a step was skipped"
	rc=1
fi
if [ "$rc" -ne 0 ]; then
	echo "== e2e failed; the steps that failed, with the commands' output:"
	awk '/^=== RUN/ {buf=""} {buf=buf $0 "\n"} /^    --- FAIL|^--- FAIL/ {printf "%s", buf; buf=""}' "$log" | tail -n 300
fi
exit "$rc"
