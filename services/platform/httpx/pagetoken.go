package httpx

import (
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
)

// EncodePageToken makes the opaque next_page_token of a list kept in
// (time, id) order: the key of the last item served.
func EncodePageToken(at time.Time, id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + " " + id.String()))
}

// The times a page token may carry. Every list keyed by time is keyed by
// when the shop wrote a row, so a time before 2000 or after year 9999 (which
// RFC 3339 cannot write, and which pgx and PostgreSQL would have to
// represent around the edges of their ranges) is no key of any list: a
// forged token, refused with a 400 before the database sees it.
var (
	minPageTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxPageTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// PageTimeInRange reports whether t can be the time of a page token's
// position: for the services whose tokens are their own format.
func PageTimeInRange(t time.Time) bool {
	return !t.Before(minPageTime) && t.Before(maxPageTime)
}

// DecodePageToken reads a token made by EncodePageToken; any other string
// is an error for the caller to report as an invalid page_token.
func DecodePageToken(s string) (time.Time, uuid.UUID, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, uuid.Nil, err
	}
	ts, id, ok := strings.Cut(string(raw), " ")
	if !ok {
		return time.Time{}, uuid.Nil, errors.New("no separator")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, uuid.Nil, err
	}
	if !PageTimeInRange(t) {
		return time.Time{}, uuid.Nil, errors.New("time out of range")
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return time.Time{}, uuid.Nil, err
	}
	return t, u, nil
}
