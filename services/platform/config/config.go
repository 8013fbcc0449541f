// Package config fills a service's one configuration struct from the
// environment. Fields say where they come from with struct tags:
//
//	Addr   string        `env:"HTTP_ADDR" default:":8080"`
//	DBURL  string        `env:"DATABASE_URL" required:"true" secret:"true"`
//	Ready  time.Duration `env:"READY_TIMEOUT" default:"2s"`
//
// Nested structs (a server.Config inside a service's Config) are filled too,
// so shared pieces declare their variables once. Errors name the variable;
// Describe prints the result with secrets masked.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Validator is implemented by config structs with rules beyond one field
// (a range, two fields that go together). Load calls it after filling.
type Validator interface {
	Validate() error
}

// Load fills the struct dst points at from lookup (os.LookupEnv in main, a
// map in tests), applies defaults, checks required fields and calls
// Validate. Every problem is reported, each naming its variable.
func Load(dst any, lookup func(string) (string, bool)) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Load needs a pointer to a struct, got %T", dst)
	}
	var errs []error
	fill(v.Elem(), lookup, &errs)
	if len(errs) == 0 {
		walkValidators(v, &errs)
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// MapLookup adapts a map to Load's lookup, for tests.
func MapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

var durationType = reflect.TypeOf(time.Duration(0))

func fill(v reflect.Value, lookup func(string) (string, bool), errs *[]error) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		name, tagged := f.Tag.Lookup("env")
		if !tagged {
			if fv.Kind() == reflect.Struct {
				fill(fv, lookup, errs)
			}
			continue
		}
		raw, ok := lookup(name)
		if !ok || raw == "" {
			if def, has := f.Tag.Lookup("default"); has {
				raw, ok = def, true
			}
		}
		if !ok || raw == "" {
			if f.Tag.Get("required") == "true" {
				*errs = append(*errs, fmt.Errorf("%s is required", name))
			}
			continue
		}
		if err := set(fv, raw); err != nil {
			*errs = append(*errs, fmt.Errorf("%s=%q: %w", name, mask(f, raw), err))
		}
	}
}

func set(fv reflect.Value, raw string) error {
	if fv.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return errors.New("not a duration (examples: 500ms, 5s, 2m)")
		}
		if d < 0 {
			return errors.New("must not be negative")
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("not a boolean (true or false)")
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, fv.Type().Bits())
		if err != nil {
			return fmt.Errorf("not an integer of %d bits", fv.Type().Bits())
		}
		fv.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(raw, 10, fv.Type().Bits())
		if err != nil {
			return fmt.Errorf("not a non-negative integer of %d bits", fv.Type().Bits())
		}
		fv.SetUint(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return errors.New("not a number")
		}
		fv.SetFloat(x)
	case reflect.Slice:
		if fv.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported field type %s", fv.Type())
		}
		var items []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		fv.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported field type %s", fv.Type())
	}
	return nil
}

func walkValidators(v reflect.Value, errs *[]error) {
	if v.Kind() == reflect.Pointer {
		if val, ok := v.Interface().(Validator); ok {
			if err := val.Validate(); err != nil {
				*errs = append(*errs, err)
			}
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if f.IsExported() && v.Field(i).Kind() == reflect.Struct && v.Field(i).CanAddr() {
			walkValidators(v.Field(i).Addr(), errs)
		}
	}
}

// Describe returns the configuration as variable → value, secrets masked,
// for the line a service logs at start.
func Describe(cfg any) map[string]string {
	out := map[string]string{}
	v := reflect.Indirect(reflect.ValueOf(cfg))
	describe(v, out)
	return out
}

// Fields is Describe as sorted key/value pairs, ready for hclog.
func Fields(cfg any) []any {
	m := Describe(cfg)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, m[k])
	}
	return args
}

func describe(v reflect.Value, out map[string]string) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		name, tagged := f.Tag.Lookup("env")
		if !tagged {
			if fv.Kind() == reflect.Struct {
				describe(fv, out)
			}
			continue
		}
		var s string
		switch {
		case fv.Type() == durationType:
			s = time.Duration(fv.Int()).String()
		case fv.Kind() == reflect.Slice:
			parts := make([]string, fv.Len())
			for j := range parts {
				parts[j] = fv.Index(j).String()
			}
			s = strings.Join(parts, ",")
		default:
			s = fmt.Sprint(fv.Interface())
		}
		out[name] = mask(f, s)
	}
}

// mask hides a secret's value, and the password of a URL-valued secret
// (a DSN stays readable: host, port and database help an operator).
func mask(f reflect.StructField, s string) string {
	if f.Tag.Get("secret") != "true" || s == "" {
		return s
	}
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Host != "" {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return "xxxxx"
}
