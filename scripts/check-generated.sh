#!/usr/bin/env bash
# check-generated.sh regenerates the code made from openapi/*.yaml and fails
# when that changes any generated file (*.gen.go): the committed code was
# stale. It compares contents, not git state, so it works in a dirty tree.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
snapshot() { find . -name '*.gen.go' -not -path './.run/*' -print0 | sort -z | xargs -0r sha256sum; }
before=$(snapshot)
make -s generate
after=$(snapshot)
if [ "$before" != "$after" ]; then
	echo "generated code is stale; run 'make generate' and commit the result:"
	diff <(echo "$before") <(echo "$after") || true
	exit 1
fi
echo "generated code: up to date ($(echo -n "$after" | grep -c . || true) files)"
