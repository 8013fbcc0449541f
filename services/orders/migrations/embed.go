// Package migrations holds the orders service's schema as forward-only SQL
// files, embedded so that the binary migrates its own database at start.
package migrations

import (
	"embed"

	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

//go:embed *.sql
var files embed.FS

// Set is the orders service's migrations, applied with pgdb.Migrate next to
// outbox.Migrations.
var Set = pgdb.MigrationSet{Name: "orders", FS: files}
