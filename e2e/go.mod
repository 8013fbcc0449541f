module github.com/mylittleshopping/shop/e2e

go 1.26.0
