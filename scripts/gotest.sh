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
	# The context of each failure, in full, then (last, so that a reader of
	# only the tail sees it) what each failed test said. Nothing here may
	# end the script early: a reader closing the pipe (head) would
	# otherwise stop it with SIGPIPE under pipefail.
	echo "== failures, in full:"
	grep -B2 -A30 -E -- '--- FAIL|^panic:|^FAIL' "$log" | awk 'NR <= 200' || true
	# -v prints a test's t.Error and t.Log lines under the test named by
	# the last === RUN/CONT/NAME line, before its --- FAIL summary. Only
	# each message's first line is kept (a dumped service log continues on
	# indented lines), cut to 240 bytes, and of many messages the first six
	# and the last two. Tests that failed in their own right (no failed
	# subtest) come first, their parents after.
	echo "== what the failed tests said:"
	awk '
		/^=== (RUN|CONT|NAME) / { cur = $3; next }
		/^=== PAUSE / { next }
		/^ *--- FAIL: / { order[n++] = $3; next }
		/^ *--- (PASS|SKIP): / { delete said[$3]; delete before[$3]; delete last[$3]; next }
		cur != "" && /^    [^ ].*\.go:[0-9]+: / {
			line = substr($0, 1, 240) "\n"
			if (count[cur]++ < 6) said[cur] = said[cur] line
			else { before[cur] = last[cur]; last[cur] = line }
		}
		END {
			for (i = 0; i < n; i++) for (j = 0; j < n; j++)
				if (index(order[j], order[i] "/") == 1) parent[order[i]] = 1
			for (pass = 0; pass < 2; pass++) for (i = 0; i < n; i++) {
				t = order[i]
				if ((t in parent) != pass) continue
				more = count[t] - 6
				printf "--- %s:\n%s", t, said[t]
				if (more > 2) printf "    … %d more …\n", more - 2
				printf "%s%s", (more > 1 ? before[t] : ""), last[t]
			}
		}
	' "$log" || true
fi
exit $status
