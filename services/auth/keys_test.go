package main

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/config"
	"github.com/mylittleshopping/shop/services/platform/logging"
	"github.com/mylittleshopping/shop/services/platform/servicetest"

	shopdemo "github.com/mylittleshopping/shop/services/platform/demo"
)

// jwks fetches the service's key set and checks it may be cached briefly.
func (s *service) jwks(t *testing.T) authn.JWKS {
	t.Helper()
	r := s.do(t, "GET", "/.well-known/jwks.json", "", nil).Want(t, http.StatusOK)
	if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("got Cache-Control %q, want public, max-age=300", cc)
	}
	var set authn.JWKS
	r.Decode(t, &set)
	return set
}

// TestRestartKeepsKeyAndAdmin: without a configured key, the development
// key generated at first start is kept in the database, so a second run on
// the same database signs with the same kid and the sessions of the first
// run survive; the bootstrap admin is ensured once, not duplicated.
func TestRestartKeepsKeyAndAdmin(t *testing.T) {
	t.Parallel()
	s := startService(t)
	first := s.jwks(t)
	if len(first.Keys) != 1 {
		t.Fatalf("got %d keys, want the development key alone", len(first.Keys))
	}
	admin := s.login(t, adminEmail, adminPassword)
	adminID := s.me(t, admin.AccessToken).ID
	if err := s.Stop(); err != nil {
		t.Fatalf("first run: %v", err)
	}

	s.Start(t)
	if second := s.jwks(t); second.Keys[0].Kid != first.Keys[0].Kid {
		t.Errorf("got kid %s after a restart, want %s", second.Keys[0].Kid, first.Keys[0].Kid)
	}
	if me := s.me(t, admin.AccessToken); me.ID != adminID {
		t.Errorf("got admin %s after a restart, want %s", me.ID, adminID)
	}
	s.refresh(t, admin.RefreshToken).Want(t, http.StatusOK)
	if !strings.Contains(s.Logs.String(), `"outcome":"unchanged"`) {
		t.Error("the second run did not find the bootstrap admin in place")
	}
}

// TestDemoBuyer: the demo buyer is a verified buyer from the first start,
// so a newcomer logs in at once; a password changed later survives a
// restart, and the account is not duplicated.
func TestDemoBuyer(t *testing.T) {
	t.Parallel()
	const email, password, changed = "buyer@demo.example.com", "demo-buyer-password", "the-buyer-chose-this"
	s := startService(t, withEnv("AUTH_DEMO_BUYER_EMAIL", email), withEnv("AUTH_DEMO_BUYER_PASSWORD", password), withEnv("AUTH_DEMO_SELLERS", "3"))
	// The demo sellers are the sellers of inventory's demo catalogue: the
	// ids platform/demo names, verified, with the demo password.
	for i := range 3 {
		seller := s.me(t, s.login(t, shopdemo.SellerEmail(i), password).AccessToken)
		if seller.ID != shopdemo.SellerID(1, i).String() || seller.Role != "seller" || seller.VerifiedAt == nil {
			t.Errorf("demo seller %d: got %s, role %s, verified %v; want %s, a verified seller", i+1, seller.ID, seller.Role, seller.VerifiedAt, shopdemo.SellerID(1, i))
		}
	}
	tp := s.login(t, email, password)
	me := s.me(t, tp.AccessToken)
	if me.Role != "buyer" || me.VerifiedAt == nil || me.DisabledAt != nil {
		t.Errorf("demo buyer: got role %s, verified %v, disabled %v; want a verified, enabled buyer", me.Role, me.VerifiedAt, me.DisabledAt)
	}
	s.do(t, "POST", "/v1/password", tp.AccessToken, map[string]string{"current_password": password, "new_password": changed}).Want(t, http.StatusNoContent)
	if err := s.Stop(); err != nil {
		t.Fatalf("first run: %v", err)
	}
	s.Start(t)
	if again := s.me(t, s.login(t, email, changed).AccessToken); again.ID != me.ID {
		t.Errorf("demo buyer after a restart: got account %s, want %s", again.ID, me.ID)
	}
	s.do(t, "POST", "/v1/login", "", map[string]string{"email": email, "password": password}).Want(t, http.StatusUnauthorized)
}

