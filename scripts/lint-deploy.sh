#!/usr/bin/env bash
# lint-deploy.sh checks the deployment files without a cluster:
#   - nomad fmt -check on nomad/, and `nomad job validate` of every job
#     (offline: the driver configuration is checked by the e2e suite, which
#     submits every job to a real agent);
#   - the edge's HAProxy configuration and its Lua, rendered with stand-in
#     addresses, through `haproxy -c` (warnings fail); its answers to
#     hostile requests are checked by e2e's TestEdgeAnswers, which runs it;
#   - logs and metrics, rendered the same way, with the tools that run
#     them (make tools): the log collector's configuration (`otelcol
#     validate`), VictoriaMetrics' scrape configuration
#     (-promscrape.config.dryRun) and vmalert's rules (-dryRun);
#   - terraform fmt -check on terraform/, and terraform validate of the local
#     environment, the modules and the cloud environments' shared root file
#     (terraform/environments/cloud.tf, with stand-in locals: no provider
#     needed); the cloud environments themselves are validated only where
#     their providers are installed (`terraform init` run there), and say
#     so otherwise.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
PATH=$("$top/scripts/tools.sh" bindir):$PATH
export NOMAD_CLI_SHOW_HINTS=0
if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -f "$TF_CLI_CONFIG_FILE" ]; then unset TF_CLI_CONFIG_FILE; fi
cd "$top"
fail() {
	echo "lint-deploy: $*" >&2
	exit 1
}

out=$(nomad fmt -check -recursive nomad/ 2>&1) || fail "nomad fmt would change: $out (run: nomad fmt -recursive nomad/)"

