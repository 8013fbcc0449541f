package openapi_test

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"

	"github.com/mylittleshopping/shop/openapi"
)

// specs lists every spec of the folder; the test fails on an empty folder
// rather than passing vacuously.
func specs(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(openapi.FS, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no spec in openapi/")
	}
	sort.Strings(names)
	return names
}

// TestSpecsAreValid loads each spec with kin-openapi, its references to
// the other specs resolved, and validates it against OpenAPI 3.0, then
// checks the house rules every API follows.
func TestSpecsAreValid(t *testing.T) {
	t.Parallel()
	for _, name := range specs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc, err := openapi.Load(openapi.FS, name)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if err := doc.Validate(context.Background()); err != nil {
				t.Fatalf("invalid OpenAPI: %v", err)
			}
			checkHouseRules(t, doc)
		})
	}
}

// foreignErrors marks an operation that mimics a third party's API
// (the mail sink's Mailjet send) and so answers errors in that party's
// format instead of problem+json.
const foreignErrors = "x-foreign-error-format"

func checkHouseRules(t *testing.T, doc *openapi3.T) {
	t.Helper()
	ids := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s: no operationId (generated code names methods after it)", where)
			} else if prev, dup := ids[op.OperationID]; dup {
				t.Errorf("%s: operationId %q already used by %s", where, op.OperationID, prev)
			}
			ids[op.OperationID] = where
			if op.Summary == "" {
				t.Errorf("%s: no summary", where)
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for ct := range op.RequestBody.Value.Content {
					if ct != "application/json" {
						t.Errorf("%s: request body %q, want application/json", where, ct)
					}
				}
			}
			if _, foreign := op.Extensions[foreignErrors]; foreign {
				continue
			}
			if op.Responses == nil {
				continue
			}
			for code, resp := range op.Responses.Map() {
				n, err := strconv.Atoi(code)
				if code != "default" && (err != nil || n < 400) {
					continue
				}
				if resp.Value == nil || resp.Value.Content.Get("application/problem+json") == nil {
					t.Errorf("%s: response %s is not application/problem+json", where, code)
				}
			}
		}
	}
}

// TestReferencesResolve: every $ref of every spec names something that
// exists, in its own file or in the spec it points into — shop.yaml's
// references to the services' schemas above all.
func TestReferencesResolve(t *testing.T) {
	t.Parallel()
	for _, p := range brokenRefs(t, openapi.FS) {
		t.Error(p)
	}
}

// TestAMissingSchemaIsCaught removes from a copy of the specs a schema
// shop.yaml references (orders' Sale): the reference check names it, and
// neither Load nor Bundle accepts shop.yaml.
func TestAMissingSchemaIsCaught(t *testing.T) {
	t.Parallel()
	fsys := copyFS(t)
	edit(t, fsys, "orders.yaml", func(doc *yaml.Node) {
		schemas := lookup(doc, "components", "schemas")
		for i := 0; i < len(schemas.Content); i += 2 {
			if schemas.Content[i].Value == "Sale" {
				schemas.Content = slices.Delete(schemas.Content, i, i+2)
				return
			}
		}
		t.Fatal("orders.yaml has no Sale to remove")
	})
	want := "shop.yaml: ./orders.yaml#/components/schemas/Sale: orders.yaml has no /components/schemas/Sale"
	if got := brokenRefs(t, fsys); !slices.Contains(got, want) {
		t.Errorf("reference check: got %q, want it to contain %q", got, want)
	}
	if _, err := openapi.Load(fsys, "shop.yaml"); err == nil {
		t.Error("Load accepted shop.yaml without orders' Sale")
	}
	if _, err := openapi.Bundle(fsys, "shop.yaml"); err == nil || !strings.Contains(err.Error(), "Sale") {
		t.Errorf("Bundle without orders' Sale: got error %v, want one naming Sale", err)
	}
}

// brokenRefs lists the references of fsys's specs that name nothing.
func brokenRefs(t *testing.T, fsys fs.FS) []string {
	t.Helper()
	names, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files := newSpecFiles(t, fsys)
	var broken []string
	for _, name := range names {
		walk(files.parse(name), func(ref string) {
			loc := resolve(name, ref)
			if _, err := fs.Stat(fsys, loc.file); err != nil {
				broken = append(broken, fmt.Sprintf("%s: %s: %s does not exist", name, ref, loc.file))
				return
			}
			if pointer(files.parse(loc.file), loc.pointer) == nil {
				broken = append(broken, fmt.Sprintf("%s: %s: %s has no %s", name, ref, loc.file, loc.pointer))
			}
		})
	}
	return broken
}

