package testagents

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// S3 is a running SeaweedFS server with its S3 gateway over TLS.
type S3 struct {
	Host      string // 127.0.0.1
	Port      int    // the HTTPS port
	CAFile    string // PEM of the CA that signed the gateway's certificate, readable by all
	AccessKey string
	SecretKey string
}

// StartSeaweedFS starts `weed server` (master, volume, filer, S3) on free
// loopback ports with a certificate for 127.0.0.1 signed by a CA made
// here, and one identity allowed everything.
func StartSeaweedFS(t testing.TB) *S3 {
	t.Helper()
	bin, err := exec.LookPath("weed")
	if err != nil {
		t.Fatalf("weed not on PATH (scripts/tools.sh builds it): %v", err)
	}
	dir := t.TempDir()
	// The CA file is read by pgBackRest as the postgres user.
	pub, err := os.MkdirTemp("/tmp", "s3ca")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pub) })
	if err := os.Chmod(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &S3{Host: "127.0.0.1", AccessKey: "backupkey", SecretKey: "backupsecret-" + strconv.Itoa(os.Getpid())}
	crt, key := filepath.Join(dir, "s3.crt"), filepath.Join(dir, "s3.key")
	s.CAFile = filepath.Join(pub, "ca.pem")
	writeCerts(t, s.CAFile, crt, key)
	ident := fmt.Sprintf(`{"identities":[{"name":"backup","credentials":[{"accessKey":%q,"secretKey":%q}],"actions":["Admin","Read","Write","List","Tagging"]}]}`, s.AccessKey, s.SecretKey)
	identFile := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(identFile, []byte(ident), 0o600); err != nil {
		t.Fatal(err)
	}
	p := freePorts(t, 10)
	s.Port = p[8]
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	args := []string{"server", "-dir=" + data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port=" + strconv.Itoa(p[0]), "-master.port.grpc=" + strconv.Itoa(p[1]),
		"-volume.port=" + strconv.Itoa(p[2]), "-volume.port.grpc=" + strconv.Itoa(p[3]),
		"-filer.port=" + strconv.Itoa(p[4]), "-filer.port.grpc=" + strconv.Itoa(p[5]),
		"-s3", "-s3.port=" + strconv.Itoa(p[6]), "-s3.port.grpc=" + strconv.Itoa(p[7]),
		"-s3.port.https=" + strconv.Itoa(p[8]), "-s3.cert.file=" + crt, "-s3.key.file=" + key,
		"-s3.config=" + identFile, "-s3.port.iceberg=0", "-s3.port.lance=0", "-metricsPort=" + strconv.Itoa(p[9]),
		"-master.volumeSizeLimitMB=64", "-volume.max=16",
	}
	logf, err := os.Create(filepath.Join(dir, "weed.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start weed: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		logf.Close()
	})
	// Ready when the HTTPS gateway answers and a volume server has joined
	// (S3 writes fail before).
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(s.CAFile)
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	begin := time.Now()
	for {
		s3ok, volOK := false, false
		if resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/", s.Port)); err == nil {
			resp.Body.Close()
			s3ok = true
		}
		if resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/dir/status", p[0])); err == nil {
			var b [4096]byte
			n, _ := resp.Body.Read(b[:])
			resp.Body.Close()
			volOK = n > 0 && containsAny(string(b[:n]), `"Url"`, `"PublicUrl"`, `"DataNodes"`)
		}
		if s3ok && volOK {
			t.Logf("seaweedfs: S3 gateway on https://127.0.0.1:%d, ready in %s", s.Port, time.Since(begin).Round(time.Millisecond))
			return s
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "weed.log"))
			t.Fatalf("weed exited: %v\n%s", err, tail(log))
		case <-ctx.Done():
			log, _ := os.ReadFile(filepath.Join(dir, "weed.log"))
			t.Fatalf("weed not ready in 90s (s3 %v, volume %v)\n%s", s3ok, volOK, tail(log))
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// writeCerts makes a CA and a server certificate for 127.0.0.1/localhost.
func writeCerts(t testing.TB, caFile, crtFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "backup test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		// pgBackRest 2.45 matches the endpoint against DNS names only, so
		// the IP is a DNS name too (Go clients use the IP SAN).
		DNSNames: []string{"localhost", "127.0.0.1"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(path, typ string, b []byte, mode os.FileMode) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(caFile, "CERTIFICATE", caDER, 0o644)
	write(crtFile, "CERTIFICATE", der, 0o600)
	write(keyFile, "EC PRIVATE KEY", keyDER, 0o600)
}
