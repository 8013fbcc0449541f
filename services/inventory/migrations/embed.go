// Package migrations holds the inventory service's schema as forward-only
// SQL files, embedded so that the binary migrates its own database at start.
package migrations

import (
	"embed"

	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

//go:embed *.sql
var files embed.FS

// Set is the inventory service's migrations, applied with pgdb.Migrate.
var Set = pgdb.MigrationSet{Name: "inventory", FS: files}
