package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// The SQL of the accounts domain. Durations travel as microseconds (the
// outbox does the same) so that PostgreSQL's clock sets every deadline and
// instances with skewed clocks agree.

// constraints are the words a client reads when a write breaks the schema:
// a token written for an account deleted meanwhile (a login or a refresh
// racing the account's deletion) says so; anything else is a rule the code
// above enforces first, so reaching it is a bug the log explains.
var constraints = pgdb.Constraints{
	"refresh_tokens_account_id_fkey": errAccountGone,
	"email_tokens_account_id_fkey":   errAccountGone,
	"":                               apierr.E(apierr.Conflict, errors.New("the change breaks a rule of the account data; nothing was saved")),
}

var errAccountGone = apierr.E(apierr.Conflict, errors.New("the account was deleted while this request ran"))

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

	// Creates the account, or gives an existing account of that address
	// the role, verifies and enables it; no row comes back when there was
	// nothing to do. xmax = 0 tells an insert from an update.
	ensureAccountSQL = `
INSERT INTO accounts (id, email, display_name, role, password_hash, verified_at)
VALUES ($1, $2, $3, $4, $5, now())
ON CONFLICT (email) DO UPDATE SET
	role = excluded.role, verified_at = coalesce(accounts.verified_at, now()),
	disabled_at = NULL, updated_at = now()
WHERE accounts.role <> excluded.role OR accounts.verified_at IS NULL OR accounts.disabled_at IS NOT NULL
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
		return false, fmt.Errorf("insert account: %w", constraints.Map(err))
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
		return Account{}, fmt.Errorf("update account %s: %w", id, constraints.Map(err))
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
		return fmt.Errorf("set password of %s: %w", id, constraints.Map(err))
	}
	if tag.RowsAffected() == 0 {
		return errAccountNotFound(id)
	}
	return nil
}

// ensureAccount returns what it did: "created", "updated" (role,
// verification or enabling) or "unchanged".
func ensureAccount(ctx context.Context, q pgdb.Querier, a Account) (string, error) {
	var created bool
	err := q.QueryRow(ctx, ensureAccountSQL, a.ID, a.Email, a.DisplayName, a.Role, a.passwordHash).Scan(&created)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "unchanged", nil
	case err != nil:
		return "", constraints.Map(err)
	case created:
		return "created", nil
	default:
		return "updated", nil
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

	// Revoking a session also revokes its access tokens: the revocation
	// row (one per family) is what verifiers learn it from.
	revokedSessions = `
INSERT INTO revocations (account_id, session_id, issued_before, expires_at)
SELECT DISTINCT account_id, family_id, now(), now() + $2::bigint * interval '1 microsecond' FROM r`

	revokeFamilySQL = `
WITH r AS (
	UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL
	RETURNING family_id, account_id)` + revokedSessions

	revokeFamilyOfSQL = `
WITH r AS (
	UPDATE refresh_tokens SET revoked_at = now()
	WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE hash = $1) AND revoked_at IS NULL
	RETURNING family_id, account_id)` + revokedSessions

	// Every session of the account but the family of the token hashed $3
	// (NULL keeps none).
	revokeAccountSessionsSQL = `
WITH r AS (
	UPDATE refresh_tokens SET revoked_at = now()
	WHERE account_id = $1 AND revoked_at IS NULL
		AND family_id IS DISTINCT FROM (SELECT family_id FROM refresh_tokens WHERE hash = $3 AND account_id = $1)
	RETURNING family_id, account_id)` + revokedSessions
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
		return fmt.Errorf("insert refresh token: %w", constraints.Map(err))
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

// revokeFamily ends a session; ttl is how long its access tokens can live
// (the revocation's lifetime).
func revokeFamily(ctx context.Context, q pgdb.Querier, family uuid.UUID, ttl time.Duration) error {
	if _, err := q.Exec(ctx, revokeFamilySQL, family, ttl.Microseconds()); err != nil {
		return fmt.Errorf("revoke session %s: %w", family, err)
	}
	return nil
}

func revokeFamilyOf(ctx context.Context, q pgdb.Querier, hash []byte, ttl time.Duration) error {
	if _, err := q.Exec(ctx, revokeFamilyOfSQL, hash, ttl.Microseconds()); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// revokeAccountSessions ends every session of the account except the one
// of the refresh token hashed keep (nil keeps none).
func revokeAccountSessions(ctx context.Context, q pgdb.Querier, accountID uuid.UUID, keep []byte, ttl time.Duration) error {
	if _, err := q.Exec(ctx, revokeAccountSessionsSQL, accountID, ttl.Microseconds(), keep); err != nil {
		return fmt.Errorf("revoke sessions of %s: %w", accountID, err)
	}
	return nil
}

const (
	insertEmailTokenSQL = `
