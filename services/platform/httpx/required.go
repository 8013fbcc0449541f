package httpx

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/mylittleshopping/shop/services/platform/apierr"
)

// What a decoded body must still pass. encoding/json accepts, without a
// word, three things that later break the shop: a missing or null required
// field (decoded as the zero value, so `{}` would set a stock to 0), an
// invalid UTF-8 byte (replaced by U+FFFD, so the client's text is not what
// is stored), and a NUL character (PostgreSQL refuses it in text, which
// would turn the client's input into a 500). checkBody refuses them at the
// boundary, with a 400 naming each field at fault.
//
// Which fields are required is read from the Go type, by the convention
// oapi-codegen follows for every schema of openapi/: a required property is
// a field without omitempty in its json tag; an optional one has omitempty
// (and is a pointer). A required pointer field (a required nullable
// property) must be present but may be null. Hand-written request types
// follow the same convention.

// checkBody checks raw, the body dst was decoded from.
func checkBody(raw []byte, dst any) error {
	if !utf8.Valid(raw) {
		field := fieldAt(raw, invalidUTF8At(raw))
		if field == "" {
			return apierr.Errorf(apierr.Invalid, "request body must be valid UTF-8 text")
		}
		return apierr.InvalidFields(apierr.FieldError{Field: field, Detail: "must be valid UTF-8 text"})
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		// dst decoded from the same bytes: this cannot happen.
		return apierr.Errorf(apierr.Invalid, "request body is not valid JSON: %v", err)
	}
	var c checker
	c.walk(shapeOf(reflect.TypeOf(dst)), tree, "")
	if len(c.faults) > 0 {
		return apierr.InvalidFields(c.faults...)
	}
	return nil
}

// checker collects the faults of one body.
type checker struct {
	faults []apierr.FieldError
}

func (c *checker) fault(path, detail string) {
	if path == "" {
		path = "body"
	}
	c.faults = append(c.faults, apierr.FieldError{Field: path, Detail: detail})
}

// walk checks the JSON value v, found at path, against sh (nil: a value
// whose Go type says nothing, such as any or a json.RawMessage; its
// strings are still checked).
func (c *checker) walk(sh *shape, v any, path string) {
	for sh != nil && sh.kind == kindPointer {
		sh = sh.elem
	}
	switch v := v.(type) {
	case string:
		if strings.IndexByte(v, 0) >= 0 {
			c.fault(path, "must not contain NUL characters (\\u0000)")
		}
	case []any:
		var elem *shape
		if sh != nil && sh.kind == kindList {
			elem = sh.elem
		}
		for i, e := range v {
			c.walk(elem, e, fmt.Sprintf("%s[%d]", path, i))
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys) // faults in a stable order
		if sh != nil && sh.kind == kindStruct {
			c.object(sh, v, keys, path)
			return
		}
		var elem *shape
		if sh != nil && sh.kind == kindMap {
			elem = sh.elem
		}
		for _, k := range keys {
			if strings.IndexByte(k, 0) >= 0 {
				c.fault(path, "must not have a key with NUL characters (\\u0000)")
				continue
			}
			c.walk(elem, v[k], join(path, k))
		}
	}
}

// object checks a JSON object decoded into the struct sh: every required
// field present (and not null, unless it is a pointer), every member
// checked against its field.
func (c *checker) object(sh *shape, obj map[string]any, keys []string, path string) {
	for _, f := range sh.fields {
		k, ok := member(obj, keys, f.name)
		switch {
		case !ok && f.required:
			c.fault(join(path, f.name), "is required")
		case !ok:
		case obj[k] == nil && f.required && !f.nullable:
			c.fault(join(path, f.name), "is required and must not be null")
		default:
			c.walk(f.shape, obj[k], join(path, f.name))
		}
	}
}

