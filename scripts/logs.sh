#!/usr/bin/env bash
# logs.sh runs a LogsQL query against the cluster's VictoriaLogs (`make
# logs Q='…'`) and prints the lines it finds in time order, one a line:
#
#   time                      job/task                  level  message  field=value …
#
#   scripts/logs.sh 'request_id:"0f8b…"'             one request through every service (and the edge)
#   scripts/logs.sh 'nomad.job:orders severity_text:error'
#   scripts/logs.sh '_time:10m "checkout"'          a time filter of the query's own replaces SINCE
#
# The newest LIMIT lines (default 500) of the last SINCE (default 1h) are
# printed, oldest first; RAW=1 prints VictoriaLogs' JSON lines instead.
# LogsQL: https://docs.victoriametrics.com/victorialogs/logsql/ (fields:
# nomad.job, nomad.group, nomad.task, nomad.alloc_id, nomad.node,
# severity_text, log.iostream, and the services' own: request_id, @module…).
#
# VictoriaLogs is the Consul service `logs`, asked as the operator:
# CONSUL_HTTP_ADDR, CONSUL_CACERT and CONSUL_HTTP_TOKEN(_FILE) as README.md
# exports them, else the local cluster's (.run/cluster, or TF_VAR_state_dir).
# LOGS_URL (http://host:port) skips Consul.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
query=${1:-}
SINCE=${SINCE:-1h}
LIMIT=${LIMIT:-500}

log() { printf 'logs: %s\n' "$*" >&2; }
if [ -z "$query" ]; then
	echo "usage: make logs Q='<LogsQL>'   e.g. make logs Q='request_id:\"…\"' (SINCE=1h LIMIT=500 RAW=1)" >&2
	exit 2
fi

cluster=${TF_VAR_state_dir:-$top/.run/cluster}
: "${CONSUL_HTTP_ADDR:=https://127.0.0.1:8500}"
case $CONSUL_HTTP_ADDR in http*) ;; *) CONSUL_HTTP_ADDR=https://$CONSUL_HTTP_ADDR ;; esac
if [ -z "${CONSUL_CACERT:-}" ] && [ -f "$cluster/tls/consul-agent-ca.pem" ]; then CONSUL_CACERT=$cluster/tls/consul-agent-ca.pem; fi
if [ -z "${CONSUL_HTTP_TOKEN:-}" ] && [ -z "${CONSUL_HTTP_TOKEN_FILE:-}" ]; then CONSUL_HTTP_TOKEN_FILE=$cluster/keys/consul-management.token; fi
# shellcheck source=scripts/cluster-access.sh
. "$top/scripts/cluster-access.sh"

url=${LOGS_URL:-}
if [ -z "$url" ]; then
	url=$(curl -fsS --max-time 10 "${consul_curl[@]}" "$CONSUL_HTTP_ADDR/v1/health/service/logs?passing=true" |
		jq -r 'first(.[] | .Service | "http://\(.Address):\(.Port)") // empty') ||
		{ log "cannot ask Consul ($CONSUL_HTTP_ADDR) where VictoriaLogs is: is the cluster up (make up), and are CONSUL_CACERT and the token right?"; exit 1; }
	[ -n "$url" ] || { log "no passing instance of the logs service in Consul (nomad job status logs)"; exit 1; }
fi

# A time filter of the query's own decides; else the last SINCE.
args=(--data-urlencode "query=$query" --data-urlencode "limit=$LIMIT")
[[ $query == *_time:* ]] || args+=(--data-urlencode "start=$SINCE")
out=$(curl -sS --max-time 60 -w '\n%{http_code}' "${args[@]}" "$url/select/logsql/query") ||
	{ log "VictoriaLogs at $url does not answer"; exit 1; }
code=${out##*$'\n'}
out=${out%$'\n'*}
if [ "$code" != 200 ]; then
	log "VictoriaLogs refused the query (HTTP $code): $out"
	exit 1
fi
[ -n "$out" ] || { log "no line matches (in the last $SINCE unless the query says _time)"; exit 0; }

if [ -n "${RAW:-}" ]; then
	jq -cs 'sort_by(._time)[]' <<<"$out"
	exit 0
fi
# time, job/task, level, message, then every other field but the stream's
# identity, what the columns already show, and the OTLP scope VictoriaLogs
# records (the collector's receiver, on every line). A row that is not a
# line (a stats pipe's) is printed as it came.
jq -rs '
	def pad($n): tostring | . + ([range([$n - length, 0] | max)] | map(" ") | join(""));
	sort_by(._time)[] |
	if has("_time") | not then tojson else
	[
		(._time | sub("(?<s>\\.[0-9]{3})[0-9]*Z$"; "\(.s)Z") | pad(24)),
		(((."nomad.job" // "?") + "/" + (."nomad.task" // "?")) | pad(24)),
		((if (.severity_text // "Unspecified") == "Unspecified" then "-" else .severity_text end) | pad(5)),
		(._msg // ""),
		(to_entries
			| map(select(.key | test("^(_time|_msg|_stream|_stream_id|severity_text|severity_number|service\\.name)$|^(nomad|scope)\\.") | not))
			| map("\(.key)=\(.value | tostring | if test("\\s") then @json else . end)")
			| join(" "))
	] | map(select(. != "")) | join("  ") end' <<<"$out"
