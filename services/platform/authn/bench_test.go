package authn_test

import (
	"context"
	"testing"
	"time"

	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/logging"
)

// BenchmarkVerify is the cost every authenticated request pays in every
// service: one Ed25519 verification with the keys cached. Target: < 100µs.
func BenchmarkVerify(b *testing.B) {
	key := newKey(b)
	jwks := newJWKS(b, key)
	v := authn.NewVerifier(config(jwks.URL), jwks.Client(), logging.NewNull())
	tok, err := authn.NewSigner(key, issuer, audience).Sign(claims("u"), time.Hour, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
