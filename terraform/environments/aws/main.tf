# The shop on AWS: Debian 12 hosts in the default VPC, each running Consul
# and Nomad (hashistack-host, remote mode, over SSH), the jobs deployed by
# the same shop module as on a laptop, and a network load balancer in front
# of HAProxy. "Changer de provider" is using terraform/environments/hetzner
# instead: the two modules do not change.
#
#   terraform -chdir=terraform/environments/aws init
#   terraform -chdir=terraform/environments/aws apply -var operator_cidr=203.0.113.7/32
#
# The operator's variables (operator_cidr, hosts, repo2…), the call of
# modules/cloud-cluster and the outputs are in cloud.tf, a link to the file
# every cloud environment shares; this one holds the provider's part.
#
# Run `make images` first: the shop's images are saved from this machine's
# Docker engine and loaded on every host; the agents are uploaded from the
# tools cache.

terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
}

# Debian's official images.
data "aws_ami" "debian" {
  most_recent = true
  owners      = ["136693071363"]
  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
}

resource "aws_key_pair" "operator" {
  key_name_prefix = "mylittleshopping-"
  public_key      = file(pathexpand(var.ssh_public_key))
}

resource "aws_security_group" "shop" {
  name_prefix = "mylittleshopping-"
  vpc_id      = data.aws_vpc.default.id

  # The hosts talk to each other freely (gossip, RPC, the services).
  ingress {
    from_port = 0
    to_port   = 0
    protocol  = "-1"
    self      = true
  }
  # The operator: SSH, the Nomad and Consul APIs and UIs.
  dynamic "ingress" {
    for_each = [22, 4646, 8500]
    content {
      from_port   = ingress.value
      to_port     = ingress.value
      protocol    = "tcp"
      cidr_blocks = [var.operator_cidr]
    }
  }
  # The shop, through the load balancer (which keeps the clients' addresses).
  ingress {
    from_port   = var.edge_port
    to_port     = var.edge_port
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "host" {
  count                  = var.hosts
  ami                    = data.aws_ami.debian.id
  instance_type          = var.instance_type
  key_name               = aws_key_pair.operator.key_name
  subnet_id              = element(data.aws_subnets.default.ids, count.index)
  vpc_security_group_ids = [aws_security_group.shop.id]
  root_block_device {
    volume_size = var.disk_gb
    volume_type = "gp3"
  }
  tags = { Name = "mylittleshopping-${count.index}" }
}

# What cloud.tf hands modules/cloud-cluster.
locals {
  cluster_hosts = [for h in aws_instance.host : { public_ip = h.public_ip, private_ip = h.private_ip }]
  ssh_user      = "admin"
  public_url    = "http://${aws_lb.shop.dns_name}"
  # The network load balancer keeps the clients' addresses (instance
  # targets preserve them), so HAProxy sees them.
  edge_accept_proxy = false
}

# The network load balancer: port 80 to HAProxy on every host.
resource "aws_lb" "shop" {
  name_prefix        = "mls-"
  load_balancer_type = "network"
  subnets            = data.aws_subnets.default.ids
}

resource "aws_lb_target_group" "edge" {
  name_prefix = "edge-"
  port        = var.edge_port
  protocol    = "TCP"
  vpc_id      = data.aws_vpc.default.id
  health_check {
    protocol = "TCP"
    interval = 10
  }
}

resource "aws_lb_target_group_attachment" "edge" {
  count            = var.hosts
  target_group_arn = aws_lb_target_group.edge.arn
  target_id        = aws_instance.host[count.index].id
  port             = var.edge_port
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.shop.arn
  port              = 80
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.edge.arn
  }
}