// TestBundles: each spec's bundle is one document (kin-openapi loads it
// without following a file), valid, and says what the spec says once
// every reference is resolved: the same values, the engineers' notes
// (x-view-of) aside.
func TestBundles(t *testing.T) {
	t.Parallel()
	for _, name := range specs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := openapi.Bundle(openapi.FS, name)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := openapi3.NewLoader().LoadFromData(data)
			if err != nil {
				t.Fatalf("the bundle is not one document: %v", err)
			}
			if err := doc.Validate(context.Background()); err != nil {
				t.Fatalf("the bundle is invalid: %v", err)
			}
			bundle := fstest.MapFS{name: {Data: data}}
			got := expand(t, bundle, name, parse(t, bundle, name), false)
			want := dropNotes(expand(t, openapi.FS, name, parse(t, openapi.FS, name), false))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("the bundle, resolved, differs from %s resolved:\n%s", name, strings.Join(differences("", want, got), "\n"))
			}
		})
	}
}

// TestViewsAccountForEveryField: a public schema that is a view of a
// service's (x-view-of) has each of its fields, with the same shape on
// the wire and the same required-ness, unless it names the field as left
// out, reshaped or added, and names no field that is not there. A field
// added to a service's schema thus fails this test until the public
// schema shows it or says why not.
func TestViewsAccountForEveryField(t *testing.T) {
	t.Parallel()
	views := viewFaults(t, openapi.FS)
	if len(views.checked) == 0 {
		t.Error("shop.yaml has no x-view-of schema: the check checks nothing")
	}
	for _, f := range views.faults {
		t.Error(f)
	}
}

// TestAFieldAddedToAServiceIsCaught adds a field to orders' Order in a
// copy of the specs: the public Order, a view of it, is at fault until it
// shows the field or says why not.
func TestAFieldAddedToAServiceIsCaught(t *testing.T) {
	t.Parallel()
	fsys := copyFS(t)
	edit(t, fsys, "orders.yaml", func(doc *yaml.Node) {
		props := lookup(doc, "components", "schemas", "Order", "properties")
		var field yaml.Node
		if err := yaml.Unmarshal([]byte("gift_note: {type: string}"), &field); err != nil {
			t.Fatal(err)
		}
		props.Content = append(props.Content, field.Content[0].Content...)
	})
	want := "shop.yaml Order (a view of ./orders.yaml#/components/schemas/Order): gift_note is neither shown nor left out"
	if got := viewFaults(t, fsys).faults; !slices.Contains(got, want) {
		t.Errorf("got faults %q, want %q among them", got, want)
	}
}

// view is the x-view-of note of a public schema.
type view struct {
	Schema   string            `yaml:"schema"`
	LeftOut  map[string]string `yaml:"left-out"`
	Reshaped map[string]string `yaml:"reshaped"`
	Added    map[string]string `yaml:"added"`
}

type viewReport struct {
	checked []string
	faults  []string
}

