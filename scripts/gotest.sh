#!/usr/bin/env bash
# gotest.sh runs the Go tests of the given modules and prints one line per
# test, so the output shows what ran (against which real parts) and that
# nothing was skipped: a skipped test fails the run, because CI installs
# every tool a test needs.
#
#   scripts/gotest.sh [go test flags] -- MODULE_DIR...
set -euo pipefail

flags=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do flags+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "usage: $0 [flags] -- MODULE_DIR..." >&2; exit 2; }

# The real parts the tests start, with their versions.
echo "== real parts: $(consul version 2>/dev/null | sed -n 1p || echo 'consul: missing'); $(nomad version 2>/dev/null | sed -n 1p || echo 'nomad: missing'); PostgreSQL $(postgres --version 2>/dev/null | awk '{print $3}' || echo missing)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
for m in "$@"; do
	echo "== go test $(basename "$m") (${m#"$PWD"/})"
	# -v for the per-test lines; the filter keeps top-level results only.
	set +e
	(cd "$m" && go test "${flags[@]}" -v ./... 2>&1) | tee -a "$log" |
		grep -E --line-buffered '^(--- (PASS|FAIL|SKIP)|ok |FAIL|panic:|pgtest:|\?|# )'
	rc=${PIPESTATUS[0]}
	set -e
	[ "$rc" -eq 0 ] || status=1
done
if grep -q -- '--- SKIP' "$log"; then
	echo "FAIL: some tests were skipped; every tool a test needs is installed by make tools:"
	grep -- '--- SKIP' -A2 "$log"
	status=1
fi
if [ $status -ne 0 ]; then
	# What each failed test wrote (its t.Error and t.Log lines): -v prints
	# them under the test named by the last === RUN/CONT/NAME line, before
	# the --- FAIL summary, which alone says nothing.
	echo "== what the failed tests said:"
	awk '
		/^=== (RUN|CONT|NAME) / { cur = $3; next }
		/^=== PAUSE / { next }
		/^ *--- FAIL: / { if ($3 in out) { printf "--- %s:\n%s", $3, out[$3]; delete out[$3] }; next }
		/^ *--- (PASS|SKIP): / { delete out[$3]; next }
		cur != "" && /^    / { out[cur] = out[cur] $0 "\n" }
	' "$log" | head -n 300
	echo "== failures, in full:"
	grep -B2 -A30 -E -- '--- FAIL|^panic:|^FAIL' "$log" | head -n 200
fi
exit $status
