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
#   scripts/nomad-deploy.sh start JOBFILE [-var k=v ...]
#       submit, then wait until the submitted version is ready: in each
#       group, as many running allocations of that version as the group's
#       count, each of whose services passes in Consul (but those tagged
#       "ops": see services_of). That is what the
#       jobs that call it need; it does not wait for the deployment to
#       succeed (min_healthy_time later): `wait` does, once everything is
#       started, so that `make up` does not wait out each stage's
#       min_healthy_time in turn. Fails as run does.
#   scripts/nomad-deploy.sh submit JOBFILE [-var k=v ...]
#       run without waiting: for what `make up` need not wait for (the logs
#       and metrics, deployed after the shop).
#   scripts/nomad-deploy.sh wait JOB...
#       wait as run does for each job's current version.
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

# wait_ready JOB VERSION: the version is ready (see start), or die when its
# deployment fails or on the deadline.
wait_ready() {
	local job=$1 version=$2 deadline=$((SECONDS + DEPLOY_TIMEOUT)) groups services status allocs group n svc attention ids got
	groups=$(nomad_get "job/$job" | jq -r '.TaskGroups[] | "\(.Name) \(.Count)"')
	services=$(services_of "$job")
	while :; do
		status=$(nomad_get "job/$job/deployments" | jq -r --argjson v "$version" '[.[] | select(.JobVersion == $v)] | sort_by(.CreateIndex) | last | .Status // empty')
		case $status in
		failed | cancelled)
			why "$job"
			die "$job v$version: deployment $status"
			;;
		esac
		allocs=$(nomad_get "job/$job/allocations" | jq -c --argjson v "$version" '[.[] | select(.JobVersion == $v and .DesiredStatus == "run" and .ClientStatus == "running")]')
		local ready=1
		while read -r group n; do
			ids=$(jq -c --arg g "$group" '[.[] | select(.TaskGroup == $g) | .ID]' <<<"$allocs")
			if [ "$(jq length <<<"$ids")" -lt "$n" ]; then
				ready=0
				break
			fi
			while read -r _ _ svc attention ops; do
				[ -n "$svc" ] || continue
				# What operators and alerts watch, not what a later stage
				# needs: wait (settled) waits for it.
				[ "$ops" = false ] || continue
				# The instances of these allocations: Nomad names each
				# service instance _nomad-task-<allocation>-….
				got=$(consul_get "health/service/$svc" | jq --argjson ids "$ids" --argjson attention "$attention" '
					[.[] | .Service.ID as $sid | select(any($ids[]; . as $id | $sid | contains($id))) |
						select(all(.Checks[]; .Status == "passing" or ($attention and .Status != "critical")))] | length') || got=0
				if [ "$got" -lt "$n" ]; then
					ready=0
					break 2
				fi
			done < <(awk -v g="$group" '$1 == g' <<<"$services")
		done <<<"$groups"
		[ "$ready" = 0 ] || break
		if [ $SECONDS -ge $deadline ]; then
			why "$job"
			die "$job v$version: not ready after ${DEPLOY_TIMEOUT}s (deployment: ${status:-none yet})"
		fi
		sleep 0.5
	done
	log "$job v$version ready (passing in Consul; its deployment is waited for at the end)"
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

# services_of JOB [N]: one line per service of each group of the job:
# "group count service attention ops", count being the group's (N for a
# system job), attention whether the service is tagged "attention" (a
# warning for a person, such as flagged orders: it only needs no critical
# check), ops whether it is tagged "ops" (watched by operators and alerts,
# such as a database's WAL archive, and needed by no other job: start does
# not wait for it; wait does, for instances with no critical check, since
# its warnings are for the operators and the alerts: the archive's RPO
# passes 90 s on a database idle since its last segment switch, and an
# apply that changed only the aggregator waited up to 5 minutes for it).
services_of() {
	nomad_get "job/$1" | jq -r --arg count "${2:-}" '.TaskGroups[] | .Name as $g |
		(if $count == "" then .Count else ($count | tonumber) end) as $n |
		((.Services // []) + ([.Tasks[].Services // []] | add // []))[] |
		"\($g) \($n) \(.Name) \(((.Tags // []) | index("attention")) != null) \(((.Tags // []) | index("ops")) != null)"' | sort -u
}

# wait_services JOB DEADLINE [N]: every service of the job has as many
# passing instances as the job has running allocations of its group (N for
# a system job).
wait_services() {
	local job=$1 deadline=$2 count=${3:-} want svc n attention ops
	want=$(services_of "$job" "$count")
	while read -r _ n svc attention ops; do
		[ -n "$svc" ] || continue
		local got filter='?passing=true'
		[ "$attention" = true ] || [ "$ops" = true ] && filter=''
		until got=$(consul_get "health/service/$svc$filter" | jq '[.[] | select(all(.Checks[]; .Status != "critical"))] | length') && [ "$got" -ge "$n" ]; do
			[ $SECONDS -lt $deadline ] || die "$job: $svc has ${got:-?} passing instances in Consul, want $n"
			sleep 1
		done
	done <<<"$want"
}

# run [--no-wait|--ready] JOBFILE ARGS...: submit, then wait (see the
# commands above).
run() {
	local wait=1
	case $1 in
	--no-wait) wait=0 && shift ;;
	--ready) wait=ready && shift ;;
	esac
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
	if [ "$wait" = ready ] && [ "$type" != system ]; then
		wait_ready "$job" "$version"
	elif [ "$type" = system ]; then
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
start)
	shift
	run --ready "$@"
	;;
submit)
	shift
	run --no-wait "$@"
	;;
wait)
	shift
	for job in "$@"; do
		read -r version type < <(nomad_get "job/$job" | jq -r '"\(.Version) \(.Type)"')
		if [ "$type" = system ]; then wait_system "$job" "$version"; else wait_healthy "$job" "$version"; fi
	done
	;;
stop)
	stop "$2"
	;;
*)
	echo "usage: $0 run|start|submit JOBFILE [-var k=v ...] | wait JOB... | stop JOB" >&2
	exit 2
	;;
esac
