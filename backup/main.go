// Command backup drives the shop's backups: pgBackRest full and
// incremental backups, encrypted SQL dumps, restore drills and restores.
// Its `task …` subcommands run inside Nomad tasks next to PostgreSQL; the
// others run from an operator's machine through Nomad's and Consul's APIs.
// `backup help` lists them with their exit statuses.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/backup/internal/exitcode"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

func main() {
	log := logging.New("backup", os.Stderr, os.Getenv("LOG_LEVEL"))
	err := run(context.Background(), log, os.Args[1:], os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "backup: %v\n", err)
	}
	os.Exit(exitcode.Of(err))
}

func run(ctx context.Context, log hclog.Logger, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	return exitcode.Errorf(exitcode.Usage, "unknown command %q (see backup help)", args[0])
}

const usage = `backup: pgBackRest backups, SQL dumps, restore drills and restores of the shop's databases
`
