package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// The SQL of the accounts domain. Durations travel as microseconds (the
// outbox does the same) so that PostgreSQL's clock sets every deadline and
// instances with skewed clocks agree.

const accountColumns = `id, email, display_name, role, verified_at, disabled_at, created_at, updated_at, password_hash`

func scanAccount(row pgx.Row) (Account, error) {
	var a Account
	err := row.Scan(&a.ID, &a.Email, &a.DisplayName, &a.Role, &a.VerifiedAt, &a.DisabledAt, &a.CreatedAt, &a.UpdatedAt, &a.passwordHash)
	return a, err
}

const (
	selectAccount        = `SELECT ` + accountColumns + ` FROM accounts WHERE id = $1`
	selectAccountByEmail = `SELECT ` + accountColumns + ` FROM accounts WHERE email = $1`
	// What other services may read: never the hash, nor anything else.
	selectSummary = `SELECT id, email, role, verified_at IS NOT NULL FROM accounts WHERE id = $1`

	// A taken address inserts nothing and returns no row; the transaction
	// goes on (a unique violation would abort it).
	insertAccountSQL = `
INSERT INTO accounts (id, email, display_name, role, password_hash)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (email) DO NOTHING
RETURNING id`

	// Keyset pagination: the index on (created_at, id) serves both the
	// filter and the order. An empty role selects every role.
	selectAccountsPage = `
SELECT ` + accountColumns + ` FROM accounts
WHERE ($1::text = '' OR role = $1)
	AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))
ORDER BY created_at, id
LIMIT $4`

	updateAccountSQL = `
UPDATE accounts SET
	display_name = coalesce($2, display_name),
	role = coalesce($3, role),
	disabled_at = CASE WHEN $4::boolean IS NULL THEN disabled_at
		WHEN $4 THEN coalesce(disabled_at, now()) ELSE NULL END,
	updated_at = now()
WHERE id = $1
RETURNING ` + accountColumns

	deleteAccountSQL = `DELETE FROM accounts WHERE id = $1`

	markVerifiedSQL = `
UPDATE accounts SET verified_at = coalesce(verified_at, now()), updated_at = now()
WHERE id = $1
RETURNING ` + accountColumns

	setPasswordSQL = `UPDATE accounts SET password_hash = $2, updated_at = now() WHERE id = $1`

	// Creates the admin, or promotes, verifies and enables an existing
	// account of that address; no row comes back when there was nothing to
	// do. xmax = 0 tells an insert from an update.
	ensureAdminSQL = `
INSERT INTO accounts (id, email, display_name, role, password_hash, verified_at)
VALUES ($1, $2, 'Administrator', 'admin', $3, now())
ON CONFLICT (email) DO UPDATE SET
	role = 'admin', verified_at = coalesce(accounts.verified_at, now()),
	disabled_at = NULL, updated_at = now()
WHERE accounts.role <> 'admin' OR accounts.verified_at IS NULL OR accounts.disabled_at IS NOT NULL
RETURNING xmax = 0`
)

func getAccount(ctx context.Context, q pgdb.Querier, id uuid.UUID) (Account, error) {
	a, err := scanAccount(q.QueryRow(ctx, selectAccount, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, errAccountNotFound(id)
	}
	if err != nil {
		return Account{}, fmt.Errorf("get account %s: %w", id, err)
	}
	return a, nil
}

func getSummary(ctx context.Context, q pgdb.Querier, id uuid.UUID) (Summary, error) {
	var sum Summary
	err := q.QueryRow(ctx, selectSummary, id).Scan(&sum.ID, &sum.Email, &sum.Role, &sum.Verified)
	if errors.Is(err, pgx.ErrNoRows) {
		return Summary{}, errAccountNotFound(id)
	}
	if err != nil {
		return Summary{}, fmt.Errorf("get account %s: %w", id, err)
	}
	return sum, nil
}

// getAccountByEmail looks up a normalized address.
func getAccountByEmail(ctx context.Context, q pgdb.Querier, email string) (Account, error) {
	a, err := scanAccount(q.QueryRow(ctx, selectAccountByEmail, email))
	if errors.Is(err, pgx.ErrNoRows) {
		// Never shown: callers turn it into an answer that does not say
		// whether the address exists.
		return Account{}, apierr.Errorf(apierr.NotFound, "no account with this email address")
	}
	if err != nil {
		return Account{}, fmt.Errorf("get account by email: %w", err)
	}
	return a, nil
}

// insertAccount creates a, and reports false when its address is taken.
func insertAccount(ctx context.Context, q pgdb.Querier, a Account) (created bool, err error) {
	var id uuid.UUID
	err = q.QueryRow(ctx, insertAccountSQL, a.ID, a.Email, a.DisplayName, string(a.Role), a.passwordHash).Scan(&id)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("insert account: %w", err)
	}
	return true, nil
}

