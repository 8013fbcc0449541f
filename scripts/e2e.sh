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
	# Go prints a subtest's verdict at the end of its parent, so the
	# failed steps are named first (pass 1), then each one's lines (from
	# its === RUN to the next) are printed (pass 2): the output of the
	# commands it ran (logged as "file_test.go:N:   line"), its last 60
	# lines, then the step's own lines, its last 100, so that a long
	# command output cannot push the verdict out of the summary. A parent
	# whose subtests failed is left out.
	awk 'NR == FNR {
			if (match($0, /--- FAIL: [^ ]+/)) failed[substr($0, RSTART + 10, RLENGTH - 10)] = 1
			next
		}
		FNR == 1 { for (n in failed) for (m in failed) if (index(m, n "/") == 1) delete failed[n] }
		/^=== (RUN|CONT|PAUSE|NAME)/ { flush(); cur = $3 }
		cur in failed {
			if ($0 ~ /_test\.go:[0-9]+:   /) cmd[++c] = $0
			else own[++o] = $0
		}
		function flush(   i) {
			if (c > 0) print "-- the output of its commands (the last 60 lines):"
			for (i = (c > 60 ? c - 59 : 1); i <= c; i++) print cmd[i]
			if (o > 0) print "-- its own lines (the last 100):"
			for (i = (o > 100 ? o - 99 : 1); i <= o; i++) print own[i]
			c = 0; o = 0
		}
		END { flush() }' "$log" "$log"
fi
exit "$rc"
