# The mail sink (Mailjet's stand-in): the services that send mail.
Kind = "service-intentions"
Name = "mailsink"
Sources = [
  { Name = "auth", Action = "allow" },
  { Name = "orders", Action = "allow" },
]