func viewFaults(t *testing.T, fsys fs.FS) viewReport {
	t.Helper()
	const name = "shop.yaml"
	files := newSpecFiles(t, fsys)
	root := files.parse(name)
	var r viewReport
	schemas := lookup(root, "components", "schemas")
	for i := 0; i+1 < len(schemas.Content); i += 2 {
		key, val := schemas.Content[i].Value, schemas.Content[i+1]
		note := lookup(val, "x-view-of")
		if note == nil {
			continue
		}
		var v view
		if err := note.Decode(&v); err != nil {
			t.Fatalf("%s %s: x-view-of: %v", name, key, err)
		}
		where := fmt.Sprintf("%s %s (a view of %s)", name, key, v.Schema)
		r.checked = append(r.checked, key)
		fault := func(format string, args ...any) {
			r.faults = append(r.faults, where+": "+fmt.Sprintf(format, args...))
		}
		if !strings.Contains(v.Schema, ".yaml#/components/schemas/") || strings.HasPrefix(v.Schema, "#") {
			fault("x-view-of.schema must name another spec's schema")
			continue
		}
		loc := resolve(name, v.Schema)
		src := pointer(files.parse(loc.file), loc.pointer)
		if src == nil {
			fault("%s has no %s", loc.file, loc.pointer)
			continue
		}
		source := expandDepth(t, files, loc.file, src, true, 0).(map[string]any)
		public := map[string]any{}
		for k, v := range decode(t, val).(map[string]any) {
			if k != "properties" {
				public[k] = v
			}
		}
		public["properties"] = expandDepth(t, files, name, lookup(val, "properties"), true, 0)
		srcProps, _ := source["properties"].(map[string]any)
		pubProps, _ := public["properties"].(map[string]any)
		srcReq, pubReq := required(source), required(public)
		for _, f := range sortedKeys(srcProps) {
			_, out := v.LeftOut[f]
			_, reshaped := v.Reshaped[f]
			pub, shown := pubProps[f]
			switch {
			case out && shown:
				fault("%s is shown, and said to be left out", f)
			case out:
			case !shown:
				fault("%s is neither shown nor left out", f)
			case reshaped:
				if reflect.DeepEqual(wire(pub), wire(srcProps[f])) && srcReq[f] == pubReq[f] {
					fault("%s is said to be reshaped, and is the same", f)
				}
			case !reflect.DeepEqual(wire(pub), wire(srcProps[f])):
				fault("%s differs on the wire and is not said to be reshaped:\n%s", f, strings.Join(differences(f, wire(srcProps[f]), wire(pub)), "\n"))
			case srcReq[f] != pubReq[f]:
				fault("%s is required in one schema only and is not said to be reshaped", f)
			}
		}
		for _, f := range sortedKeys(pubProps) {
			_, added := v.Added[f]
			_, inSource := srcProps[f]
			switch {
			case inSource && added:
				fault("%s is said to be added, and is the service's", f)
			case !inSource && !added:
				fault("%s is not the service's, and not said to be added", f)
			}
		}
		for _, list := range []map[string]string{v.LeftOut, v.Reshaped} {
			for _, f := range sortedKeys(list) {
				if _, ok := srcProps[f]; !ok {
					fault("names %s, which the service's schema does not have", f)
				}
			}
		}
		for _, f := range sortedKeys(v.Added) {
			if _, ok := pubProps[f]; !ok {
				fault("says %s is added, and does not have it", f)
			}
		}
		for _, m := range []map[string]string{v.LeftOut, v.Reshaped, v.Added} {
			for f, why := range m {
				if strings.TrimSpace(why) == "" {
					fault("%s: say why", f)
				}
			}
		}
		// What is true of the whole schema on the wire, not of a field.
		for _, k := range []string{"type", "additionalProperties", "nullable"} {
			if !reflect.DeepEqual(source[k], public[k]) {
				fault("%s is %v in the service's schema, %v here", k, source[k], public[k])
			}
		}
	}
	return r
}

// required returns the required fields of a schema as a set.
func required(schema map[string]any) map[string]bool {
	set := map[string]bool{}
	list, _ := schema["required"].([]any)
	for _, f := range list {
		set[fmt.Sprint(f)] = true
	}
	return set
}

// location is a file of the specs and a JSON pointer in it.
type location struct{ file, pointer string }

// resolve returns where ref, written in file, points.
func resolve(file, ref string) location {
	target, ptr, _ := strings.Cut(ref, "#")
	if target != "" {
		file = path.Join(path.Dir(file), target)
	}
	return location{file, ptr}
}

// expand returns n, of file, as plain values with every $ref replaced by
// what it references (following it into other files: this is the test's
// own resolver, apart from Bundle's and kin-openapi's). With views, a
// schema that is a view of another is replaced by that schema, so that a
// view's field holding another view compares equal to the service's.
func expand(t *testing.T, fsys fs.FS, file string, n *yaml.Node, views bool) any {
	t.Helper()
	return expandDepth(t, newSpecFiles(t, fsys), file, n, views, 0)
}

func expandDepth(t *testing.T, files *specFiles, file string, n *yaml.Node, views bool, depth int) any {
	t.Helper()
	if depth > 50 {
		t.Fatalf("%s: references go too deep (a cycle?)", file)
	}
	if n == nil {
		return nil
	}
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	switch n.Kind {
	case yaml.MappingNode:
		if ref := lookup(n, "$ref"); ref != nil {
			loc := resolve(file, ref.Value)
			target := pointer(files.parse(loc.file), loc.pointer)
			if target == nil {
				t.Fatalf("%s: %s names nothing", file, ref.Value)
			}
			return expandDepth(t, files, loc.file, target, views, depth+1)
		}
		if note := lookup(n, "x-view-of"); views && note != nil {
			loc := resolve(file, lookup(note, "schema").Value)
			return expandDepth(t, files, loc.file, pointer(files.parse(loc.file), loc.pointer), views, depth+1)
		}
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = expandDepth(t, files, file, n.Content[i+1], views, depth+1)
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			s[i] = expandDepth(t, files, file, c, views, depth+1)
		}
		return s
	}
	return decode(t, n)
}

