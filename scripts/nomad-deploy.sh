#!/usr/bin/env bash
# nomad-deploy.sh submits a job and waits until it is healthy, or stops one
# and waits until nothing of it runs. terraform/modules/shop calls it for
# every job; an operator can too.
#
#   scripts/nomad-deploy.sh run JOBFILE [-var k=v ...]
#       submit, then wait for the deployment of the submitted version to
#       succeed and for each of its services to have as many passing
#       instances in Consul as the group has allocations. Fails when the
#       deployment fails (auto_revert then brings the previous version back)
#       or on the deadline. A batch job (periodic or parameterized) is only
#       registered. A system job (one allocation per client) is waited for
#       until every allocation it should run is of the submitted version
#       and running, and its services pass as above (one instance per
#       allocation).
#   scripts/nomad-deploy.sh submit JOBFILE [-var k=v ...]
#       run without waiting: for what `make up` need not wait for (the logs
#       and metrics, deployed after the shop).
#   scripts/nomad-deploy.sh wait JOB
#       wait as above for the job's current version.
#   scripts/nomad-deploy.sh stop JOB
#       stop, wait until every allocation is terminal, purge.
#
# NOMAD_ADDR and CONSUL_HTTP_ADDR say where the cluster is, NOMAD_TOKEN(_FILE)
# and CONSUL_HTTP_TOKEN(_FILE) with which token; DEPLOY_TIMEOUT
# (seconds, default 300) bounds each wait.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
PATH=$("$top/scripts/tools.sh" bindir):$PATH
export NOMAD_CLI_SHOW_HINTS=0
NOMAD_ADDR=${NOMAD_ADDR:-https://127.0.0.1:4646}
CONSUL_HTTP_ADDR=${CONSUL_HTTP_ADDR:-https://127.0.0.1:8500}
case $CONSUL_HTTP_ADDR in http*) ;; *) CONSUL_HTTP_ADDR=https://$CONSUL_HTTP_ADDR ;; esac
export NOMAD_ADDR CONSUL_HTTP_ADDR
DEPLOY_TIMEOUT=${DEPLOY_TIMEOUT:-300}

log() { printf 'nomad-deploy: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}
# shellcheck source=scripts/cluster-access.sh
. "$top/scripts/cluster-access.sh"
nomad_get() { curl -fsS --max-time 10 "${nomad_curl[@]}" "$NOMAD_ADDR/v1/$1"; }
consul_get() { curl -fsS --max-time 10 "${consul_curl[@]}" "$CONSUL_HTTP_ADDR/v1/$1"; }

# why JOB: what the allocations of the job say, for a failure message.
why() {
	nomad_get "job/$1/allocations" 2>/dev/null | jq -r '
		sort_by(.CreateTime) | reverse | .[:4][] |
		"  alloc \(.ID[:8]) v\(.JobVersion) \(.ClientStatus): " +
		([.TaskStates // {} | to_entries[] | "\(.key)=\(.value.State)" +
			(if (.value.Events | length) > 0 then " (\(.value.Events[-1].DisplayMessage))" else "" end)] | join(", "))' >&2 || true
}

# wait_healthy JOB VERSION
wait_healthy() {
	local job=$1 version=$2 deadline=$((SECONDS + DEPLOY_TIMEOUT)) d status desc
	while :; do
		d=$(nomad_get "job/$job/deployments" | jq -c --argjson v "$version" '[.[] | select(.JobVersion == $v)] | sort_by(.CreateIndex) | last // empty')
		status=$(jq -r '.Status // empty' <<<"$d")
		case $status in
		successful) break ;;
		failed | cancelled)
			desc=$(jq -r '.StatusDescription' <<<"$d")
			why "$job"
			die "$job v$version: deployment $status: $desc"
			;;
		esac
		if [ $SECONDS -ge $deadline ]; then
			why "$job"
			die "$job v$version: not healthy after ${DEPLOY_TIMEOUT}s (deployment: ${status:-none yet})"
		fi
		sleep 1
	done
	wait_services "$job" "$deadline"
	log "$job v$version healthy"
}

