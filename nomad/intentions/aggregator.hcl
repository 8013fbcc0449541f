# The public API is called only by the edge (HAProxy).
Kind = "service-intentions"
Name = "aggregator"
Sources = [
  {
    Name   = "edge"
    Action = "allow"
  },
]
