# Nomad agent of the local dev cluster: one server and one client on
# loopback. scripts/devcluster.sh fills in data_dir, ports, the Consul
# address, the range of dynamic ports, and the client's host volumes (one
# per database, under the cluster's state folder) with a -config file of
# its own, so this file holds only policy. Every task runs in a Docker
# container (scripts/dockerd.sh starts the engine); no other driver is on.

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
  # enabled: in the generated local.hcl (scripts/devcluster.sh), which
  # starts a new cluster's server alone until its keyring exists.
  network_interface = "lo"

  options = {
    # There are no clouds to ask on a laptop or a CI runner; asking them
    # costs seconds of timeouts at every start.
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }
}

plugin "docker" {
  config {
    # No registry: the images are built on this host (make images) and
    # must never be removed by Nomad, or nothing could start them again.
    # scripts/images.sh keeps each image's newest three tags.
    gc {
      image     = false
      container = true
    }
    # So that an operator (and the e2e suite) sees which job a container
    # belongs to with `docker ps`, and the log collector which job, group,
    # task and node each line is from (the driver sets
    # com.hashicorp.nomad.alloc_id on every container by itself).
    extra_labels     = ["job_name", "task_group_name", "task_name", "node_name", "node_id"]
    allow_privileged = false
    # Every task's container logs with json-file (Nomad sets a log
    # configuration on each container, so the engine's defaults are not
    # what decides), with those labels written into every line: the log
    # collector (nomad/log-collector.nomad.hcl) tails these files, and
    # `nomad alloc logs` reads them through the engine. Bounded: 3 files
    # of 10 MB per container, room for the collector to catch up.
    logging {
      type = "json-file"
      config {
        labels   = "com.hashicorp.nomad.job_name,com.hashicorp.nomad.task_group_name,com.hashicorp.nomad.task_name,com.hashicorp.nomad.alloc_id,com.hashicorp.nomad.node_name,com.hashicorp.nomad.node_id"
        max-size = "10m"
        max-file = "3"
      }
    }
    volumes {
      # Tasks mount only the client's declared host volumes (volume_mount),
      # never a path of their choosing.
      enabled = false
    }
  }
}

ui {
  enabled = true
}

disable_update_check = true
