# Nomad agent of the local dev cluster: one server and one client on
# loopback. scripts/devcluster.sh fills in data_dir, ports, the Consul
# address, the range of dynamic ports, and the client's host volumes (one
# per database, under the cluster's state folder, with the node meta
# shop_volumes_dir that raw_exec tasks find them by) with a -config file of
# its own, so this file holds only policy.

bind_addr = "127.0.0.1"

advertise {
  http = "127.0.0.1"
  rpc  = "127.0.0.1"
  serf = "127.0.0.1"
}
log_level = "INFO"

server {
  enabled          = true
  bootstrap_expect = 1
}

client {
  enabled           = true
  network_interface = "lo"

  options = {
    # There are no clouds to ask on a laptop or a CI runner; asking them
    # costs seconds of timeouts at every start.
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }
}

plugin "raw_exec" {
  config {
    enabled = true
  }
}

ui {
  enabled = true
}

disable_update_check = true
