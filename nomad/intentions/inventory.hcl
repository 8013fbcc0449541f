# inventory is called by the aggregator only.
Kind = "service-intentions"
Name = "inventory"
Sources = [
  {
    Name   = "aggregator"
    Action = "allow"
  },
]
