package accounts

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/auth/migrations"
	"github.com/mylittleshopping/shop/services/platform/outbox"
	"github.com/mylittleshopping/shop/services/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestConstraintViolationsHideTheDatabase breaks the schema's constraints
// as a race would (the account deleted while a token for it is written) or
// behind the rules' back: the client reads the store's own words, never
// PostgreSQL's.
func TestConstraintViolationsHideTheDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t, migrations.Set, outbox.Migrations)
	hash := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

	t.Run("a session for a deleted account", func(t *testing.T) {
		err := insertRefreshToken(ctx, pool, hash(1), uuid.New(), uuid.New(), time.Hour)
		pgtest.SafeProblem(t, err, http.StatusConflict, "the account was deleted while this request ran",
			"refresh_tokens_account_id_fkey", "refresh_tokens")
	})
	t.Run("an email token for a deleted account", func(t *testing.T) {
		err := insertEmailToken(ctx, pool, hash(2), uuid.New(), verifyEmail, time.Hour)
		pgtest.SafeProblem(t, err, http.StatusConflict, "the account was deleted while this request ran",
			"email_tokens_account_id_fkey", "email_tokens")
	})
	t.Run("a display name the schema refuses", func(t *testing.T) {
		a := Account{ID: uuid.New(), Email: "ada@example.com", DisplayName: "Ada", Role: "buyer", passwordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$a2V5"}
		if created, err := insertAccount(ctx, pool, a); err != nil || !created {
			t.Fatalf("insert account: got %v, %v, want true, nil", created, err)
		}
		empty := ""
		_, err := updateAccount(ctx, pool, a.ID, Patch{DisplayName: &empty})
		pgtest.SafeProblem(t, err, http.StatusConflict, "the change breaks a rule of the account data; nothing was saved",
			"accounts_display_name_check", "accounts")
	})
}
