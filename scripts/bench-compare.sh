#!/usr/bin/env bash
# bench-compare.sh measures what a feature of the deployed shop costs its
# users, in one run on the running `make up` shop: bench-system's browse
# and checkout as deployed, then with the shop redeployed without the
# feature, then as deployed again; each run is against its own reference,
# and bench-system -compare-without says the cost, with against without.
# The shop is always redeployed as it was, even when a step fails.
#
#   scripts/bench-compare.sh mesh   the mesh: mutual TLS between every service, intentions
#                                   checked (without: TF_VAR_mesh=false, plain HTTP inside)
#   scripts/bench-compare.sh logs   the services' info-level logs, one line per request
#                                   (without: TF_VAR_log_level=warn)
#
# make bench-mesh and make bench-logs call it. MESH_LEVELS are the
# concurrency levels (1,4,16); BENCH_FLAGS passes flags to bench-system
# (-duration 8s by default). Deploy the shop without the rate limiter, and
# keep the same TF_VAR_* for this script (it redeploys with them): with
# it, 429s make the figures the limiter's, not the shop's:
#   export TF_VAR_aggregator_extra_env='{"AGGREGATOR_RATE_LIMIT":"0"}'; make up; make bench-mesh
# The reports are under .run/bench/<feature>-<time>/.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
log() { printf 'bench-compare: %s\n' "$*" >&2; }

case "${1:-}" in
mesh) what="the mesh (mutual TLS, intentions)" var=mesh with=true without=false ;;
logs) what="info-level logs" var=log_level with=info without=warn ;;
*)
	echo "usage: $0 mesh|logs" >&2
	exit 2
	;;
esac
feature=$1

out=$("$top/scripts/tf-local.sh" output 2>/dev/null) || { log "no shop is up: run make up first"; exit 1; }
shop=$(sed -n 's/^shop_url = "\(.*\)"$/\1/p' <<<"$out")
mail=$(sed -n 's/^mailsink_url = "\(.*\)"$/\1/p' <<<"$out")
dir=$top/.run/bench/$feature-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$dir"

# bench NAME: one bench-system run, its report in $dir/NAME/.
bench() {
	log "bench-system, $1 (log: $dir/$1.log)"
	(cd "$top/bench" && go run ./cmd/bench-system -shop "$shop" -mailsink "$mail" -profiles browse,checkout \
		-levels "${MESH_LEVELS:-1,4,16}" -out "$dir/$1" ${BENCH_FLAGS:--duration 8s}) >"$dir/$1.log" 2>&1 ||
		{ log "bench-system failed:"; tail -n 20 "$dir/$1.log" >&2; exit 1; }
	ls "$dir/$1"/*.json
}

# deploy VALUE: the shop with TF_VAR_<var>=VALUE.
deploy() {
	log "deploying the shop with $var=$1 (log: $dir/deploy-$1.log)"
	env "TF_VAR_$var=$1" "$top/scripts/tf-local.sh" up >>"$dir/deploy-$1.log" 2>&1 ||
		{ log "the deploy failed:"; tail -n 20 "$dir/deploy-$1.log" >&2; return 1; }
}

restore() { deploy "$with" || log "the shop is not as it was: run make up"; }
trap restore EXIT
ons=$(bench with-1)
offs=""
for i in $(seq 1 "${BENCH_PAIRS:-2}"); do
	deploy "$without"
	offs=${offs:+$offs,}$(bench "without-$i")
	deploy "$with"
	ons="$ons $(bench "with-$((i + 1))")"
done
trap - EXIT
# shellcheck disable=SC2086 # one argument per report
cd "$top/bench" && go run ./cmd/bench-system -what "$what" -compare-without "$offs" $ons
