package main

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"

	"github.com/mylittleshopping/shop/backup/internal/records"
	"github.com/mylittleshopping/shop/backup/internal/testagents"
	"github.com/mylittleshopping/shop/backup/internal/testpg"
)

func s3Client(t *testing.T, s3 *testagents.S3) *minio.Client {
	t.Helper()
	pem, err := os.ReadFile(s3.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := minio.New(s3.Host+":"+strconv.Itoa(s3.Port), &minio.Options{
		Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""), Secure: true, Region: "us-east-1",
		BucketLookup: minio.BucketLookupPath,
		Transport:    &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestS3Repo2: repo2 is a bucket on a real SeaweedFS S3 gateway over TLS
// (its own CA): pgBackRest backs up and archives WAL into it, the dump is
// uploaded there encrypted (old ones pruned), dump-cat reads it back by
// its key, and a drill restores from it.
func TestS3Repo2(t *testing.T) {
	t.Parallel()
	consul := testagents.StartConsul(t)
	s3 := testagents.StartSeaweedFS(t)
	mc := s3Client(t, s3)
	ctx := context.Background()
	if err := mc.MakeBucket(ctx, "backup-catalog", minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatal(err)
	}
	old := "pgbackrest/dump/catalog/catalog-20200101T000000Z.sql.gz.enc"
	if _, err := mc.PutObject(ctx, "backup-catalog", old, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	c := testpg.NewCluster(t, testpg.Options{DB: "catalog", Repo2: map[string]string{
		"PGBACKREST_REPO2_TYPE":            "s3",
		"PGBACKREST_REPO2_PATH":            "/pgbackrest",
		"PGBACKREST_REPO2_S3_BUCKET":       "backup-catalog",
		"PGBACKREST_REPO2_S3_ENDPOINT":     s3.Host,
		"PGBACKREST_REPO2_STORAGE_PORT":    strconv.Itoa(s3.Port),
		"PGBACKREST_REPO2_S3_REGION":       "us-east-1",
		"PGBACKREST_REPO2_S3_KEY":          s3.AccessKey,
		"PGBACKREST_REPO2_S3_KEY_SECRET":   s3.SecretKey,
		"PGBACKREST_REPO2_S3_URI_STYLE":    "path",
		"PGBACKREST_REPO2_STORAGE_CA_FILE": s3.CAFile,
		"PGBACKREST_REPO2_CIPHER_TYPE":     "aes-256-cbc",
		"PGBACKREST_REPO2_CIPHER_PASS":     "s3-repo-pass",
		"PGBACKREST_REPO2_RETENTION_FULL":  "2",
	}})
	schema(t, c)
	const email = "s3-buyer-91c2@plaintext.example"
	c.Exec(t, "INSERT INTO orders (buyer) VALUES ($1)", email)
	mustBackup(t, c, consul, nil, "task", "stanza")
	full := record(t, consul, "catalog", "full")
	if len(full.Repos) != 2 || full.Repos[1].Backup == nil {
		t.Fatalf("full record: %s", pretty(full))
	}

	mustBackup(t, c, consul, nil, "task", "dump")
	dump := record(t, consul, "catalog", "dump")
	key := strings.TrimPrefix(dump.Repos[1].Object, "s3://backup-catalog/")
	if !strings.HasPrefix(key, "pgbackrest/dump/catalog/catalog-") || len(dump.Repos[1].Deleted) != 1 {
		t.Fatalf("dump record: %s", pretty(dump))
	}
	if _, err := mc.StatObject(ctx, "backup-catalog", old, minio.StatObjectOptions{}); err == nil {
		t.Fatal("the old dump is still in the bucket")
	}
	obj, err := mc.GetObject(ctx, "backup-catalog", key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(body, []byte("Salted__")) || bytes.Contains(body, []byte(email)) {
		t.Fatalf("the object in the bucket is not openssl-encrypted (%d bytes)", len(body))
	}
	fromS3 := mustBackup(t, c, consul, nil, "dump-cat", key).stdout
	fromFile := mustBackup(t, c, consul, nil, "dump-cat", dump.Repos[0].Object).stdout
	if fromS3 != fromFile || !strings.Contains(fromS3, email) {
		t.Fatal("dump-cat of the S3 object differs from repo1's file")
	}

	// Nothing in the bucket holds the plaintext (backups and WAL included).
	c.Archived(t)
	n := 0
	for o := range mc.ListObjects(ctx, "backup-catalog", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		r, err := mc.GetObject(ctx, "backup-catalog", o.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		if bytes.Contains(b, []byte(email)) {
			t.Errorf("s3://backup-catalog/%s holds the plaintext", o.Key)
		}
		n++
	}
	if n < 20 {
		t.Fatalf("only %d objects in the bucket", n)
	}
	mustBackup(t, c, consul, nil, "task", "drill", "--repo", "2")
	// The drill restored repo2's dump too, read back from the bucket.
	if d := record(t, consul, "catalog", "drill"); !d.OK || d.Drill.Repo != 2 || d.Drill.Dump == nil ||
		d.Drill.Dump.Outcome != records.DumpEqual || d.Drill.Dump.Object != dump.Repos[1].Object {
		t.Fatalf("drill record: %s", pretty(d))
	}
}
