// Package accounts is the auth service's domain: accounts and their rules
// (who may read or change which account), passwords hashed with argon2id,
// email verification and password reset by emailed single-use tokens,
// sessions as rotating refresh-token families behind short-lived access
// tokens, and the brute-force lock-out of logins.
//
// Inputs arrive validated and normalized (see CheckEmail and friends, which
// the HTTP boundary calls); the rules here decide, and store.go talks SQL.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/authn"
	shopdemo "github.com/mylittleshopping/shop/services/platform/demo"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/mail"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// Role is what an account may do in the shop.
type Role string

// The roles. Signup offers buyer and seller; admins are made by admins (or
// by the bootstrap configuration).
const (
	Buyer  Role = authn.RoleBuyer
	Seller Role = authn.RoleSeller
	Admin  Role = authn.RoleAdmin
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r == Buyer || r == Seller || r == Admin }

// Account is a user of the shop.
type Account struct {
	ID          uuid.UUID
	Email       string
	DisplayName string
	Role        Role
	VerifiedAt  *time.Time
	DisabledAt  *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time

	passwordHash string
}

// Actor is the authenticated caller of an operation on accounts.
type Actor struct {
	ID   uuid.UUID
	Role Role
}

// mayRead reports whether the actor may see account id: its own, or any
// for an admin.
func (a Actor) mayRead(id uuid.UUID) bool { return a.ID == id || a.Role == Admin }

