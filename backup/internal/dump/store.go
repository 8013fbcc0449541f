package dump

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mylittleshopping/shop/backup/internal/pgbackrest"
)

// store is where one repository keeps a database's dumps: a folder for a
// posix repository, a key prefix in the bucket for an S3 one.
type store interface {
	// Put stores r under name; size is its length.
	Put(ctx context.Context, name string, r io.Reader, size int64) error
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// List returns the names in the store.
	List(ctx context.Context) ([]string, error)
	Delete(ctx context.Context, name string) error
	// Where names an object for messages and records.
	Where(name string) string
}

// openStore returns the dump store of db in repository repo.
func openStore(repo pgbackrest.Repo, db string) (store, error) {
	switch repo.Type {
	case "posix":
		return posixStore{dir: filepath.Join(repo.Path, "dump", db)}, nil
	case "s3":
		return newS3Store(*repo.S3, strings.TrimPrefix(path.Join(repo.Path, "dump", db), "/"))
	}
	return nil, fmt.Errorf("%s: repository type %s", repo.Name(), repo.Type)
}

type posixStore struct{ dir string }

func (s posixStore) Where(name string) string { return filepath.Join(s.dir, name) }

// Put writes through a temporary file renamed into place, so a dump is
// either whole or absent.
func (s posixStore) Put(ctx context.Context, name string, r io.Reader, _ int64) error {
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return err
	}
	tmp := s.Where("." + name + ".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.Where(name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", s.Where(name), err)
	}
	return nil
}

func (s posixStore) Open(_ context.Context, name string) (io.ReadCloser, error) {
	return os.Open(s.Where(name))
}

func (s posixStore) List(context.Context) ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func (s posixStore) Delete(_ context.Context, name string) error { return os.Remove(s.Where(name)) }

type s3Store struct {
	client *minio.Client
	bucket string
	prefix string // "pgbackrest/dump/<db>"
}

// newS3Store connects to the bucket as pgBackRest does with the same
// options: always TLS, the CA file when given, path or host bucket style.
func newS3Store(c pgbackrest.Repo2Config, prefix string) (*s3Store, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("repo2 CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("repo2 CA file %s: no PEM certificate", c.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	if c.VerifyTLS == "n" {
		tlsCfg.InsecureSkipVerify = true
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: time.Minute,
		MaxIdleConnsPerHost:   4,
	}
	lookup := minio.BucketLookupDNS
	if c.S3URIStyle == "path" {
		lookup = minio.BucketLookupPath
	}
	endpoint := c.S3Endpoint
	if c.Port != 0 && c.Port != 443 {
		endpoint = net.JoinHostPort(c.S3Endpoint, strconv.Itoa(c.Port))
	}
	client, err := minio.New(endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(c.S3Key, c.S3Secret, ""),
		Secure:       true,
		Region:       c.S3Region,
		BucketLookup: lookup,
		Transport:    tr,
	})
	if err != nil {
		return nil, fmt.Errorf("repo2 s3 client: %w", err)
	}
	return &s3Store{client: client, bucket: c.S3Bucket, prefix: prefix}, nil
}

func (s *s3Store) key(name string) string { return s.prefix + "/" + name }

func (s *s3Store) Where(name string) string { return "s3://" + s.bucket + "/" + s.key(name) }

func (s *s3Store) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	_, err := s.client.PutObject(ctx, s.bucket, s.key(name), r, size, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return fmt.Errorf("upload %s: %w", s.Where(name), err)
	}
	return nil
}

func (s *s3Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, s.key(name), minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", s.Where(name), err)
	}
	// GetObject is lazy: Stat makes a missing object fail here, not mid-read.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, fmt.Errorf("download %s: %w", s.Where(name), err)
	}
	return obj, nil
}

func (s *s3Store) List(ctx context.Context) ([]string, error) {
	var names []string
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + "/"}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", s.bucket, s.prefix, obj.Err)
		}
		names = append(names, strings.TrimPrefix(obj.Key, s.prefix+"/"))
	}
	sort.Strings(names)
	return names, nil
}

func (s *s3Store) Delete(ctx context.Context, name string) error {
	return s.client.RemoveObject(ctx, s.bucket, s.key(name), minio.RemoveObjectOptions{})
}
