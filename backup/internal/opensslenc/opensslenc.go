// Package opensslenc reads and writes the file format of
//
//	openssl enc -aes-256-cbc -pbkdf2 -iter 10000 -md sha256 -salt
//
// so that an operator can decrypt a dump with nothing but a stock openssl:
// "Salted__", an 8-byte random salt, then AES-256-CBC with PKCS#7 padding,
// whose key (32 bytes) and IV (16 bytes) are the first 48 bytes of
// PBKDF2-HMAC-SHA256(passphrase, salt, 10000 iterations).
//
// The format has no authentication tag (openssl enc has none): a wrong
// passphrase or a damaged file is detected by the padding check, and for
// a gzip payload by gzip's own CRC, not cryptographically.
package opensslenc

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// Iterations is the PBKDF2 iteration count (openssl's -iter).
const Iterations = 10000

const magic = "Salted__"

// ErrBadDecrypt is returned when the padding of the last block is invalid:
// the passphrase is wrong or the file is damaged (openssl says "bad decrypt").
var ErrBadDecrypt = errors.New("bad decrypt: wrong passphrase or damaged file")

func deriveKey(pass string, salt []byte) (cipher.Block, []byte, error) {
	if pass == "" {
		return nil, nil, errors.New("empty passphrase")
	}
	km, err := pbkdf2.Key(sha256.New, pass, salt, Iterations, 32+aes.BlockSize)
	if err != nil {
		return nil, nil, fmt.Errorf("derive key: %w", err)
	}
	block, err := aes.NewCipher(km[:32])
	if err != nil {
		return nil, nil, err
	}
	return block, km[32:], nil
}

// NewWriter returns a writer that encrypts what is written to it into w.
// Close writes the final padded block; it does not close w.
func NewWriter(w io.Writer, pass string) (io.WriteCloser, error) {
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	block, iv, err := deriveKey(pass, salt)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(w, magic); err != nil {
		return nil, err
	}
	if _, err := w.Write(salt); err != nil {
		return nil, err
	}
	return &writer{w: w, mode: cipher.NewCBCEncrypter(block, iv)}, nil
}

type writer struct {
	w      io.Writer
	mode   cipher.BlockMode
	buf    []byte // less than a block, waiting for more
	out    []byte
	closed bool
}

func (e *writer) Write(p []byte) (int, error) {
	if e.closed {
		return 0, errors.New("opensslenc: write after close")
	}
	n := len(p)
	e.buf = append(e.buf, p...)
	full := len(e.buf) - len(e.buf)%aes.BlockSize
	if full == 0 {
		return n, nil
	}
	if cap(e.out) < full {
		e.out = make([]byte, full)
	}
	out := e.out[:full]
	e.mode.CryptBlocks(out, e.buf[:full])
	e.buf = append(e.buf[:0], e.buf[full:]...)
	if _, err := e.w.Write(out); err != nil {
		return 0, err
	}
	return n, nil
}

func (e *writer) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	pad := aes.BlockSize - len(e.buf)%aes.BlockSize
	last := append(e.buf, bytes.Repeat([]byte{byte(pad)}, pad)...)
	e.mode.CryptBlocks(last, last)
	_, err := e.w.Write(last)
	return err
}

// NewReader returns a reader of the plaintext of the encrypted stream r.
// It reads the header at once, so that a file that is not in the format
// fails here; a wrong passphrase fails at the end with ErrBadDecrypt.
func NewReader(r io.Reader, pass string) (io.Reader, error) {
	head := make([]byte, len(magic)+8)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if string(head[:len(magic)]) != magic {
		return nil, errors.New("not an openssl enc file with a salt (no Salted__ header)")
	}
	block, iv, err := deriveKey(pass, head[len(magic):])
	if err != nil {
		return nil, err
	}
	return &reader{r: r, mode: cipher.NewCBCDecrypter(block, iv)}, nil
}

type reader struct {
	r       io.Reader
	mode    cipher.BlockMode
	in      []byte // ciphertext read but not yet decrypted
	plain   []byte // decrypted, not yet returned
	eof     bool
	lastErr error
}

func (d *reader) Read(p []byte) (int, error) {
	for len(d.plain) == 0 {
		if d.lastErr != nil {
			return 0, d.lastErr
		}
		if err := d.fill(); err != nil {
			d.lastErr = err
		}
	}
	n := copy(p, d.plain)
	d.plain = d.plain[n:]
	return n, nil
}

// fill decrypts every complete block read so far but the last one, which
// may be the padded final block and is held back until EOF tells.
func (d *reader) fill() error {
	if d.eof {
		return io.EOF
	}
	chunk := make([]byte, 32*1024)
	n, err := d.r.Read(chunk)
	d.in = append(d.in, chunk[:n]...)
	switch {
	case err == io.EOF:
		d.eof = true
		if len(d.in) == 0 || len(d.in)%aes.BlockSize != 0 {
			return fmt.Errorf("truncated: %d bytes of ciphertext is not whole blocks", len(d.in))
		}
		d.mode.CryptBlocks(d.in, d.in)
		pad := int(d.in[len(d.in)-1])
		if pad == 0 || pad > aes.BlockSize || pad > len(d.in) {
			return ErrBadDecrypt
		}
		for _, b := range d.in[len(d.in)-pad:] {
			if int(b) != pad {
				return ErrBadDecrypt
			}
		}
		d.plain = d.in[:len(d.in)-pad]
		d.in = nil
		if len(d.plain) == 0 {
			return io.EOF
		}
		return nil
	case err != nil:
		return err
	}
	ready := len(d.in) - len(d.in)%aes.BlockSize
	if ready == len(d.in) {
		ready -= aes.BlockSize // keep the possible last block
	}
	if ready <= 0 {
		return nil
	}
	out := make([]byte, ready)
	d.mode.CryptBlocks(out, d.in[:ready])
	d.in = append(d.in[:0], d.in[ready:]...)
	d.plain = out
	return nil
}