// Config is the accounts part of the service's configuration.
type Config struct {
	AccessTokenTTL  time.Duration `env:"AUTH_ACCESS_TOKEN_TTL" default:"15m"`
	RefreshTokenTTL time.Duration `env:"AUTH_REFRESH_TOKEN_TTL" default:"720h"`
	// VerifyURL and ResetURL are the pages the emails link to, with
	// #token=… (the aggregator's GET /v1/verify-email and GET
	// /v1/password/reset): each posts the token, when the person acts, to
	// POST /v1/verify-email or POST /v1/password/reset.
	VerifyURL string `env:"AUTH_VERIFY_URL" default:"http://127.0.0.1:8080/v1/verify-email"`
	ResetURL  string `env:"AUTH_RESET_URL" default:"http://127.0.0.1:8080/v1/password/reset"`
	// The argon2id cost of new hashes; never below MinParams. Raising them
	// rehashes each password at its owner's next login.
	Argon2MemoryKiB   uint32 `env:"AUTH_ARGON2_MEMORY_KIB" default:"19456"`
	Argon2Iterations  uint32 `env:"AUTH_ARGON2_ITERATIONS" default:"2"`
	Argon2Parallelism uint8  `env:"AUTH_ARGON2_PARALLELISM" default:"1"`
	// HashConcurrency bounds the argon2id hashes in flight (each takes
	// Argon2MemoryKiB for its duration: size the task's memory for it, see
	// terraform/modules/shop/services.tf). A request that checks or sets a password
	// must start its hash within HashQueueTimeout of arriving (one budget
	// for both bounds), or is answered 503 busy.
	HashConcurrency  int           `env:"AUTH_HASH_CONCURRENCY" default:"4"`
	HashQueueTimeout time.Duration `env:"AUTH_HASH_QUEUE_TIMEOUT" default:"1s"`
	// CredentialConcurrency bounds the requests that check or set a
	// password (login, signup, password change and reset) in progress at
	// once, database work included; one that finds no place within
	// HashQueueTimeout answers 503 busy. It keeps every admitted request
	// well inside the aggregator's call timeout however many arrive.
	CredentialConcurrency int `env:"AUTH_CREDENTIAL_CONCURRENCY" default:"16"`
	// EmailsPerHour is how many emails forgot-password, resend and signup
	// may send to one address per hour; the answer is the same beyond.
	EmailsPerHour int `env:"AUTH_EMAILS_PER_ADDRESS_PER_HOUR" default:"3"`
	// SweepInterval is how often expired throttles, email quotas and
	// revocations are deleted.
	SweepInterval time.Duration `env:"AUTH_SWEEP_INTERVAL" default:"5m"`
	// The bootstrap admin is ensured at every start (see EnsureAdmin).
	BootstrapAdminEmail    string `env:"AUTH_BOOTSTRAP_ADMIN_EMAIL"`
	BootstrapAdminPassword string `env:"AUTH_BOOTSTRAP_ADMIN_PASSWORD" secret:"true"`
	// The demo buyer, when set, is ensured at every start the same way (a
	// verified buyer; an existing account keeps its password), so that a
	// newcomer's first look at a dev shop can log in and check out.
	DemoBuyerEmail    string `env:"AUTH_DEMO_BUYER_EMAIL"`
	DemoBuyerPassword string `env:"AUTH_DEMO_BUYER_PASSWORD" secret:"true"`
	// DemoSellers demo sellers (platform/demo: the sellers of inventory's
	// demo catalogue of DemoSeed) are ensured the same way, with the demo
	// buyer's password, so that the demo catalogue can be checked out.
	DemoSellers int    `env:"AUTH_DEMO_SELLERS" default:"0"`
	DemoSeed    uint64 `env:"AUTH_DEMO_SEED" default:"1"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	var errs []error
	if c.AccessTokenTTL < time.Minute || c.AccessTokenTTL > time.Hour {
		errs = append(errs, errors.New("AUTH_ACCESS_TOKEN_TTL must be between 1m and 1h"))
	}
	if c.RefreshTokenTTL < c.AccessTokenTTL {
		errs = append(errs, errors.New("AUTH_REFRESH_TOKEN_TTL must be at least AUTH_ACCESS_TOKEN_TTL"))
	}
	for _, v := range []struct{ name, value string }{{"AUTH_VERIFY_URL", c.VerifyURL}, {"AUTH_RESET_URL", c.ResetURL}} {
		if u, err := url.Parse(v.value); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s %q must be an absolute http(s) URL", v.name, v.value))
		}
	}
	if p := c.argon2(); !p.AtLeast(MinParams) {
		errs = append(errs, fmt.Errorf("AUTH_ARGON2_MEMORY_KIB, AUTH_ARGON2_ITERATIONS and AUTH_ARGON2_PARALLELISM must be at least %d, %d and %d (OWASP's minimum for argon2id)",
			MinParams.Memory, MinParams.Iterations, MinParams.Parallelism))
	}
	if c.Argon2MemoryKiB > 1<<20 {
		errs = append(errs, errors.New("AUTH_ARGON2_MEMORY_KIB must be at most 1048576 (1 GiB per concurrent login)"))
	}
	if c.HashConcurrency < 1 || c.HashConcurrency > 256 {
		errs = append(errs, errors.New("AUTH_HASH_CONCURRENCY must be between 1 and 256"))
	}
	if c.CredentialConcurrency < c.HashConcurrency || c.CredentialConcurrency > 4096 {
		errs = append(errs, errors.New("AUTH_CREDENTIAL_CONCURRENCY must be between AUTH_HASH_CONCURRENCY and 4096"))
	}
	if c.HashQueueTimeout < 0 || c.HashQueueTimeout > 10*time.Second {
		errs = append(errs, errors.New("AUTH_HASH_QUEUE_TIMEOUT must be between 0s and 10s"))
	}
	if c.EmailsPerHour < 1 || c.EmailsPerHour > 100 {
		errs = append(errs, errors.New("AUTH_EMAILS_PER_ADDRESS_PER_HOUR must be between 1 and 100"))
	}
	if c.SweepInterval <= 0 {
		errs = append(errs, errors.New("AUTH_SWEEP_INTERVAL must be positive"))
	}
	errs = append(errs, checkEnsured("AUTH_BOOTSTRAP_ADMIN", c.BootstrapAdminEmail, c.BootstrapAdminPassword)...)
	errs = append(errs, checkEnsured("AUTH_DEMO_BUYER", c.DemoBuyerEmail, c.DemoBuyerPassword)...)
	if c.DemoSellers < 0 || c.DemoSellers > 10_000 || c.DemoSellers > 0 && c.DemoBuyerEmail == "" {
		errs = append(errs, errors.New("AUTH_DEMO_SELLERS must be between 0 and 10000, and goes with AUTH_DEMO_BUYER_EMAIL (whose password they share)"))
	}
	if c.DemoBuyerEmail != "" && NormalizeEmail(c.DemoBuyerEmail) == NormalizeEmail(c.BootstrapAdminEmail) {
		errs = append(errs, errors.New("AUTH_DEMO_BUYER_EMAIL must not be AUTH_BOOTSTRAP_ADMIN_EMAIL"))
	}
	return errors.Join(errs...)
}

// checkEnsured checks the pair PREFIX_EMAIL and PREFIX_PASSWORD of an
// account ensured at start: both or neither.
func checkEnsured(prefix, email, password string) []error {
	if email == "" && password == "" {
		return nil
	}
	var errs []error
	if msg := CheckEmail(NormalizeEmail(email)); msg != "" {
		errs = append(errs, fmt.Errorf("%s_EMAIL %s (it goes with %s_PASSWORD)", prefix, msg, prefix))
	}
	if msg := CheckPassword(password); msg != "" {
		errs = append(errs, fmt.Errorf("%s_PASSWORD %s (it goes with %s_EMAIL)", prefix, msg, prefix))
	}
	return errs
}

func (c *Config) argon2() Params {
	return Params{Memory: c.Argon2MemoryKiB, Iterations: c.Argon2Iterations, Parallelism: c.Argon2Parallelism}
}

// Service applies the rules of accounts and sessions.
type Service struct {
	pool   *pgxpool.Pool
	cfg    Config
	params Params
	signer *authn.Signer
	sender *mail.Sender
	gate   *gate // argon2id computations
	door   *gate // requests that check or set a password
	log    hclog.Logger
	// dummyHash is checked against when a login names no account, so that
	// an unknown address costs the same time as a wrong password.
	dummyHash string
}

// NewService returns the service. signer issues access tokens; sender
// delivers the emails that carry tokens (see DeliverEmail).
func NewService(pool *pgxpool.Pool, cfg Config, signer *authn.Signer, sender *mail.Sender, log hclog.Logger) *Service {
	return &Service{
		pool:      pool,
		cfg:       cfg,
		params:    cfg.argon2(),
		signer:    signer,
		sender:    sender,
		gate:      newGate(cfg.HashConcurrency, cfg.HashQueueTimeout),
		door:      newGate(cfg.CredentialConcurrency, cfg.HashQueueTimeout),
		log:       log.Named("accounts"),
		dummyHash: hashPassword("not a password anyone has", cfg.argon2()),
	}
}

// revocationTTL is how long a revocation must be listed: as long as a
// token it refuses can be valid (its lifetime, plus more than any
// verifier's leeway for clock skew).
func (s *Service) revocationTTL() time.Duration { return s.cfg.AccessTokenTTL + 5*time.Minute }

// Get returns account id, if the actor may see it. Another user's account
// is NotFound, exactly as a missing one, so ids cannot be probed.
func (s *Service) Get(ctx context.Context, actor Actor, id uuid.UUID) (Account, error) {
	if !actor.mayRead(id) {
		return Account{}, errAccountNotFound(id)
	}
	return getAccount(ctx, s.pool, id)
}

// Summary is what other services may learn of an account: its address,
// its role, and whether the address is verified.
type Summary struct {
	ID       uuid.UUID
	Email    string
	Role     Role
	Verified bool
}

// Lookup returns the summary of account id for another service (internal:
// no actor, as only services inside the cluster reach it). A missing
// account is NotFound.
func (s *Service) Lookup(ctx context.Context, id uuid.UUID) (Summary, error) {
	return getSummary(ctx, s.pool, id)
}

// ListFilter selects a page of accounts.
type ListFilter struct {
	Role  Role // "" for every role
	Limit int
	After *Cursor
}

// Cursor is the position after which a page starts (keyset pagination on
// created_at, id).
type Cursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// List returns a page of accounts, oldest first, and the cursor of the next
// page (nil on the last). Admins only.
func (s *Service) List(ctx context.Context, actor Actor, f ListFilter) ([]Account, *Cursor, error) {
	if actor.Role != Admin {
		return nil, nil, apierr.Errorf(apierr.Forbidden, "only admins may list accounts")
	}
	limit := max(f.Limit, 1)
	accs, err := listAccounts(ctx, s.pool, f.Role, f.After, limit+1) // one more tells whether a next page exists
	if err != nil {
		return nil, nil, err
	}
	if len(accs) <= limit {
		return accs, nil, nil
	}
	accs = accs[:limit]
	last := accs[len(accs)-1]
	return accs, &Cursor{CreatedAt: last.CreatedAt, ID: last.ID}, nil
}

// Patch is a change to an account; nil fields are left alone.
type Patch struct {
	DisplayName *string
	Role        *Role
	Disabled    *bool
}

// Update applies p to account id. Users edit their own display name;
// role and disabled are for admins (Forbidden otherwise). Disabling an
// account ends its sessions and revokes its access tokens.
func (s *Service) Update(ctx context.Context, actor Actor, id uuid.UUID, p Patch) (Account, error) {
	if !actor.mayRead(id) {
		return Account{}, errAccountNotFound(id)
	}
	if (p.Role != nil || p.Disabled != nil) && actor.Role != Admin {
		return Account{}, apierr.Errorf(apierr.Forbidden, "only admins may change an account's role or disable it")
	}
	var acc Account
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if acc, err = updateAccount(ctx, tx, id, p); err != nil {
			return err
		}
		if acc.DisabledAt != nil {
			if err := revokeAccountSessions(ctx, tx, id, nil, s.revocationTTL()); err != nil {
				return err
			}
			return revokeAccount(ctx, tx, id, s.revocationTTL())
		}
		return nil
	})
	if err != nil {
		return Account{}, err
	}
	if p.Role != nil || p.Disabled != nil {
		logging.Of(ctx, s.log).Info("account changed by admin", "account_id", id, "admin_id", actor.ID, "role", acc.Role, "disabled", acc.DisabledAt != nil)
	}
	return acc, nil
}

// Delete erases account id with its tokens, if the actor may see it, and
// revokes the access tokens already issued. The address may sign up again.
func (s *Service) Delete(ctx context.Context, actor Actor, id uuid.UUID) error {
	if !actor.mayRead(id) {
		return errAccountNotFound(id)
	}
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := deleteAccount(ctx, tx, id); err != nil {
			return err
		}
		return revokeAccount(ctx, tx, id, s.revocationTTL())
	})
	if err != nil {
		return err
	}
	logging.Of(ctx, s.log).Info("account deleted", "account_id", id, "by", actor.ID)
	return nil
}

// EnsureAdmin makes sure the account of email exists, is an admin, is
// verified and is enabled. An existing account keeps its password: the
// bootstrap password only creates the account, so changing it later (or
// resetting it) sticks across restarts.
func (s *Service) EnsureAdmin(ctx context.Context, email, password string) error {
	return s.ensure(ctx, "bootstrap admin", Admin, "Administrator", email, password)
}

// EnsureDemoBuyer is EnsureAdmin for the demo buyer: a verified, enabled
// buyer.
func (s *Service) EnsureDemoBuyer(ctx context.Context, email, password string) error {
	return s.ensure(ctx, "demo buyer", Buyer, "Demo buyer", email, password)
}

// EnsureDemoSellers ensures the n demo sellers of the catalogue of seed
// (platform/demo names them), verified and enabled, created with password
// when missing: the sellers of inventory's demo catalogue, whose products a
// checkout can then buy (it needs each seller's address).
func (s *Service) EnsureDemoSellers(ctx context.Context, n int, seed uint64, password string) error {
	hash, err := s.hash(ctx, password) // one hash for all: the same password
	if err != nil {
		return err
	}
	created := 0
	for i := range n {
		outcome, err := ensureAccount(ctx, s.pool, Account{
			ID: shopdemo.SellerID(seed, i), Email: shopdemo.SellerEmail(i),
			DisplayName: fmt.Sprintf("Demo seller %d", i+1), Role: Seller, passwordHash: hash,
		})
		if err != nil {
			return fmt.Errorf("demo seller %d: %w", i+1, err)
		}
		if outcome == "created" {
			created++
		}
	}
	s.log.Info("demo sellers", "sellers", n, "created", created)
	return nil
}

// ensure makes sure the account of email exists with role, verified and
// enabled, created with password and name when missing.
func (s *Service) ensure(ctx context.Context, what string, role Role, name, email, password string) error {
	email = NormalizeEmail(email)
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return err
	}
	outcome, err := ensureAccount(ctx, s.pool, Account{ID: id, Email: email, DisplayName: name, Role: role, passwordHash: hash})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	s.log.Info(what, "outcome", outcome)
	return nil
}

func errAccountNotFound(id uuid.UUID) error {
	return apierr.Errorf(apierr.NotFound, "account %s not found", id)
}

// Revocations returns the revocations created from since on that can still
// refuse a live token, and the database's time of the answer.
func (s *Service) Revocations(ctx context.Context, since time.Time) ([]Revocation, time.Time, error) {
	return listRevocations(ctx, s.pool, since)
}

// RunSweeper deletes, every SweepInterval until ctx ends, the rows that
// can no longer matter: expired login throttles, past hours' email quotas
// and revocations whose tokens have all expired.
func (s *Service) RunSweeper(ctx context.Context) {
	tick := time.NewTicker(s.cfg.SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := sweep(ctx, s.pool, time.Hour); err != nil && ctx.Err() == nil {
			s.log.Warn("sweep", "error", err)
		}
	}
}
