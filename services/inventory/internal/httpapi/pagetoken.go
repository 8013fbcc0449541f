package httpapi

import (
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mylittleshopping/shop/services/inventory/internal/inventory"
	"github.com/mylittleshopping/shop/services/platform/httpx"
)

// A page token is the last item's position, opaque to clients:
// base64url("<sort>|<key>|<id>|<query fingerprint>"). The key is the sort's:
// created_at in Unix microseconds (PostgreSQL's precision), the price in
// minor units, or the rank's float32 bits (exact, so the next page starts
// precisely after the last row). The fingerprint ties the token to the
// search text and filters it was made for: a token replayed with another
// query would start at a meaningless place, so it is refused instead.

// sellerFingerprint marks the tokens of a seller's own list.
const sellerFingerprint = "mine"

// fingerprint identifies q's text and filters (not its position or size).
func fingerprint(q inventory.Query) string {
	h := fnv.New64a()
	opt := func(v *int64) string {
		if v == nil {
			return "-"
		}
		return strconv.FormatInt(*v, 10)
	}
	seller := "-"
	if q.SellerID != nil {
		seller = q.SellerID.String()
	}
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%t", q.Text, seller, q.Currency, opt(q.MinPrice), opt(q.MaxPrice), q.InStock)
	return strconv.FormatUint(h.Sum64(), 36)
}

func encodeCursor(c inventory.Cursor, fp string) string {
	var key string
	switch c.Sort {
	case inventory.SortRelevance:
		key = strconv.FormatUint(uint64(math.Float32bits(c.Rank)), 16)
	case inventory.SortPriceAsc, inventory.SortPriceDesc:
		key = strconv.FormatInt(c.Price, 10)
	default:
		key = strconv.FormatInt(c.CreatedAt.UnixMicro(), 10)
	}
	raw := string(c.Sort) + "|" + key + "|" + c.ID.String() + "|" + fp
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

var errBadToken = errors.New("is not a next_page_token of this list")

// decodeCursor reads a token made by encodeCursor for the query whose
// fingerprint is fp. Its errors are the detail of a page_token field error.
func decodeCursor(token string, fp string) (*inventory.Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, errBadToken
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 4 {
		return nil, errBadToken
	}
	c := &inventory.Cursor{Sort: inventory.Sort(parts[0])}
	if c.ID, err = uuid.Parse(parts[2]); err != nil {
		return nil, errBadToken
	}
	switch c.Sort {
	case inventory.SortRelevance:
		bits, err := strconv.ParseUint(parts[1], 16, 32)
		if err != nil {
			return nil, errBadToken
		}
		c.Rank = math.Float32frombits(uint32(bits))
		if math.IsNaN(float64(c.Rank)) || math.IsInf(float64(c.Rank), 0) {
			return nil, errBadToken
		}
	case inventory.SortPriceAsc, inventory.SortPriceDesc:
		if c.Price, err = strconv.ParseInt(parts[1], 10, 64); err != nil {
			return nil, errBadToken
		}
	case inventory.SortNewest:
		us, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil {
			return nil, errBadToken
		}
		c.CreatedAt = time.UnixMicro(us).UTC()
		if !httpx.PageTimeInRange(c.CreatedAt) {
			// No product was created then (−1, ±2⁶³): a forged token.
			return nil, errBadToken
		}
	default:
		return nil, errBadToken
	}
	if parts[3] != fp {
		return nil, errors.New("was made for another search text or other filters; start again from the first page")
	}
	return c, nil
}