// wire keeps of a schema (resolved) what decides what goes on the wire:
// everything but its words for readers.
func wire(schema any) any {
	m, ok := schema.(map[string]any)
	if !ok {
		return schema
	}
	out := map[string]any{}
	for k, v := range m {
		switch {
		case k == "description", k == "example", k == "examples", k == "title", k == "externalDocs", strings.HasPrefix(k, "x-"):
		case k == "properties":
			props := map[string]any{}
			for name, p := range v.(map[string]any) {
				props[name] = wire(p)
			}
			out[k] = props
		case k == "items", k == "not", k == "additionalProperties":
			out[k] = wire(v)
		case k == "allOf", k == "anyOf", k == "oneOf":
			var list []any
			for _, s := range v.([]any) {
				list = append(list, wire(s))
			}
			out[k] = list
		default:
			out[k] = v
		}
	}
	return out
}

// dropNotes removes the engineers' notes that Bundle leaves out.
func dropNotes(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, c := range v {
			if k != "x-view-of" {
				out[k] = dropNotes(c)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, c := range v {
			out[i] = dropNotes(c)
		}
		return out
	}
	return v
}

// differences lists where got differs from want, by path.
func differences(at string, want, got any) []string {
	wm, wok := want.(map[string]any)
	gm, gok := got.(map[string]any)
	if wok && gok {
		var out []string
		keys := map[string]bool{}
		for k := range wm {
			keys[k] = true
		}
		for k := range gm {
			keys[k] = true
		}
		for _, k := range sortedKeys(keys) {
			out = append(out, differences(at+"/"+k, wm[k], gm[k])...)
		}
		return out
	}
	ws, wok := want.([]any)
	gs, gok := got.([]any)
	if wok && gok && len(ws) == len(gs) {
		var out []string
		for i := range ws {
			out = append(out, differences(at+"/"+strconv.Itoa(i), ws[i], gs[i])...)
		}
		return out
	}
	if reflect.DeepEqual(want, got) {
		return nil
	}
	return []string{fmt.Sprintf("  %s: want %v, got %v", at, want, got)}
}

// walk calls f with every $ref under n.
func walk(n *yaml.Node, f func(ref string)) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "$ref" && n.Content[i+1].Kind == yaml.ScalarNode {
				f(n.Content[i+1].Value)
			}
		}
	}
	for _, c := range n.Content {
		walk(c, f)
	}
}

// pointer returns the node at the JSON pointer ptr of doc, or nil.
func pointer(doc *yaml.Node, ptr string) *yaml.Node {
	if doc.Kind == yaml.DocumentNode {
		doc = doc.Content[0]
	}
	if ptr == "" {
		return doc
	}
	var keys []string
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		keys = append(keys, strings.NewReplacer("~1", "/", "~0", "~").Replace(tok))
	}
	return lookup(doc, keys...)
}

// lookup follows keys through the mappings from n, or returns nil.
func lookup(n *yaml.Node, keys ...string) *yaml.Node {
	if n != nil && n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	for _, key := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

// specFiles reads the specs of fsys once each.
type specFiles struct {
	t    *testing.T
	fsys fs.FS
	docs map[string]*yaml.Node
}

func newSpecFiles(t *testing.T, fsys fs.FS) *specFiles {
	return &specFiles{t: t, fsys: fsys, docs: map[string]*yaml.Node{}}
}

// parse returns the spec name, which its callers must not change.
func (s *specFiles) parse(name string) *yaml.Node {
	s.t.Helper()
	if doc, ok := s.docs[name]; ok {
		return doc
	}
	doc := parse(s.t, s.fsys, name)
	s.docs[name] = doc
	return doc
}

func parse(t *testing.T, fsys fs.FS, name string) *yaml.Node {
	t.Helper()
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &doc
}

func decode(t *testing.T, n *yaml.Node) any {
	t.Helper()
	var v any
	if err := n.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// copyFS returns a copy of the specs to break.
func copyFS(t *testing.T) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{}
	for _, name := range specs(t) {
		data, err := fs.ReadFile(openapi.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		fsys[name] = &fstest.MapFile{Data: data}
	}
	return fsys
}

// edit changes the spec name of fsys with f.
func edit(t *testing.T, fsys fstest.MapFS, name string, f func(doc *yaml.Node)) {
	t.Helper()
	doc := parse(t, fsys, name)
	f(doc)
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	fsys[name] = &fstest.MapFile{Data: data}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
