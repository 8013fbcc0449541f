# cluster-access.sh, sourced by the scripts that call Nomad and Consul:
# NOMAD_TOKEN and CONSUL_HTTP_TOKEN, when they are not set, come from the
# files NOMAD_TOKEN_FILE and CONSUL_HTTP_TOKEN_FILE name (Terraform's
# hashistack-host outputs them; on the dev cluster they are in
# .run/cluster/keys), and nomad_curl/consul_curl are the curl arguments
# that send them and check the agents' HTTPS certificates against
# NOMAD_CACERT and CONSUL_CACERT (.run/cluster/tls on the dev cluster).
if [ -z "${NOMAD_TOKEN:-}" ] && [ -n "${NOMAD_TOKEN_FILE:-}" ] && [ -s "$NOMAD_TOKEN_FILE" ]; then
	NOMAD_TOKEN=$(<"$NOMAD_TOKEN_FILE")
	export NOMAD_TOKEN
fi
if [ -z "${CONSUL_HTTP_TOKEN:-}" ] && [ -n "${CONSUL_HTTP_TOKEN_FILE:-}" ] && [ -s "$CONSUL_HTTP_TOKEN_FILE" ]; then
	CONSUL_HTTP_TOKEN=$(<"$CONSUL_HTTP_TOKEN_FILE")
	export CONSUL_HTTP_TOKEN
fi
# shellcheck disable=SC2034 # used by the scripts that source this one
nomad_curl=(-H "X-Nomad-Token: ${NOMAD_TOKEN:-}" ${NOMAD_CACERT:+--cacert "$NOMAD_CACERT"})
# shellcheck disable=SC2034
consul_curl=(-H "X-Consul-Token: ${CONSUL_HTTP_TOKEN:-}" ${CONSUL_CACERT:+--cacert "$CONSUL_CACERT"})
