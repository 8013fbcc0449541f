package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/mylittleshopping/shop/services/platform/apierr"
)

// DefaultMaxBody is the body limit of DecodeJSON: 1 MiB is far above any
// request of the shop and far below what would hurt a server.
const DefaultMaxBody = 1 << 20

// DecodeJSON reads r's body into dst strictly: the content type must be JSON
// (415), the body at most DefaultMaxBody bytes (413), one JSON value with no
// unknown field and nothing after it (400). Each error says precisely what
// is wrong.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	return DecodeJSONLimit(w, r, dst, DefaultMaxBody)
}

// DecodeJSONLimit is DecodeJSON with a body limit of max bytes. After
// decoding it checks what encoding/json lets through silently (see
// checkBody): invalid UTF-8, NUL characters, and required fields that are
// missing or null.
func DecodeJSONLimit(w http.ResponseWriter, r *http.Request, dst any, max int64) error {
	if err := requireJSON(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	if r.ContentLength > max {
		return tooLarge(max)
	}
	// The whole body is read first (it is at most max bytes): the checks
	// after decoding need the raw text, which encoding/json does not keep.
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(max)
		}
		return apierr.Errorf(apierr.Invalid, "request body could not be read: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, max)
	}
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err == nil:
		return apierr.Errorf(apierr.Invalid, "request body must hold a single JSON value; found more data after it")
	default:
		return apierr.Errorf(apierr.Invalid, "request body must hold a single JSON value; found trailing data after it")
	}
	return checkBody(raw, dst)
}

func requireJSON(ct string) error {
	if ct == "" {
		return apierr.Errorf(apierr.UnsupportedMediaType, "Content-Type header is missing; send application/json")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return apierr.Errorf(apierr.UnsupportedMediaType, "Content-Type %q is malformed; send application/json", ct)
	}
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return apierr.Errorf(apierr.UnsupportedMediaType, "Content-Type %q is not supported; send application/json", mt)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return apierr.Errorf(apierr.UnsupportedMediaType, "charset %q is not supported; send UTF-8", cs)
	}
	return nil
}

func tooLarge(max int64) error {
	return apierr.Errorf(apierr.TooLarge, "request body is larger than %d bytes", max)
}

func decodeError(err error, max int64) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		mbe    *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return tooLarge(max)
	case errors.Is(err, io.EOF):
		return apierr.Errorf(apierr.Invalid, "request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apierr.Errorf(apierr.Invalid, "request body is malformed JSON: it ends too early")
	case errors.As(err, &syntax):
		return apierr.Errorf(apierr.Invalid, "request body is malformed JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return apierr.InvalidFields(apierr.FieldError{Field: typ.Field, Detail: fmt.Sprintf("must be %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)})
		}
		return apierr.Errorf(apierr.Invalid, "request body must be %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this one.
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return apierr.InvalidFields(apierr.FieldError{Field: strings.Trim(name, `"`), Detail: "unknown field"})
	default:
		return apierr.Errorf(apierr.Invalid, "request body is not valid JSON: %v", err)
	}
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"):
		return "an integer"
	case strings.HasPrefix(goKind, "float"):
		return "a number"
	case goKind == "string":
		return "a string"
	case goKind == "bool":
		return "a boolean"
	case goKind == "slice", goKind == "array":
		return "an array"
	default:
		return "an object"
	}
}
