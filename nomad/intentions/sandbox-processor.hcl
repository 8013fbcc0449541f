# The sandbox card processor: payment only.
Kind = "service-intentions"
Name = "sandbox-processor"
Sources = [
  {
    Name   = "payment"
    Action = "allow"
  },
]
