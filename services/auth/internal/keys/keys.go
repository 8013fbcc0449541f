// Package keys finds the Ed25519 key the auth service signs access tokens
// with, and the public keys it publishes: the signing key's, and those of
// previous (or upcoming) keys that verifiers must still accept during a
// rotation.
//
// The signing key comes from configuration: AUTH_SIGNING_KEY (the 32-byte
// seed, base64) or AUTH_SIGNING_KEY_FILE (PEM, PKCS#8). Without either,
// the service generates a development key at first start and keeps it in
// its database, so that restarts do not log everyone out.
package keys

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// Config says where the keys are.
type Config struct {
	SigningKey     string `env:"AUTH_SIGNING_KEY" secret:"true"`
	SigningKeyFile string `env:"AUTH_SIGNING_KEY_FILE"`
	// PreviousKeys are published in the JWKS but never sign: seeds in
	// AUTH_SIGNING_KEY's form, comma separated.
	PreviousKeys []string `env:"AUTH_PREVIOUS_SIGNING_KEYS" secret:"true"`
	// PreviousKeysFile holds PEM blocks: PRIVATE KEY (PKCS#8) or PUBLIC KEY
	// (PKIX), so an operator may keep only the public half of a retired key.
	PreviousKeysFile string `env:"AUTH_PREVIOUS_SIGNING_KEYS_FILE"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if c.SigningKey != "" && c.SigningKeyFile != "" {
		return errors.New("AUTH_SIGNING_KEY and AUTH_SIGNING_KEY_FILE are exclusive: set one")
	}
	return nil
}

// Set is the service's keys.
type Set struct {
	// Signing signs every new access token.
	Signing ed25519.PrivateKey
	// Source says where Signing came from: "AUTH_SIGNING_KEY",
	// "AUTH_SIGNING_KEY_FILE" or "database (development key)".
	Source string
	// Previous are published next to Signing's public key.
	Previous []ed25519.PublicKey
}

// JWKS is the document of /.well-known/jwks.json: the signing key first.
func (s *Set) JWKS() authn.JWKS {
	set := authn.JWKS{Keys: []authn.JWK{authn.PublicJWK(s.Signing.Public().(ed25519.PublicKey))}}
	seen := map[string]bool{set.Keys[0].Kid: true}
	for _, pub := range s.Previous {
		jwk := authn.PublicJWK(pub)
		if !seen[jwk.Kid] {
			seen[jwk.Kid] = true
			set.Keys = append(set.Keys, jwk)
		}
	}
	return set
}

// Load finds the keys cfg describes, falling back to the development key
// kept in the database q, and logs which source is used (never the key).
func Load(ctx context.Context, cfg Config, q pgdb.Querier, log hclog.Logger) (*Set, error) {
	set := &Set{}
	var err error
	switch {
	case cfg.SigningKey != "":
		set.Source = "AUTH_SIGNING_KEY"
		set.Signing, err = parseSeed(cfg.SigningKey)
	case cfg.SigningKeyFile != "":
		set.Source = "AUTH_SIGNING_KEY_FILE"
		set.Signing, err = readPrivateKeyFile(cfg.SigningKeyFile)
	default:
		set.Source = "database (development key)"
		set.Signing, err = devKey(ctx, q)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key from %s: %w", set.Source, err)
	}
	for i, s := range cfg.PreviousKeys {
		k, err := parseSeed(s)
		if err != nil {
			return nil, fmt.Errorf("AUTH_PREVIOUS_SIGNING_KEYS item %d: %w", i+1, err)
		}
		set.Previous = append(set.Previous, k.Public().(ed25519.PublicKey))
	}
	if cfg.PreviousKeysFile != "" {
		pubs, err := readPublicKeysFile(cfg.PreviousKeysFile)
		if err != nil {
			return nil, fmt.Errorf("AUTH_PREVIOUS_SIGNING_KEYS_FILE: %w", err)
		}
		set.Previous = append(set.Previous, pubs...)
	}
	kids := make([]string, 0, len(set.Previous))
	for _, pub := range set.Previous {
		kids = append(kids, authn.KID(pub))
	}
	log.Named("keys").Info("signing key loaded", "source", set.Source,
		"kid", authn.KID(set.Signing.Public().(ed25519.PublicKey)), "previous_kids", kids)
	if cfg.SigningKey == "" && cfg.SigningKeyFile == "" {
		log.Named("keys").Warn("signing with a development key kept in the database; set AUTH_SIGNING_KEY or AUTH_SIGNING_KEY_FILE in production")
	}
	return set, nil
}

// parseSeed reads a base64 Ed25519 seed (standard or URL alphabet, padded
// or not).
func parseSeed(s string) (ed25519.PrivateKey, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != ed25519.SeedSize {
				return nil, fmt.Errorf("decodes to %d bytes; an Ed25519 seed is %d (head -c 32 /dev/urandom | base64)", len(b), ed25519.SeedSize)
			}
			return ed25519.NewKeyFromSeed(b), nil
		}
	}
	return nil, errors.New("is not base64")
}

func readPrivateKeyFile(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s holds no PEM PRIVATE KEY block (openssl genpkey -algorithm ed25519)", path)
	}
	return parsePKCS8(block.Bytes)
}

func parsePKCS8(der []byte) (ed25519.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is a %T, not Ed25519", k)
	}
	return ek, nil
}

func readPublicKeysFile(path string) ([]ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pubs []ed25519.PublicKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		switch block.Type {
		case "PRIVATE KEY":
			k, err := parsePKCS8(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			pubs = append(pubs, k.Public().(ed25519.PublicKey))
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			pub, ok := k.(ed25519.PublicKey)
			if !ok {
				return nil, fmt.Errorf("%s: key is a %T, not Ed25519", path, k)
			}
			pubs = append(pubs, pub)
		default:
			return nil, fmt.Errorf("%s: unexpected PEM block %q; want PRIVATE KEY or PUBLIC KEY", path, block.Type)
		}
	}
	if len(pubs) == 0 {
		return nil, fmt.Errorf("%s holds no PEM key", path)
	}
	return pubs, nil
}

const (
	// The first start's insert wins; every later or concurrent start reads
	// the winner.
	insertDevKey = `INSERT INTO dev_signing_key (seed) VALUES ($1) ON CONFLICT (singleton) DO NOTHING`
	selectDevKey = `SELECT seed FROM dev_signing_key`
)

// devKey returns the development key kept in the database, generating it
// on first use.
func devKey(ctx context.Context, q pgdb.Querier) (ed25519.PrivateKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(seed) // never fails (crypto/rand documents it)
	if _, err := q.Exec(ctx, insertDevKey, seed); err != nil {
		return nil, err
	}
	var stored []byte
	if err := q.QueryRow(ctx, selectDevKey).Scan(&stored); err != nil {
		return nil, err
	}
	if len(stored) != ed25519.SeedSize {
		return nil, fmt.Errorf("stored seed has %d bytes", len(stored))
	}
	return ed25519.NewKeyFromSeed(stored), nil
}