func listAccounts(ctx context.Context, q pgdb.Querier, role Role, after *Cursor, limit int) ([]Account, error) {
	var (
		afterTime *time.Time
		afterID   uuid.UUID
	)
	if after != nil {
		afterTime, afterID = &after.CreatedAt, after.ID
	}
	rows, err := q.Query(ctx, selectAccountsPage, string(role), afterTime, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	accs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Account, error) { return scanAccount(row) })
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return accs, nil
}

func updateAccount(ctx context.Context, q pgdb.Querier, id uuid.UUID, p Patch) (Account, error) {
	var role *string
	if p.Role != nil {
		r := string(*p.Role)
		role = &r
	}
	a, err := scanAccount(q.QueryRow(ctx, updateAccountSQL, id, p.DisplayName, role, p.Disabled))
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, errAccountNotFound(id)
	}
	if err != nil {
		return Account{}, fmt.Errorf("update account %s: %w", id, err)
	}
	return a, nil
}

func deleteAccount(ctx context.Context, q pgdb.Querier, id uuid.UUID) error {
	tag, err := q.Exec(ctx, deleteAccountSQL, id)
	if err != nil {
		return fmt.Errorf("delete account %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return errAccountNotFound(id)
	}
	return nil
}

func markVerified(ctx context.Context, q pgdb.Querier, id uuid.UUID) (Account, error) {
	a, err := scanAccount(q.QueryRow(ctx, markVerifiedSQL, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, errAccountNotFound(id)
	}
	if err != nil {
		return Account{}, fmt.Errorf("verify account %s: %w", id, err)
	}
	return a, nil
}

func setPassword(ctx context.Context, q pgdb.Querier, id uuid.UUID, hash string) error {
	tag, err := q.Exec(ctx, setPasswordSQL, id, hash)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return errAccountNotFound(id)
	}
	return nil
}

// ensureAdmin returns what it did: "created", "promoted" or "unchanged".
func ensureAdmin(ctx context.Context, q pgdb.Querier, id uuid.UUID, email, hash string) (string, error) {
	var created bool
	err := q.QueryRow(ctx, ensureAdminSQL, id, email, hash).Scan(&created)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "unchanged", nil
	case err != nil:
		return "", err
	case created:
		return "created", nil
	default:
		return "promoted", nil
	}
}

const (
	insertRefreshTokenSQL = `
INSERT INTO refresh_tokens (hash, family_id, account_id, expires_at)
VALUES ($1, $2, $3, now() + $4::bigint * interval '1 microsecond')`

	// Spending is one conditional update, so two concurrent refreshes with
	// one token cannot both succeed: the loser sees a spent token.
	spendRefreshTokenSQL = `
UPDATE refresh_tokens SET used_at = now()
WHERE hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
RETURNING family_id, account_id`

	selectRefreshTokenSQL = `SELECT family_id, account_id, used_at, revoked_at FROM refresh_tokens WHERE hash = $1`

	revokeFamilySQL = `UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL`

	revokeFamilyOfSQL = `
UPDATE refresh_tokens SET revoked_at = now()
WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE hash = $1) AND revoked_at IS NULL`

	// Every session of the account but the family of the token hashed $2
	// (NULL keeps none).
	revokeAccountSessionsSQL = `
UPDATE refresh_tokens SET revoked_at = now()
WHERE account_id = $1 AND revoked_at IS NULL
	AND family_id IS DISTINCT FROM (SELECT family_id FROM refresh_tokens WHERE hash = $2 AND account_id = $1)`
)

// refreshToken is a refresh_tokens row.
type refreshToken struct {
	FamilyID  uuid.UUID
	AccountID uuid.UUID
	UsedAt    *time.Time
	RevokedAt *time.Time
}

func insertRefreshToken(ctx context.Context, q pgdb.Querier, hash []byte, family, accountID uuid.UUID, ttl time.Duration) error {
	if _, err := q.Exec(ctx, insertRefreshTokenSQL, hash, family, accountID, ttl.Microseconds()); err != nil {
		return fmt.Errorf("insert refresh token: %w", err)
	}
	return nil
}

// spendRefreshToken marks a live token used; NotFound when it is unknown,
// spent, revoked or expired.
func spendRefreshToken(ctx context.Context, q pgdb.Querier, hash []byte) (refreshToken, error) {
	var t refreshToken
	err := q.QueryRow(ctx, spendRefreshTokenSQL, hash).Scan(&t.FamilyID, &t.AccountID)
	if errors.Is(err, pgx.ErrNoRows) {
		return refreshToken{}, apierr.Errorf(apierr.NotFound, "no live refresh token with this hash")
	}
	if err != nil {
		return refreshToken{}, fmt.Errorf("spend refresh token: %w", err)
	}
	return t, nil
}

func getRefreshToken(ctx context.Context, q pgdb.Querier, hash []byte) (refreshToken, error) {
	var t refreshToken
	err := q.QueryRow(ctx, selectRefreshTokenSQL, hash).Scan(&t.FamilyID, &t.AccountID, &t.UsedAt, &t.RevokedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return refreshToken{}, apierr.Errorf(apierr.NotFound, "no refresh token with this hash")
	}
	if err != nil {
		return refreshToken{}, fmt.Errorf("get refresh token: %w", err)
	}
	return t, nil
}

