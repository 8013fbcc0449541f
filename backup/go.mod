module github.com/mylittleshopping/shop/backup

go 1.26.0

require (
	github.com/hashicorp/go-hclog v1.6.3
	github.com/mylittleshopping/shop/services/platform v0.0.0
)

require (
	github.com/fatih/color v1.19.0 // indirect
	github.com/mattn/go-colorable v0.1.15 // indirect
	github.com/mattn/go-isatty v0.0.22 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/sys v0.48.0 // indirect
)

replace github.com/mylittleshopping/shop/services/platform => ../services/platform
