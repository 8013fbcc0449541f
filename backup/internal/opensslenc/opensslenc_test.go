package opensslenc_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mylittleshopping/shop/backup/internal/opensslenc"
)

var opensslArgs = []string{"enc", "-aes-256-cbc", "-pbkdf2", "-iter", "10000", "-md", "sha256"}

func encrypt(t *testing.T, plain []byte, pass string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := opensslenc.NewWriter(&buf, pass)
	if err != nil {
		t.Fatal(err)
	}
	// Odd-sized writes cross block boundaries.
	for off := 0; off < len(plain); off += 7 {
		end := min(off+7, len(plain))
		if _, err := w.Write(plain[off:end]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sizes(t *testing.T) map[string][]byte {
	big := make([]byte, 200_003)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"empty": {}, "one block minus one": bytes.Repeat([]byte("a"), 15),
		"one block": bytes.Repeat([]byte("b"), 16), "big": big,
	}
}

// TestOpensslDecryptsOurs runs the real openssl binary on what we write.
func TestOpensslDecryptsOurs(t *testing.T) {
	t.Parallel()
	for name, plain := range sizes(t) {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "x.enc")
			if err := os.WriteFile(f, encrypt(t, plain, "s3cret pass"), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("openssl", append(opensslArgs, "-d", "-in", f, "-pass", "pass:s3cret pass")...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			got, err := cmd.Output()
			if err != nil {
				t.Fatalf("openssl -d: %v: %s", err, stderr.String())
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("openssl decrypted %d bytes, want %d equal bytes", len(got), len(plain))
			}
		})
	}
}

// TestWeDecryptOpenssls reads what the real openssl binary writes.
func TestWeDecryptOpenssls(t *testing.T) {
	t.Parallel()
	for name, plain := range sizes(t) {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command("openssl", append(opensslArgs, "-e", "-salt", "-pass", "pass:other")...)
			cmd.Stdin = bytes.NewReader(plain)
			enc, err := cmd.Output()
			if err != nil {
				t.Fatalf("openssl -e: %v", err)
			}
			r, err := opensslenc.NewReader(bytes.NewReader(enc), "other")
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("decrypted %d bytes, want %d equal bytes", len(got), len(plain))
			}
		})
	}
}

func TestWrongPassphrase(t *testing.T) {
	t.Parallel()
	enc := encrypt(t, bytes.Repeat([]byte("hello "), 1000), "right")
	r, err := opensslenc.NewReader(bytes.NewReader(enc), "wrong")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	// A wrong key passes the padding check about once in 256 tries; the
	// payload is then garbage, never the plaintext.
	if err == nil && bytes.Contains(got, []byte("hello")) {
		t.Fatal("decrypted with the wrong passphrase")
	}
	if err != nil && !errors.Is(err, opensslenc.ErrBadDecrypt) {
		t.Fatalf("got %v, want ErrBadDecrypt", err)
	}
	if _, err := opensslenc.NewReader(bytes.NewReader([]byte("plain text, not encrypted")), "x"); err == nil {
		t.Fatal("a file without the Salted__ header was accepted")
	}
}

func TestNoPlaintextInOutput(t *testing.T) {
	t.Parallel()
	secret := []byte("buyer-4242@example.com")
	enc := encrypt(t, bytes.Repeat(secret, 100), "k")
	if bytes.Contains(enc, secret) || bytes.Contains(enc, []byte("example.com")) {
		t.Fatal("ciphertext contains the plaintext")
	}
}
