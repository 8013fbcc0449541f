package openapi

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"
)

// internalNotes are keys of a spec that speak to the shop's engineers, not
// to the readers of the document Bundle makes: x-view-of names the service
// schema a public one shows, by a file they cannot read (see shop.yaml).
var internalNotes = []string{"x-view-of"}

// Bundle returns the spec name of fsys as one self-contained document, the
// one to hand outside the shop (GET /openapi.yaml serves shop.yaml so).
// Each components.schemas entry of name that only references another
// spec's schema is replaced by that schema, and each reference of the
// document to another spec (that schema's own references included) points
// at name's entry for the same schema instead; the rest of name is kept as
// it is written, its comments included. Every schema of another spec that
// the document shows must have its entry in name: a public schema that
// starts using a service's schema without one is an error here, not a copy
// under a name nobody chose.
func Bundle(fsys fs.FS, name string) ([]byte, error) {
	b := &bundler{fsys: fsys, root: path.Clean(name), docs: map[string]*yaml.Node{}, names: map[location]string{}}
	out, err := b.bundle()
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", name, err)
	}
	return out, nil
}

// location is where a node is: a file of the specs and a JSON pointer in it.
type location struct{ file, pointer string }

func (l location) String() string { return l.file + "#" + l.pointer }

type bundler struct {
	fsys fs.FS
	root string
	// docs are the files read so far, parsed.
	docs map[string]*yaml.Node
	// names maps a schema, once its aliases are followed, to the root's
	// components.schemas entry for it.
	names map[location]string
}

func (b *bundler) bundle() ([]byte, error) {
	top, err := b.doc(b.root)
	if err != nil {
		return nil, err
	}
	// from says which file a node of the tree was copied from, for the
	// references it holds; the rest is the root's.
	from := map[*yaml.Node]string{}
	if schemas := child(child(top, "components"), "schemas"); schemas != nil {
		for i := 0; i+1 < len(schemas.Content); i += 2 {
			key, val := schemas.Content[i].Value, schemas.Content[i+1]
			own := location{b.root, "/components/schemas/" + escape(key)}
			loc, target, err := b.follow(own)
			if err != nil {
				return nil, fmt.Errorf("components.schemas.%s: %w", key, err)
			}
			if prev, dup := b.names[loc]; dup {
				return nil, fmt.Errorf("components.schemas.%s and .%s both stand for %s", prev, key, loc)
			}
			b.names[loc] = key
			if loc != own {
				copied := clone(target)
				*val = *copied
				from[val] = loc.file
			}
		}
	}
	if err := b.rewrite(top, b.root, from); err != nil {
		return nil, err
	}
	// Indented and unwrapped as the specs are written.
	return yaml.Dump(b.docs[b.root], yaml.WithIndent(2), yaml.WithCompactSeqIndent(false), yaml.WithLineWidth(-1))
}

// rewrite points every reference under n to another file (n being file's)
// at the root's entry for its schema, and drops the internal notes.
func (b *bundler) rewrite(n *yaml.Node, file string, from map[*yaml.Node]string) error {
	if f, ok := from[n]; ok {
		file = f
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if err := b.rewrite(c, file, from); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			switch {
			case isNote(key.Value):
				continue
			case key.Value == "$ref" && val.Kind == yaml.ScalarNode:
				ref, err := b.local(file, val.Value)
				if err != nil {
					return err
				}
				val.Value = ref
			default:
				if err := b.rewrite(val, file, from); err != nil {
					return err
				}
			}
			kept = append(kept, key, val)
		}
		n.Content = kept
	}
	return nil
}

// local returns the reference ref, made in file, as one within the root.
func (b *bundler) local(file, ref string) (string, error) {
	loc := b.resolve(file, ref)
	if loc.file == b.root {
		return "#" + loc.pointer, nil
	}
	if !strings.HasPrefix(loc.pointer, "/components/schemas/") {
		return "", fmt.Errorf("%s references %s: only another spec's schemas can be referenced", file, loc)
	}
	target, _, err := b.follow(loc)
	if err != nil {
		return "", fmt.Errorf("%s references %s: %w", file, loc, err)
	}
	name, ok := b.names[target]
	if !ok {
		return "", fmt.Errorf("%s references %s, which %s has no components.schemas entry for: add one that references it", file, target, b.root)
	}
	return "#/components/schemas/" + escape(name), nil
}

// follow returns the schema at loc, through the entries that only
// reference another one.
func (b *bundler) follow(loc location) (location, *yaml.Node, error) {
	for range 10 {
		n, err := b.node(loc)
		if err != nil {
			return loc, nil, err
		}
		ref, ok := onlyRef(n)
		if !ok {
			return loc, n, nil
		}
		loc = b.resolve(loc.file, ref)
	}
	return loc, nil, errors.New("references that go round in circles")
}

func (b *bundler) resolve(file, ref string) location {
	target, pointer, _ := strings.Cut(ref, "#")
	if target != "" {
		file = path.Join(path.Dir(file), target)
	}
	return location{file, pointer}
}

// node returns the node at loc.
func (b *bundler) node(loc location) (*yaml.Node, error) {
	n, err := b.doc(loc.file)
	if err != nil {
		return nil, err
	}
	if loc.pointer == "" {
		return n, nil
	}
	if !strings.HasPrefix(loc.pointer, "/") {
		return nil, fmt.Errorf("%s: not a JSON pointer", loc)
	}
	for _, tok := range strings.Split(loc.pointer[1:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			next = child(n, tok)
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
			}
		}
		if next == nil {
			return nil, fmt.Errorf("%s has no %s", loc.file, loc.pointer)
		}
		n = next
	}
	return n, nil
}

// doc returns the top node of file, read once.
func (b *bundler) doc(file string) (*yaml.Node, error) {
	if d, ok := b.docs[file]; ok {
		return d.Content[0], nil
	}
	data, err := fs.ReadFile(b.fsys, file)
	if err != nil {
		return nil, err
	}
	var d yaml.Node
	if err := yaml.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if d.Kind != yaml.DocumentNode || len(d.Content) != 1 || d.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a YAML mapping", file)
	}
	b.docs[file] = &d
	return d.Content[0], nil
}

// child returns the value of key in the mapping n, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// onlyRef returns the reference of a node that is nothing else.
func onlyRef(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 || n.Content[0].Value != "$ref" {
		return "", false
	}
	return n.Content[1].Value, true
}

// clone copies n deeply, without its comments: they speak of the spec it
// comes from.
func clone(n *yaml.Node) *yaml.Node {
	c := *n
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		c.Content[i] = clone(k)
	}
	return &c
}

func isNote(key string) bool { return slices.Contains(internalNotes, key) }

// escape makes name a JSON pointer token.
func escape(name string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(name)
}
