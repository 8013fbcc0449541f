# orders is called by the aggregator only.
Kind = "service-intentions"
Name = "orders"
Sources = [
  {
    Name   = "aggregator"
    Action = "allow"
  },
]
