# payment is called by the aggregator only.
Kind = "service-intentions"
Name = "payment"
Sources = [
  {
    Name   = "aggregator"
    Action = "allow"
  },
]