INSERT INTO email_tokens (hash, account_id, purpose, expires_at)
VALUES ($1, $2, $3, now() + $4::bigint * interval '1 microsecond')`

	selectEmailTokenSQL = `
SELECT account_id, expires_at, used_at, now() FROM email_tokens
WHERE hash = $1 AND purpose = $2`

	lockEmailTokenSQL = selectEmailTokenSQL + `
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
		return fmt.Errorf("insert %s token: %w", p, constraints.Map(err))
	}
	return nil
}

// lockEmailToken reads a token of purpose p for update; getEmailToken
// reads it without locking.
func lockEmailToken(ctx context.Context, q pgdb.Querier, hash []byte, p purpose) (emailToken, error) {
	return readEmailToken(ctx, q, lockEmailTokenSQL, hash, p)
}

func getEmailToken(ctx context.Context, q pgdb.Querier, hash []byte, p purpose) (emailToken, error) {
	return readEmailToken(ctx, q, selectEmailTokenSQL, hash, p)
}

func readEmailToken(ctx context.Context, q pgdb.Querier, sql string, hash []byte, p purpose) (emailToken, error) {
	var t emailToken
	err := q.QueryRow(ctx, sql, hash, string(p)).Scan(&t.AccountID, &t.ExpiresAt, &t.UsedAt, &t.Now)
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
INSERT INTO login_throttle AS t (key_hash, account_hash) VALUES ($1, $2)
ON CONFLICT (key_hash) DO UPDATE SET key_hash = t.key_hash
RETURNING failures, window_start, lockouts, locked_until, expires_at, now()`

	// Reads a row without creating it; no row reads as no failure.
	selectThrottleSQL = `
SELECT failures, window_start, lockouts, locked_until, expires_at, now()
FROM login_throttle WHERE key_hash = $1`

	saveThrottleSQL = `
UPDATE login_throttle SET failures = $2, window_start = $3, lockouts = $4, locked_until = $5, expires_at = $6
WHERE key_hash = $1`

	clearThrottleSQL = `DELETE FROM login_throttle WHERE key_hash = $1`

	// Every row about an address: its own and every client's pair.
	clearAccountThrottlesSQL = `DELETE FROM login_throttle WHERE account_hash = $1`

	sweepThrottleSQL = `DELETE FROM login_throttle WHERE expires_at < now()`
)

func scanThrottle(row pgx.Row) (throttle, time.Time, error) {
	var (
		t   throttle
		now time.Time
	)
	err := row.Scan(&t.Failures, &t.WindowStart, &t.Lockouts, &t.LockedUntil, &t.ExpiresAt, &now)
	if err == nil {
		t.expire(now)
	}
	return t, now, err
}

// updateThrottle applies fn to the throttle row of key, locked, in tx, with
// the database's clock. account names the address the row is about (nil
// for a client's row).
func updateThrottle(ctx context.Context, tx pgx.Tx, key, account []byte, fn func(t *throttle, now time.Time)) error {
	t, now, err := scanThrottle(tx.QueryRow(ctx, lockThrottleSQL, key, account))
	if err != nil {
		return fmt.Errorf("login throttle: %w", err)
	}
	fn(&t, now)
	if _, err := tx.Exec(ctx, saveThrottleSQL, key, t.Failures, t.WindowStart, t.Lockouts, t.LockedUntil, t.retainUntil()); err != nil {
		return fmt.Errorf("login throttle: %w", constraints.Map(err))
	}
	return nil
}

// readThrottle reads the row of key without locking or creating it.
func readThrottle(ctx context.Context, q pgdb.Querier, key []byte) (throttle, time.Time, error) {
	t, now, err := scanThrottle(q.QueryRow(ctx, selectThrottleSQL, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return throttle{}, now, nil
	}
	if err != nil {
		return throttle{}, now, fmt.Errorf("login throttle: %w", err)
	}
	return t, now, nil
}

func clearThrottle(ctx context.Context, q pgdb.Querier, key []byte) error {
	if _, err := q.Exec(ctx, clearThrottleSQL, key); err != nil {
		return fmt.Errorf("clear login throttle: %w", err)
	}
	return nil
}

func clearAccountThrottles(ctx context.Context, q pgdb.Querier, account []byte) error {
	if _, err := q.Exec(ctx, clearAccountThrottlesSQL, account); err != nil {
		return fmt.Errorf("clear login throttles: %w", err)
	}
	return nil
}

const (
	// Counts an email to an address in its hour, starting a new hour when
	// the last one has passed; the count it returns includes this email.
	takeEmailQuotaSQL = `
INSERT INTO email_quota AS q (address_hash, window_start, sent) VALUES ($1, now(), 1)
ON CONFLICT (address_hash) DO UPDATE SET
	window_start = CASE WHEN q.window_start <= now() - $2::bigint * interval '1 microsecond' THEN now() ELSE q.window_start END,
	sent = CASE WHEN q.window_start <= now() - $2::bigint * interval '1 microsecond' THEN 1 ELSE q.sent + 1 END
RETURNING sent`

	sweepEmailQuotaSQL = `DELETE FROM email_quota WHERE window_start < now() - $1::bigint * interval '1 microsecond'`
)

// takeEmailQuota counts an email to the address hashed key and reports
// whether it is within limit emails per window.
func takeEmailQuota(ctx context.Context, q pgdb.Querier, key []byte, limit int, window time.Duration) (bool, error) {
	var sent int
	if err := q.QueryRow(ctx, takeEmailQuotaSQL, key, window.Microseconds()).Scan(&sent); err != nil {
		return false, fmt.Errorf("email quota: %w", err)
	}
	return sent <= limit, nil
}

const (
	// The revocations a verifier can still need, from since on.
	selectRevocationsSQL = `
SELECT account_id, session_id, issued_before, expires_at, now()
FROM revocations
WHERE created_at >= $1 AND expires_at > now()
ORDER BY id`

	// An account revoked as a whole: every token issued before the next
	// whole second. Tokens carry iat in whole seconds, so a token issued in
	// this second is refused too; one issued later (the account enabled
	// again) is not.
	revokeAccountSQL = `
INSERT INTO revocations (account_id, issued_before, expires_at)
VALUES ($1, date_trunc('second', now()) + interval '1 second', now() + $2::bigint * interval '1 microsecond')`

	sweepRevocationsSQL = `DELETE FROM revocations WHERE expires_at < now()`
)

// Revocation is a revoked session (SessionID set) or account.
type Revocation struct {
	AccountID    uuid.UUID
	SessionID    *uuid.UUID
	IssuedBefore time.Time
	ExpiresAt    time.Time
}

// listRevocations returns the live revocations created from since on, and
// the database's clock.
func listRevocations(ctx context.Context, q pgdb.Querier, since time.Time) ([]Revocation, time.Time, error) {
	rows, err := q.Query(ctx, selectRevocationsSQL, since)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("list revocations: %w", err)
	}
	var now time.Time
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Revocation, error) {
		var r Revocation
		err := row.Scan(&r.AccountID, &r.SessionID, &r.IssuedBefore, &r.ExpiresAt, &now)
		return r, err
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("list revocations: %w", err)
	}
	if now.IsZero() {
		if err := q.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
			return nil, time.Time{}, fmt.Errorf("list revocations: %w", err)
		}
	}
	return list, now, nil
}

func revokeAccount(ctx context.Context, q pgdb.Querier, accountID uuid.UUID, ttl time.Duration) error {
	if _, err := q.Exec(ctx, revokeAccountSQL, accountID, ttl.Microseconds()); err != nil {
		return fmt.Errorf("revoke account %s: %w", accountID, err)
	}
	return nil
}

// sweep deletes the rows that can no longer matter: expired throttles,
// email quotas of past hours, revocations past their tokens' lifetime.
func sweep(ctx context.Context, q pgdb.Querier, quotaWindow time.Duration) error {
	if _, err := q.Exec(ctx, sweepThrottleSQL); err != nil {
		return fmt.Errorf("sweep login throttle: %w", err)
	}
	if _, err := q.Exec(ctx, sweepEmailQuotaSQL, quotaWindow.Microseconds()); err != nil {
		return fmt.Errorf("sweep email quota: %w", err)
	}
	if _, err := q.Exec(ctx, sweepRevocationsSQL); err != nil {
		return fmt.Errorf("sweep revocations: %w", err)
	}
	return nil
}