// member finds the key of obj that encoding/json decodes into the field
// called name: the exact name, else one equal to it under case folding.
func member(obj map[string]any, keys []string, name string) (string, bool) {
	if _, ok := obj[name]; ok {
		return name, true
	}
	for _, k := range keys {
		if strings.EqualFold(k, name) {
			return k, true
		}
	}
	return "", false
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// shape is what checkBody needs of a Go type, worked out once per type.
type shape struct {
	kind   shapeKind
	elem   *shape  // kindPointer, kindList, kindMap
	fields []field // kindStruct, embedded structs flattened
}

type shapeKind int

const (
	kindLeaf    shapeKind = iota // a scalar, or a type that decodes itself
	kindPointer                  // a pointer to elem
	kindList                     // a slice or array of elem
	kindMap                      // a map of elem
	kindStruct                   // an object with fields
)

// field is one JSON member of a struct.
type field struct {
	name     string
	required bool // no omitempty in its tag
	nullable bool // a pointer: null is a value
	shape    *shape
}

var (
	shapes   sync.Map // reflect.Type → *shape
	shapesMu sync.Mutex
)

// shapeOf returns t's shape from the cache, working it out on first use.
func shapeOf(t reflect.Type) *shape {
	if sh, ok := shapes.Load(t); ok {
		return sh.(*shape)
	}
	shapesMu.Lock()
	defer shapesMu.Unlock()
	building := map[reflect.Type]*shape{}
	sh := buildShape(t, building)
	for t, s := range building {
		shapes.LoadOrStore(t, s)
	}
	return sh
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// buildShape works out t's shape; building holds the shapes under way, so
// that a recursive type refers to itself instead of recursing forever.
func buildShape(t reflect.Type, building map[reflect.Type]*shape) *shape {
	if sh, ok := shapes.Load(t); ok {
		return sh.(*shape)
	}
	if sh, ok := building[t]; ok {
		return sh
	}
	sh := &shape{}
	building[t] = sh
	// A type that decodes itself (time.Time, uuid.UUID, a generated
	// union) is checked as a whole: its own decoder knows its rules.
	if t.Kind() != reflect.Pointer && (reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)) {
		return sh
	}
	switch t.Kind() {
	case reflect.Pointer:
		sh.kind, sh.elem = kindPointer, buildShape(t.Elem(), building)
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return sh // []byte is a base64 string
		}
		sh.kind, sh.elem = kindList, buildShape(t.Elem(), building)
	case reflect.Map:
		sh.kind, sh.elem = kindMap, buildShape(t.Elem(), building)
	case reflect.Struct:
		sh.kind = kindStruct
		sh.fields = structFields(t, building)
	}
	return sh
}

// structFields lists t's JSON members as encoding/json sees them.
func structFields(t reflect.Type, building map[reflect.Type]*shape) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := sf.Type
		if sf.Anonymous && name == "" {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				out = append(out, structFields(et, building)...) // promoted members
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out = append(out, field{
			name:     name,
			required: !slices.Contains(strings.Split(opts, ","), "omitempty"),
			nullable: ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Interface,
			shape:    buildShape(ft, building),
		})
	}
	return out
}

// invalidUTF8At is the offset of raw's first byte that is not valid UTF-8.
func invalidUTF8At(raw []byte) int {
	for i := 0; i < len(raw); {
		r, size := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(raw)
}

// fieldAt names the member of the JSON document raw whose value (or key)
// holds byte off, like "lines[2].name"; "" for the document itself.
func fieldAt(raw []byte, off int) string {
	type frame struct {
		object  bool
		key     string
		index   int
		wantKey bool
	}
	var stack []*frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.object {
				if f.key != "" {
					if b.Len() > 0 {
						b.WriteByte('.')
					}
					b.WriteString(f.key)
				}
			} else {
				fmt.Fprintf(&b, "[%d]", f.index)
			}
		}
		return b.String()
	}
	afterValue := func() {
		if len(stack) == 0 {
			return
		}
		top := stack[len(stack)-1]
		if top.object {
			top.wantKey, top.key = true, ""
		} else {
			top.index++
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err != nil {
			return path()
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		s, isString := tok.(string)
		isKey := isString && top != nil && top.object && top.wantKey
		if dec.InputOffset() > int64(off) {
			// This token holds the byte: a key names its object's member
			// as the client spelled it (the replacement shows where).
			if isKey {
				top.key = s
			}
			return path()
		}
		switch {
		case isKey:
			top.key, top.wantKey = s, false
		case tok == json.Delim('{'):
			stack = append(stack, &frame{object: true, wantKey: true})
		case tok == json.Delim('['):
			stack = append(stack, &frame{})
		case tok == json.Delim('}'), tok == json.Delim(']'):
			stack = stack[:len(stack)-1]
			afterValue()
		default:
			afterValue()
		}
	}
}
