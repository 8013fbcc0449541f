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
# The end-to-end runs move by 20-40 % between runs here, so it measures
# finer too: before each run, a probe of cached browses (the CPU the
# containers take per request, from their cgroups, and the throughput at
# 4 clients and the mean latency at 1 with hey); and for the mesh,
# each kind of hop timed alone, plain and mesh side by side (HOP_ROUNDS
# rounds of services/platform/mesh's hop benchmarks), times the hops of
# one traced operation of each profile, counted in the logs.
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

# cpu NAME: what a cached browse costs the shop just deployed, before its
# bench-system run: the leftovers of a run (orders the recovery loop
# settles, outbox mails, full caches) cost CPU for a minute after it, and
# put 50-70 µs of noise into each figure. After WARM_REQUESTS (3000)
# browses to settle: CPU_REQUESTS (20000) at 4 clients (hey), with the
# CPU time the containers' cgroups took per request (HAProxy's, the
# aggregators', and all the containers', logs and metrics too), and the
# throughput; then LAT_REQUESTS (8000) at 1 client, whose throughput is
# the mean latency's inverse. Into $dir/NAME.cpu.json. A fixed count of
# one kind of request, read from the kernel: it moves by a few per cent
# between runs, where bench-system's throughput moves by tens.
cpu() {
	local n=${CPU_REQUESTS:-20000} url="$shop/v1/products?limit=20" names before after
	[ -d /sys/fs/cgroup/cpuacct/docker ] || { log "no cgroup v1 cpuacct for Docker here: no CPU figures"; return 0; }
	# The containers' names, asked once; each snapshot then only reads
	# their cgroups: "HAProxy's aggregators' all" CPU ns.
	names=$(docker ps --no-trunc --format '{{.ID}} {{.Names}}')
	snapshot() {
		local id name u e=0 a=0 t=0
		while read -r id name; do
			u=$(cat "/sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage" 2>/dev/null) || continue
			case $name in haproxy-*) e=$((e + u)) ;; aggregator-*) a=$((a + u)) ;; esac
			t=$((t + u))
		done <<<"$names"
		echo "$e $a $t"
	}
	rps() { sed -n 's/^ *Requests\/sec: *//p' "$1"; }
	hey -n "${WARM_REQUESTS:-3000}" -c 4 "$url" >/dev/null
	before=$(snapshot)
	hey -n "$n" -c 4 "$url" >"$dir/$1.hey.txt"
	after=$(snapshot)
	hey -n "${LAT_REQUESTS:-8000}" -c 1 "$url" >"$dir/$1.hey1.txt"
	jq -n --argjson n "$n" --arg before "$before" --arg after "$after" \
		--argjson rps4 "$(rps "$dir/$1.hey.txt")" --argjson rps1 "$(rps "$dir/$1.hey1.txt")" '
		[($after | split(" ") | map(tonumber)), ($before | split(" ") | map(tonumber))] | transpose | map((.[0] - .[1]) / $n / 1000) as [$e, $a, $t] |
		{requests: $n, edge_us: $e, aggregator_us: $a, all_us: $t, rps_4: $rps4, latency_1_us: (1e6 / $rps1)}' >"$dir/$1.cpu.json"
	log "a cached browse, $1: $(jq -c . "$dir/$1.cpu.json")"
}