# An address no agent listens on: validation stays offline, and fast.
for f in nomad/*.nomad.hcl; do
	vars=()
	# Every image variable (image, vmalert_image…) gets a stand-in.
	for v in $(sed -n 's/^variable "\([a-z_]*image\)".*/\1/p' "$f"); do vars+=(-var "$v=mylittleshopping/lint:0"); done
	grep -q '^variable "service"' "$f" && vars+=(-var service=auth)
	kinds=(-)
	grep -q '^variable "kind"' "$f" && kinds=(full incr dump drill restore)
	for k in "${kinds[@]}"; do
		kv=()
		[ "$k" = - ] || kv=(-var "kind=$k")
		out=$(NOMAD_ADDR=http://127.0.0.1:9 nomad job validate "${vars[@]}" "${kv[@]}" "$f" 2>&1) || fail "$f ($k): $out"
	done
done

# The edge's templates (haproxy.cfg, and edge.lua that it loads) rendered
# with stand-in addresses; haproxy -c loads the Lua too. Warnings fail:
# each one is a directive HAProxy ignores.
edge=$(mktemp -d)
trap 'rm -rf "$edge"' EXIT
nomad job run -output -var image=mylittleshopping/haproxy:lint nomad/edge.nomad.hcl >"$edge/job.json"
jq -r '.Job.TaskGroups[0].Tasks[0].Templates[] | select(.DestPath | endswith("/edge.lua")) | .EmbeddedTmpl' "$edge/job.json" >"$edge/edge.lua"
jq -r '.Job.TaskGroups[0].Tasks[0].Templates[] | select(.DestPath | endswith("/haproxy.cfg")) | .EmbeddedTmpl' "$edge/job.json" |
	sed 's/{{ env "NOMAD_ADDR_http" }}/127.0.0.1:8080/; s/{{ env "NOMAD_ADDR_admin" }}/127.0.0.1:8081/' |
	perl -0pe 's/\{\{- range service "aggregator" \}\}.*?\{\{- end \}\}/\n  server agg-lint 127.0.0.1:8443/s' |
	sed "s|{{ env \"NOMAD_TASK_DIR\" }}|$edge|; s|{{ env \"NOMAD_SECRETS_DIR\" }}|$edge|g; s/{{ env \"NOMAD_ALLOC_ID\" }}/lint/g" >"$edge/haproxy.cfg"
jq -r '.Job.TaskGroups[0].Tasks[0].Templates[] | select(.DestPath | endswith("/stats.cfg")) | .EmbeddedTmpl' "$edge/job.json" |
	sed 's/{{ env "NOMAD_ADDR_stats" }}/127.0.0.1:8082/; s/{{ with nomadVar [^}]*}}{{ .stats_password }}{{ end }}/lint/' >"$edge/stats.cfg"
# Stand-ins for the mesh certificates Consul renders in the cluster.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=lint \
	-keyout "$edge/key.pem" -out "$edge/mesh-ca.pem" 2>/dev/null
cat "$edge/mesh-ca.pem" "$edge/key.pem" >"$edge/mesh.pem"
[ -s "$edge/edge.lua" ] || fail "edge: no edge.lua template"
grep -q '{{' "$edge/haproxy.cfg" "$edge/stats.cfg" "$edge/edge.lua" && fail "edge: template directives left in the HAProxy configuration"
out=$(haproxy -c -dW -f "$edge/haproxy.cfg" -f "$edge/stats.cfg" 2>&1) || fail "edge: haproxy -c: $out"
# And what it answers: forged forwarding headers, control bytes, requests
# Go's net/http refuses (HAProxy in front of a stand-in, no cluster).
out=$(cd e2e && go test -count=1 -run '^TestEdgeAnswers$' . 2>&1) || fail "edge: $out"

# Logs and metrics: each template rendered with stand-ins (no Consul, no
# Nomad: the directives are replaced), none left, then checked by the
# binary that reads it.
for t in otelcol victoria-metrics vmalert; do command -v "$t" >/dev/null || fail "$t not found: run make tools"; done
obs=$edge/obs
mkdir -p "$obs/state" "$obs/containers" "$obs/secrets"
nomad job run -output -var image=mylittleshopping/otelcol:lint nomad/log-collector.nomad.hcl |
	jq -r '.Job.TaskGroups[0].Tasks[0].Templates[] | select(.DestPath | endswith("/otelcol.yaml")) | .EmbeddedTmpl' |
	sed '/{{- $logs := service /d' | perl -pe 's/\{\{ if \$logs \}\}.*\{\{ end \}\}/http:\/\/127.0.0.1:9428/' |
	sed "s|/srv/log-collector|$obs/state|g; s|/var/lib/docker/containers|$obs/containers|g" >"$obs/otelcol.yaml"
[ -s "$obs/otelcol.yaml" ] || fail "log-collector: no otelcol.yaml template"
grep -q '{{' "$obs/otelcol.yaml" && fail "log-collector: template directives left in the collector's configuration"
out=$(NOMAD_NODE_ID=lint NOMAD_IP_metrics=127.0.0.1 NOMAD_PORT_metrics=8888 otelcol validate --config="$obs/otelcol.yaml" 2>&1) ||
	fail "log-collector: otelcol validate: $out"
nomad job run -output -var image=mylittleshopping/victoria-metrics:lint -var vmalert_image=mylittleshopping/vmalert:lint nomad/metrics.nomad.hcl >"$obs/metrics.json"
jq -r '.Job.TaskGroups[0].Tasks[] | select(.Name == "victoria-metrics") | .Templates[] | select(.DestPath | endswith("/scrape.yml")) | .EmbeddedTmpl' "$obs/metrics.json" |
	sed "s|{{ env \"NOMAD_SECRETS_DIR\" }}|$obs/secrets|g" >"$obs/scrape.yml"
# The rules' template uses [[ ]] (vmalert's own {{ }} pass through).
jq -r '.Job.TaskGroups[0].Tasks[] | select(.Name == "vmalert") | .Templates[] | select(.DestPath | endswith("/rules.yml")) | .EmbeddedTmpl' "$obs/metrics.json" >"$obs/rules.yml"
[ -s "$obs/scrape.yml" ] && [ -s "$obs/rules.yml" ] || fail "metrics: no scrape.yml or rules.yml template"
grep -q '{{' "$obs/scrape.yml" && fail "metrics: template directives left in the scrape configuration"
grep -q '\[\[' "$obs/rules.yml" && fail "metrics: template directives left in the rules"
out=$(victoria-metrics -promscrape.config="$obs/scrape.yml" -promscrape.config.dryRun -loggerLevel=ERROR 2>&1) ||
	fail "metrics: victoria-metrics -promscrape.config.dryRun: $out"
out=$(vmalert -rule="$obs/rules.yml" -dryRun -loggerLevel=ERROR 2>&1) || fail "metrics: vmalert -dryRun: $out"

command -v terraform >/dev/null || fail "terraform not found"
out=$(terraform fmt -check -recursive terraform/ 2>&1) || fail "terraform fmt would change: $out (run: terraform fmt -recursive terraform/)"
for d in terraform/environments/local terraform/modules/*/; do
	terraform -chdir="$d" init -input=false -backend=false >/dev/null || fail "$d: terraform init failed"
	out=$(terraform -chdir="$d" validate -no-color 2>&1) || fail "$d: $out"
done
skipped=()
for d in terraform/environments/*/; do
	d=${d%/}
	[ "$d" = terraform/environments/local ] && continue
	# What the cloud environments share, each by a link (its content is
	# validated after this loop).
	[ "$(readlink "$d/cloud.tf" 2>/dev/null)" = ../cloud.tf ] || fail "$d: cloud.tf must be a link to ../cloud.tf (ln -s ../cloud.tf $d/cloud.tf)"
	if [ -d "$d/.terraform/providers" ]; then
		out=$(terraform -chdir="$d" validate -no-color 2>&1) || fail "$d: $out"
	else
		skipped+=("$(basename "$d")")
	fi
done
# What the cloud environments share (terraform/environments/cloud.tf, which
# each links): validated in a scratch root beside them, with stand-ins for
# what their providers' resources would make.
scratch=$(mktemp -d terraform/environments/.lint-cloud.XXXXXX)
trap 'rm -rf "${edge:-}" "$scratch"' EXIT
ln -s ../cloud.tf "$scratch/cloud.tf"
cat >"$scratch/stand-ins.tf" <<'EOF'
locals {
  cluster_hosts     = [{ public_ip = "192.0.2.10", private_ip = "10.0.0.10" }]
  ssh_user          = "admin"
  public_url        = "http://192.0.2.1"
  edge_accept_proxy = false
}
EOF
terraform -chdir="$scratch" init -input=false -backend=false >/dev/null || fail "terraform/environments/cloud.tf: terraform init failed"
out=$(terraform -chdir="$scratch" validate -no-color 2>&1) || fail "terraform/environments/cloud.tf: $out"
rm -rf "$scratch"

msg="nomad fmt + validate ($(ls nomad/*.nomad.hcl | wc -l) jobs), haproxy -c and the edge's answers, otelcol validate, the scrape configuration and alert rules (victoria-metrics, vmalert dry runs), terraform fmt + validate (local, modules, the cloud environments' shared cloud.tf)"
[ ${#skipped[@]} -eq 0 ] || msg+="; terraform validate skipped for ${skipped[*]}: providers not installed (terraform -chdir=terraform/environments/<env> init)"
echo "lint-deploy: ok: $msg"