# wait_system JOB VERSION: a system job. Nomad 1.11 gives one a deployment
# only when its spec changed and a client is eligible, so the allocations
# decide: every one the job should run (desired "run") is of this version
# and running, and a deployment of this version, if there is one, has
# succeeded (it waits for the checks). One group per system job.
wait_system() {
	local job=$1 version=$2 deadline=$((SECONDS + DEPLOY_TIMEOUT)) d status allocs n healthy
	while :; do
		d=$(nomad_get "job/$job/deployments" | jq -c --argjson v "$version" '[.[] | select(.JobVersion == $v)] | sort_by(.CreateIndex) | last // empty')
		status=$(jq -r '.Status // empty' <<<"$d")
		case $status in
		failed | cancelled)
			why "$job"
			die "$job v$version: deployment $status: $(jq -r '.StatusDescription' <<<"$d")"
			;;
		esac
		allocs=$(nomad_get "job/$job/allocations" | jq -c '[.[] | select(.DesiredStatus == "run")]')
		n=$(jq --argjson v "$version" 'if length > 0 and all(.[]; .JobVersion == $v and .ClientStatus == "running") then length else 0 end' <<<"$allocs")
		# Healthy allocations are enough, should the deployment be slow to
		# say so.
		healthy=$(jq 'length > 0 and all(.[]; .DeploymentStatus.Healthy == true)' <<<"$allocs")
		if [ "$n" -gt 0 ] && { [ -z "$status" ] || [ "$status" = successful ] || [ "$healthy" = true ]; }; then break; fi
		if [ $SECONDS -ge $deadline ]; then
			why "$job"
			die "$job v$version: its allocations are not all running after ${DEPLOY_TIMEOUT}s (deployment: ${status:-none})"
		fi
		sleep 1
	done
	wait_services "$job" "$deadline" "$n"
	log "$job v$version healthy ($n allocations)"
}

# wait_services JOB DEADLINE [N]: every service of the job has as many
# passing instances as the job has running allocations of its group (N for
# a system job); a service tagged "attention" (a warning for a person,
# such as flagged orders) only needs no critical check.
wait_services() {
	local job=$1 deadline=$2 count=${3:-} want svc n attention
	want=$(nomad_get "job/$job" | jq -r --arg count "$count" '.TaskGroups[] | (if $count == "" then .Count else ($count | tonumber) end) as $n |
		((.Services // []) + ([.Tasks[].Services // []] | add // []))[] |
		"\(.Name) \($n) \(((.Tags // []) | index("attention")) != null)"' | sort -u)
	while read -r svc n attention; do
		[ -n "$svc" ] || continue
		local got filter='?passing=true'
		[ "$attention" = true ] && filter=''
		until got=$(consul_get "health/service/$svc$filter" | jq '[.[] | select(all(.Checks[]; .Status != "critical"))] | length') && [ "$got" -ge "$n" ]; do
			[ $SECONDS -lt $deadline ] || die "$job: $svc has ${got:-?} passing instances in Consul, want $n"
			sleep 1
		done
	done <<<"$want"
}

run() {
	local wait=1
	if [ "$1" = --no-wait ]; then
		wait=0
		shift
	fi
	local file=$1
	shift
	[ -f "$file" ] || die "no job file $file"
	local job out
	job=$(nomad job run -output "$@" "$file" | jq -r '.Job.ID') || die "$file does not parse"
	out=$(nomad job run -detach "$@" "$file") || die "$job: submit failed: $out"
	local version type
	read -r version type < <(nomad_get "job/$job" | jq -r '"\(.Version) \(.Type)"')
	# A batch job (periodic, parameterized) has no deployment: it runs when
	# its schedule or a dispatch says.
	if [ "$type" = batch ]; then
		log "$job v$version registered"
		return
	fi
	if [ "$wait" = 0 ]; then
		log "$job v$version submitted (not waited for)"
		return
	fi
	log "$job v$version submitted"
	if [ "$type" = system ]; then
		wait_system "$job" "$version"
	else
		wait_healthy "$job" "$version"
	fi
}

stop() {
	local job=$1 deadline=$((SECONDS + DEPLOY_TIMEOUT))
	if ! nomad_get "job/$job" >/dev/null 2>&1; then
		log "$job: not running"
		return
	fi
	nomad job stop -detach "$job" >/dev/null
	# Purge only once the tasks are gone: a purged job's allocations are
	# forgotten while their processes may still be draining.
	while nomad_get "job/$job/allocations" | jq -e 'any(.[]; .ClientStatus == "running" or .ClientStatus == "pending")' >/dev/null; do
		[ $SECONDS -lt $deadline ] || die "$job: allocations still running after ${DEPLOY_TIMEOUT}s"
		sleep 0.5
	done
	nomad job stop -purge -detach "$job" >/dev/null 2>&1 || true
	log "$job stopped and purged"
}

case "${1:-}" in
run)
	shift
	run "$@"
	;;
submit)
	shift
	run --no-wait "$@"
	;;
wait)
	read -r version type < <(nomad_get "job/$2" | jq -r '"\(.Version) \(.Type)"')
	if [ "$type" = system ]; then wait_system "$2" "$version"; else wait_healthy "$2" "$version"; fi
	;;
stop)
	stop "$2"
	;;
*)
	echo "usage: $0 run|submit JOBFILE [-var k=v ...] | wait JOB | stop JOB" >&2
	exit 2
	;;
esac
