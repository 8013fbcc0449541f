# Default deny: a call inside the mesh is refused unless an intention below
# allows its caller. (Without ACLs Consul's default is allow; this entry is
# what makes it deny.)
Kind = "service-intentions"
Name = "*"
Sources = [
  {
    Name   = "*"
    Action = "deny"
  },
]