# cpu_table: the probes' figures of the runs with the feature against
# those without (medians), appended to cost.md.
cpu_table() {
	ls "$dir"/*.cpu.json >/dev/null 2>&1 || return 0
	jq -rs '
		def med: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
		def side(p): map(select(.name | startswith(p)));
		(side("with-")) as $on | (side("without-")) as $off |
		"\n## A cached browse, probed before each run (\($on | length) with it, \($off | length) without)\n",
		"On the shop just deployed, before its bench-system run: \(.[0].requests) browses at 4 clients, with the CPU time the containers (their cgroups) took, and their throughput; then browses at 1 client, whose throughput gives the mean latency. Medians; the cost is with / without − 1 (for the throughput, 1 − with / without).\n",
		"| measure | with | without | cost |", "|---|---:|---:|---:|",
		(["edge_us", "CPU, HAProxy (µs a request)", 1], ["aggregator_us", "CPU, the aggregators", 1], ["all_us", "CPU, all the containers (logs and metrics too)", 1],
		 ["latency_1_us", "mean latency at 1 client (µs)", 1], ["rps_4", "throughput at 4 clients (/s)", -1]) as [$k, $title, $sign] |
		($on | map(.[$k] // empty) | med) as $w | ($off | map(.[$k] // empty) | med) as $wo |
		select($w != null and $wo != null) |
		"| \($title) | \($w * 10 | round / 10) | \($wo * 10 | round / 10) | \(if $wo > 0 then ((if $sign > 0 then $w / $wo - 1 else 1 - $w / $wo end) * 1000 | round / 10 | tostring) + " %" else "–" end) |"
	' < <(for f in "$dir"/*.cpu.json; do jq --arg n "$(basename "$f" .cpu.json)" '. + {name: $n}' "$f"; done) >>"$dir/cost.md"
	sed -n '/^## A cached browse, probed/,$p' "$dir/cost.md"
}

# hops: the mesh's hops timed alone, plain and mesh side by side, in
# HOP_ROUNDS rounds (services/platform/mesh's BenchmarkEdgeHop and
# BenchmarkCall, with a Consul agent of their own), into $dir/hops.txt.
hops() {
	log "the hops, timed alone: ${HOP_ROUNDS:-8} rounds (log: $dir/hops.txt)"
	(cd "$top/services/platform" && go test -c -o "$dir/mesh.test" ./mesh) >"$dir/hops.txt" 2>&1 ||
		{ log "the mesh's benchmarks do not build:"; tail -n 20 "$dir/hops.txt" >&2; exit 1; }
	for _ in $(seq 1 "${HOP_ROUNDS:-8}"); do
		(cd "$top/services/platform/mesh" && "$dir/mesh.test" -test.run '^$' -test.bench '^Benchmark(EdgeHop|Call)$' \
			-test.benchtime "${HOP_BENCHTIME:-2000x}") >>"$dir/hops.txt" 2>&1 ||
			{ log "a round of the hop benchmarks failed:"; tail -n 20 "$dir/hops.txt" >&2; exit 1; }
	done
}

# trace_lines REPORT: the request log lines of each operation REPORT
# traced (its "traces": one request id per profile), counted by job in
# the cluster's logs, as JSON (profile → job → lines) into
# $dir/trace-lines.json. A line reaches VictoriaLogs seconds after it is
# written: the counts are read again until they stop changing.
trace_lines() {
	local prof id lines prev="" now="{}" n
	for n in $(seq 1 20); do
		now="{}"
		for prof in $(jq -r '.traces // {} | keys[]' "$1"); do
			id=$(jq -r --arg p "$prof" '.traces[$p]' "$1")
			lines=$(RAW=1 SINCE=1h "$top/scripts/logs.sh" "request_id:\"$id\"" 2>"$dir/trace-lines.err") ||
				{ log "cannot read the traced $prof's lines: $(tail -n 1 "$dir/trace-lines.err")"; continue; }
			now=$(jq -s --arg p "$prof" --argjson acc "$now" \
				'$acc + {($p): (map(select(._msg == "request") | ."nomad.job") | group_by(.) | map({(.[0]): length}) | add // {})}' <<<"$lines")
		done
		[ "$n" -gt 3 ] && [ "$now" = "$prev" ] && break
		prev=$now
		sleep 2
	done
	printf '%s\n' "$now" >"$dir/trace-lines.json"
	log "the traced operations' request lines by job: $(jq -c . "$dir/trace-lines.json")"
}

restore() { deploy "$with" || log "the shop is not as it was: run make up"; }
trap restore EXIT
cpu with-1
ons=$(bench with-1)
offs=""
for i in $(seq 1 "${BENCH_PAIRS:-2}"); do
	deploy "$without"
	cpu "without-$i"
	offs=${offs:+$offs,}$(bench "without-$i")
	deploy "$with"
	cpu "with-$((i + 1))"
	ons="$ons $(bench "with-$((i + 1))")"
done
trap - EXIT
extra=()
if [ "$feature" = mesh ]; then
	trace_lines "${ons##* }"
	hops
	extra=(-hops "$dir/hops.txt" -trace-lines "$dir/trace-lines.json")
fi
# shellcheck disable=SC2086 # one argument per report
(cd "$top/bench" && go run ./cmd/bench-system -what "$what" "${extra[@]}" -compare-without "$offs" $ons)
cpu_table
