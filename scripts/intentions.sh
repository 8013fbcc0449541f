#!/usr/bin/env bash
# intentions.sh writes the mesh's intentions (nomad/intentions/*.hcl: who may
# call whom, default deny) into Consul as service-intentions config entries,
# so that `make up` sets them and SREs read them in Consul's UI
# (Services → Intentions). CONSUL_HTTP_ADDR says where Consul is,
# CONSUL_HTTP_TOKEN(_FILE) with which token.
#
#   scripts/intentions.sh [dir]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
PATH=$("$top/scripts/tools.sh" bindir):$PATH
# shellcheck source=scripts/cluster-access.sh
. "$top/scripts/cluster-access.sh"
dir=${1:-$top/nomad/intentions}
n=0
# The default deny first (ACLs deny by default too; the entry says so in
# the UI, and holds should ACLs be off).
for f in "$dir/default.hcl" $(ls "$dir"/*.hcl | grep -v '/default.hcl$'); do
	out=$(consul config write "$f" 2>&1) || { echo "intentions: $f: $out" >&2; exit 1; }
	n=$((n + 1))
done
echo "intentions: $n entries written to Consul (default deny)" >&2