// TestConfiguredKeys: a configured signing key signs, and the previous keys
// (as seeds or as a PEM file of public or private keys) are published after
// it, for the tokens they signed before a rotation.
func TestConfiguredKeys(t *testing.T) {
	t.Parallel()
	current, previous, pemPublic, pemPrivate := newKey(t), newKey(t), newKey(t), newKey(t)
	dir := t.TempDir()
	currentFile := writePEM(t, dir, "current.pem", "PRIVATE KEY", mustPKCS8(t, current))
	previousFile := writePEM(t, dir, "previous.pem", "PUBLIC KEY", mustPKIX(t, pemPublic.Public()))
	appendPEM(t, previousFile, "PRIVATE KEY", mustPKCS8(t, pemPrivate))

	tests := []struct {
		name string
		env  map[string]string
		want []ed25519.PrivateKey
	}{
		{"seed", map[string]string{
			"AUTH_SIGNING_KEY":           base64.StdEncoding.EncodeToString(current.Seed()),
			"AUTH_PREVIOUS_SIGNING_KEYS": base64.RawURLEncoding.EncodeToString(previous.Seed()),
		}, []ed25519.PrivateKey{current, previous}},
		{"files", map[string]string{
			"AUTH_SIGNING_KEY_FILE":           currentFile,
			"AUTH_PREVIOUS_SIGNING_KEYS_FILE": previousFile,
		}, []ed25519.PrivateKey{current, pemPublic, pemPrivate}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var opts []servicetest.Option
			for k, v := range tt.env {
				opts = append(opts, withEnv(k, v))
			}
			s := startService(t, opts...)
			var got, want []string
			for _, k := range s.jwks(t).Keys {
				got = append(got, k.Kid)
			}
			for _, k := range tt.want {
				want = append(want, authn.KID(k.Public().(ed25519.PublicKey)))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("JWKS kids (-want +got):\n%s", diff)
			}
			tp := s.login(t, adminEmail, adminPassword)
			if kid := jwtPart(t, tp.AccessToken, 0)["kid"]; kid != want[0] {
				t.Errorf("got token kid %v, want the signing key's %s", kid, want[0])
			}
			for k, v := range tt.env {
				if !strings.HasSuffix(k, "_FILE") && strings.Contains(s.Logs.String(), v) {
					t.Errorf("the log holds %s", k)
				}
			}
		})
	}
}

// TestConfigErrors: run refuses a bad configuration before touching
// anything, naming the variable.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"DATABASE_URL":            "postgres://nobody@127.0.0.1:1/none",
		"MAILJET_API_KEY_PUBLIC":  "p",
		"MAILJET_API_KEY_PRIVATE": "s",
		"MAIL_FROM_EMAIL":         "noreply@mylittleshopping.dev",
	}
	tests := []struct {
		name, key, value, want string
	}{
		{"argon2 memory below OWASP", "AUTH_ARGON2_MEMORY_KIB", "4096", "AUTH_ARGON2_MEMORY_KIB"},
		{"argon2 iterations below OWASP", "AUTH_ARGON2_ITERATIONS", "1", "AUTH_ARGON2_ITERATIONS"},
		{"access tokens too long-lived", "AUTH_ACCESS_TOKEN_TTL", "24h", "AUTH_ACCESS_TOKEN_TTL"},
		{"verify URL not absolute", "AUTH_VERIFY_URL", "/v1/verify-email", "AUTH_VERIFY_URL"},
		{"admin without password", "AUTH_BOOTSTRAP_ADMIN_EMAIL", "root@example.com", "AUTH_BOOTSTRAP_ADMIN_PASSWORD"},
		{"two signing keys", "AUTH_SIGNING_KEY_FILE", "/etc/key.pem", "AUTH_SIGNING_KEY and AUTH_SIGNING_KEY_FILE"},
		{"no argon2id slot", "AUTH_HASH_CONCURRENCY", "0", "AUTH_HASH_CONCURRENCY"},
		{"demo buyer without password", "AUTH_DEMO_BUYER_EMAIL", "buyer@demo.example.com", "AUTH_DEMO_BUYER_PASSWORD"},
		{"demo sellers without the demo buyer", "AUTH_DEMO_SELLERS", "5", "AUTH_DEMO_SELLERS"},
		{"fewer password requests than hashes", "AUTH_CREDENTIAL_CONCURRENCY", "2", "AUTH_CREDENTIAL_CONCURRENCY"},
		{"no email at all", "AUTH_EMAILS_PER_ADDRESS_PER_HOUR", "0", "AUTH_EMAILS_PER_ADDRESS_PER_HOUR"},
		{"revocations never polled", "AUTH_REVOCATIONS_POLL_INTERVAL", "10m", "AUTH_REVOCATIONS_POLL_INTERVAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{tt.key: tt.value, "AUTH_SIGNING_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32))}
			for k, v := range base {
				env[k] = v
			}
			if tt.key != "AUTH_SIGNING_KEY_FILE" {
				delete(env, "AUTH_SIGNING_KEY")
			}
			err := run(t.Context(), logging.ForTest(t), config.MapLookup(env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustPKCS8(t *testing.T, k ed25519.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func mustPKIX(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func appendPEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pem.Encode(f, &pem.Block{Type: typ, Bytes: der}); err != nil {
		t.Fatal(err)
	}
}