func revokeFamily(ctx context.Context, q pgdb.Querier, family uuid.UUID) error {
	if _, err := q.Exec(ctx, revokeFamilySQL, family); err != nil {
		return fmt.Errorf("revoke session %s: %w", family, err)
	}
	return nil
}

func revokeFamilyOf(ctx context.Context, q pgdb.Querier, hash []byte) error {
	if _, err := q.Exec(ctx, revokeFamilyOfSQL, hash); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// revokeAccountSessions ends every session of the account except the one
// of the refresh token hashed keep (nil keeps none).
func revokeAccountSessions(ctx context.Context, q pgdb.Querier, accountID uuid.UUID, keep []byte) error {
	if _, err := q.Exec(ctx, revokeAccountSessionsSQL, accountID, keep); err != nil {
		return fmt.Errorf("revoke sessions of %s: %w", accountID, err)
	}
	return nil
}

const (
	insertEmailTokenSQL = `
INSERT INTO email_tokens (hash, account_id, purpose, expires_at)
VALUES ($1, $2, $3, now() + $4::bigint * interval '1 microsecond')`

	lockEmailTokenSQL = `
SELECT account_id, expires_at, used_at, now() FROM email_tokens
WHERE hash = $1 AND purpose = $2
FOR UPDATE`

	spendEmailTokensSQL = `
UPDATE email_tokens SET used_at = now()
WHERE account_id = $1 AND purpose = $2 AND used_at IS NULL`
)

// emailToken is an email_tokens row, with the database's clock.
type emailToken struct {
	AccountID uuid.UUID
	ExpiresAt time.Time
	UsedAt    *time.Time
	Now       time.Time
}

func insertEmailToken(ctx context.Context, q pgdb.Querier, hash []byte, accountID uuid.UUID, p purpose, ttl time.Duration) error {
	if _, err := q.Exec(ctx, insertEmailTokenSQL, hash, accountID, string(p), ttl.Microseconds()); err != nil {
		return fmt.Errorf("insert %s token: %w", p, err)
	}
	return nil
}

// lockEmailToken reads a token of purpose p for update.
func lockEmailToken(ctx context.Context, q pgdb.Querier, hash []byte, p purpose) (emailToken, error) {
	var t emailToken
	err := q.QueryRow(ctx, lockEmailTokenSQL, hash, string(p)).Scan(&t.AccountID, &t.ExpiresAt, &t.UsedAt, &t.Now)
	if errors.Is(err, pgx.ErrNoRows) {
		return emailToken{}, apierr.Errorf(apierr.NotFound, "no %s token with this hash", p)
	}
	if err != nil {
		return emailToken{}, fmt.Errorf("get %s token: %w", p, err)
	}
	return t, nil
}

func spendEmailTokens(ctx context.Context, q pgdb.Querier, accountID uuid.UUID, p purpose) error {
	if _, err := q.Exec(ctx, spendEmailTokensSQL, accountID, string(p)); err != nil {
		return fmt.Errorf("spend %s tokens of %s: %w", p, accountID, err)
	}
	return nil
}

const (
	// Creates the row on first sight and locks it either way (the no-op
	// update is what takes the lock on an existing row).
	lockThrottleSQL = `
INSERT INTO login_throttle AS t (email_hash) VALUES ($1)
ON CONFLICT (email_hash) DO UPDATE SET email_hash = t.email_hash
RETURNING failures, window_start, lockouts, locked_until, now()`

	saveThrottleSQL = `
UPDATE login_throttle SET failures = $2, window_start = $3, lockouts = $4, locked_until = $5
WHERE email_hash = $1`

	clearThrottleSQL = `DELETE FROM login_throttle WHERE email_hash = $1`
)

// updateThrottle applies fn to the throttle row of key, locked, with the
// database's clock.
func updateThrottle(ctx context.Context, pool *pgxpool.Pool, key []byte, fn func(t *throttle, now time.Time)) error {
	err := pgdb.InTx(ctx, pool, func(tx pgx.Tx) error {
		var (
			t   throttle
			now time.Time
		)
		if err := tx.QueryRow(ctx, lockThrottleSQL, key).Scan(&t.Failures, &t.WindowStart, &t.Lockouts, &t.LockedUntil, &now); err != nil {
			return err
		}
		fn(&t, now)
		_, err := tx.Exec(ctx, saveThrottleSQL, key, t.Failures, t.WindowStart, t.Lockouts, t.LockedUntil)
		return err
	})
	if err != nil {
		return fmt.Errorf("login throttle: %w", err)
	}
	return nil
}

func clearThrottle(ctx context.Context, q pgdb.Querier, key []byte) error {
	if _, err := q.Exec(ctx, clearThrottleSQL, key); err != nil {
		return fmt.Errorf("clear login throttle: %w", err)
	}
	return nil
}
