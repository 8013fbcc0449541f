# auth: the aggregator (accounts, sessions), and every service that
# verifies tokens (auth itself included) for its JWKS and revocations.
Kind = "service-intentions"
Name = "auth"
Sources = [
  { Name = "aggregator", Action = "allow" },
  { Name = "auth", Action = "allow" },
  { Name = "inventory", Action = "allow" },
  { Name = "orders", Action = "allow" },
]
