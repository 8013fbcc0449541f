// Package docs renders the public OpenAPI document as one readable HTML
// page, on the server, once at start.
//
// Why not Swagger UI or Redoc: both are JavaScript bundles that either load
// from a CDN (the docs must work without internet access) or have to be
// pinned, committed (a megabyte of minified code), audited and upgraded.
// The page here is a few hundred lines of Go and html/template, has no
// script at all, cannot drift from the spec (it is rendered from the very
// document GET /openapi.yaml serves), and works in any browser, offline.
package docs

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// Render returns the HTML page of the OpenAPI 3 document spec.
func Render(spec []byte) ([]byte, error) {
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("docs: load spec: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("docs: invalid spec: %w", err)
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, build(doc)); err != nil {
		return nil, fmt.Errorf("docs: render: %w", err)
	}
	return buf.Bytes(), nil
}

type view struct {
	Title, Version string
	Description    template.HTML
	Tags           []tagView
	Schemas        []schemaView
}

type tagView struct {
	Name, Anchor string
	Description  template.HTML
	Operations   []opView
}

type opView struct {
	Method, Path, Anchor, Summary string
	Description                   template.HTML
	Secured                       bool
	Params                        []paramView
	Body                          *fieldType
	BodyRequired                  bool
	Responses                     []respView
}

type paramView struct {
	Name, In    string
	Required    bool
	Type        fieldType
	Description template.HTML
}

type respView struct {
	Code, Description, ContentType string
	Type                           *fieldType
	Headers                        []string
}

type schemaView struct {
	Name, Anchor string
	Description  template.HTML
	Type         fieldType
	Properties   []propView
}

type propView struct {
	Name        string
	Required    bool
	Type        fieldType
	Description template.HTML
}

// fieldType is a type as the page shows it: a name, linked when it is a
// named schema, with its constraints.
type fieldType struct {
	Text, Link  string
	Constraints string
}

func build(doc *openapi3.T) view {
	v := view{Title: doc.Info.Title, Version: doc.Info.Version, Description: prose(doc.Info.Description)}
	byTag := map[string]*tagView{}
	var order []string
	for _, t := range doc.Tags {
		byTag[t.Name] = &tagView{Name: t.Name, Anchor: "tag-" + t.Name, Description: prose(t.Description)}
		order = append(order, t.Name)
	}
	paths := doc.Paths.Map()
	keys := make([]string, 0, len(paths))
	for p := range paths {
		keys = append(keys, p)
	}
	sort.Strings(keys)
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
	for _, p := range keys {
		item := paths[p]
		ops := item.Operations()
		for _, m := range methods {
			op := ops[m]
			if op == nil {
				continue
			}
			tag := "other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			tv := byTag[tag]
			if tv == nil {
				tv = &tagView{Name: tag, Anchor: "tag-" + tag}
				byTag[tag] = tv
				order = append(order, tag)
			}
			tv.Operations = append(tv.Operations, operation(doc, m, p, item, op))
		}
	}
	for _, name := range order {
		if tv := byTag[name]; len(tv.Operations) > 0 {
			v.Tags = append(v.Tags, *tv)
		}
	}
	if doc.Components != nil {
		names := make([]string, 0, len(doc.Components.Schemas))
		for n := range doc.Components.Schemas {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			s := doc.Components.Schemas[n].Value
			sv := schemaView{Name: n, Anchor: "schema-" + n, Description: prose(s.Description), Type: typeOf(&openapi3.SchemaRef{Value: s})}
			props := make([]string, 0, len(s.Properties))
			for p := range s.Properties {
				props = append(props, p)
			}
			sort.Strings(props)
			for _, p := range props {
				ps := s.Properties[p]
				desc := ""
				if ps.Value != nil {
					desc = ps.Value.Description
				}
				sv.Properties = append(sv.Properties, propView{Name: p, Required: slices.Contains(s.Required, p), Type: typeOf(ps), Description: prose(desc)})
			}
			v.Schemas = append(v.Schemas, sv)
		}
	}
	return v
}

func operation(doc *openapi3.T, method, path string, item *openapi3.PathItem, op *openapi3.Operation) opView {
	ov := opView{
		Method: method, Path: path, Summary: op.Summary, Description: prose(op.Description),
		Anchor: "op-" + op.OperationID,
	}
	sec := doc.Security
	if op.Security != nil {
		sec = *op.Security
	}
	ov.Secured = len(sec) > 0
	params := append(slices.Clone(item.Parameters), op.Parameters...)
	for _, pr := range params {
		p := pr.Value
		if p == nil {
			continue
		}
		ov.Params = append(ov.Params, paramView{Name: p.Name, In: p.In, Required: p.Required, Type: typeOf(p.Schema), Description: prose(p.Description)})
	}
	if op.RequestBody != nil && op.RequestBody.Value != nil {
		if mt := op.RequestBody.Value.Content.Get("application/json"); mt != nil {
			t := typeOf(mt.Schema)
			ov.Body, ov.BodyRequired = &t, op.RequestBody.Value.Required
		}
	}
	if op.Responses != nil {
		codes := make([]string, 0)
		for c := range op.Responses.Map() {
			codes = append(codes, c)
		}
		sort.Slice(codes, func(i, j int) bool { return codeRank(codes[i]) < codeRank(codes[j]) })
		for _, c := range codes {
			r := op.Responses.Map()[c].Value
			if r == nil {
				continue
			}
			rv := respView{Code: c}
			if r.Description != nil {
				rv.Description = *r.Description
			}
			for ct, mt := range r.Content {
				rv.ContentType = ct
				if mt.Schema != nil {
					t := typeOf(mt.Schema)
					rv.Type = &t
				}
			}
			for h := range r.Headers {
				rv.Headers = append(rv.Headers, h)
			}
			sort.Strings(rv.Headers)
			ov.Responses = append(ov.Responses, rv)
		}
	}
	return ov
}

func codeRank(c string) int {
	if n, err := strconv.Atoi(c); err == nil {
		return n
	}
	return 1000
}

// typeOf describes a schema: the name of a referenced one (linked), else
// its type with items and constraints.
func typeOf(ref *openapi3.SchemaRef) fieldType {
	if ref == nil {
		return fieldType{Text: "any"}
	}
	if name, ok := strings.CutPrefix(ref.Ref, "#/components/schemas/"); ok {
		return fieldType{Text: name, Link: "#schema-" + name}
	}
	s := ref.Value
	if s == nil {
		return fieldType{Text: "any"}
	}
	var t fieldType
	switch {
	case s.Type.Is("array"):
		it := typeOf(s.Items)
		t = fieldType{Text: "array of " + it.Text, Link: it.Link}
	case s.Type != nil && len(*s.Type) > 0:
		t.Text = strings.Join(*s.Type, " | ")
		if s.Format != "" {
			t.Text += " (" + s.Format + ")"
		}
	default:
		t.Text = "object"
	}
	var c []string
	if len(s.Enum) > 0 {
		vals := make([]string, len(s.Enum))
		for i, e := range s.Enum {
			vals[i] = fmt.Sprint(e)
		}
		c = append(c, "one of "+strings.Join(vals, ", "))
	}
	if s.Pattern != "" {
		c = append(c, "pattern "+s.Pattern)
	}
	if s.MinLength > 0 {
		c = append(c, fmt.Sprintf("≥ %d chars", s.MinLength))
	}
	if s.MaxLength != nil {
		c = append(c, fmt.Sprintf("≤ %d chars", *s.MaxLength))
	}
	if s.Min != nil {
		c = append(c, "≥ "+strconv.FormatFloat(*s.Min, 'f', -1, 64))
	}
	if s.Max != nil {
		c = append(c, "≤ "+strconv.FormatFloat(*s.Max, 'f', -1, 64))
	}
	if s.Default != nil {
		c = append(c, fmt.Sprintf("default %v", s.Default))
	}
	if s.Nullable {
		c = append(c, "nullable")
	}
	t.Constraints = strings.Join(c, "; ")
	return t
}

var (
	codeSpan = regexp.MustCompile("`([^`]+)`")
	strong   = regexp.MustCompile(`\*\*([^*]+)\*\*`)
)

// prose renders a description: paragraphs, list items, `code` and
// **bold**; everything else is escaped text.
func prose(s string) template.HTML {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	var b strings.Builder
	inList := false
	for _, para := range strings.Split(s, "\n\n") {
		lines := strings.Split(para, "\n")
		if strings.HasPrefix(strings.TrimSpace(lines[0]), "- ") {
			if !inList {
				b.WriteString("<ul>")
				inList = true
			}
			var item []string
			flush := func() {
				if len(item) > 0 {
					b.WriteString("<li>" + inline(strings.Join(item, " ")) + "</li>")
					item = nil
				}
			}
			for _, l := range lines {
				l = strings.TrimSpace(l)
				if rest, ok := strings.CutPrefix(l, "- "); ok {
					flush()
					item = append(item, rest)
				} else {
					item = append(item, l)
				}
			}
			flush()
			continue
		}
		if inList {
			b.WriteString("</ul>")
			inList = false
		}
		b.WriteString("<p>" + inline(strings.Join(lines, " ")) + "</p>")
	}
	if inList {
		b.WriteString("</ul>")
	}
	return template.HTML(b.String()) // #nosec G203 -- built from escaped text
}

func inline(s string) string {
	s = template.HTMLEscapeString(s)
	s = codeSpan.ReplaceAllString(s, "<code>$1</code>")
	return strong.ReplaceAllString(s, "<strong>$1</strong>")
}

var page = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} {{.Version}}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#222;display:flex}
nav{width:17rem;flex:none;height:100vh;overflow:auto;position:sticky;top:0;background:#f6f6f4;padding:1rem;box-sizing:border-box;font-size:13px}
nav a{color:#333;text-decoration:none;display:block;padding:1px 0}
nav h3{margin:1rem 0 .2rem;font-size:13px;text-transform:uppercase;color:#777}
main{padding:1rem 2rem 4rem;max-width:60rem}
h1{margin-top:0}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}
section.op{border:1px solid #e3e3e3;border-radius:6px;padding:.6rem 1rem;margin:1rem 0}
.m{font:bold 12px monospace;padding:2px 6px;border-radius:3px;color:#fff;margin-right:.5rem}
.GET{background:#2b7bb9}.POST{background:#3a9d5d}.PUT{background:#b9822b}.PATCH{background:#8a5cb8}.DELETE{background:#c0392b}
code,.path{font-family:ui-monospace,monospace;font-size:13px}.path{font-weight:bold}
table{border-collapse:collapse;width:100%;margin:.4rem 0;font-size:13px}
td,th{border-top:1px solid #eee;padding:3px 6px;text-align:left;vertical-align:top}th{color:#666;font-weight:normal}
.req{color:#c0392b;font-size:11px}.lock{font-size:12px;color:#8a5c00;margin-left:.4rem}.c{color:#777}
</style>
</head>
<body>
<nav>
<strong>{{.Title}}</strong>
<p><a href="/openapi.yaml">openapi.yaml</a></p>
{{range .Tags}}<h3><a href="#{{.Anchor}}">{{.Name}}</a></h3>
{{range .Operations}}<a href="#{{.Anchor}}"><code>{{.Method}}</code> {{.Path}}</a>
{{end}}{{end}}
<h3><a href="#schemas">schemas</a></h3>
{{range .Schemas}}<a href="#{{.Anchor}}">{{.Name}}</a>
{{end}}
</nav>
<main>
<h1>{{.Title}} <small class="c">{{.Version}}</small></h1>
{{.Description}}
{{range .Tags}}
<h2 id="{{.Anchor}}">{{.Name}}</h2>
{{.Description}}
{{range .Operations}}
<section class="op" id="{{.Anchor}}">
<div><span class="m {{.Method}}">{{.Method}}</span><span class="path">{{.Path}}</span>{{if .Secured}}<span class="lock">🔒 bearer token</span>{{end}}</div>
<p><strong>{{.Summary}}</strong></p>
{{.Description}}
{{if .Params}}<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>
{{range .Params}}<tr><td><code>{{.Name}}</code>{{if .Required}} <span class="req">required</span>{{end}}</td><td>{{.In}}</td><td>{{template "type" .Type}}</td><td>{{.Description}}</td></tr>
{{end}}</table>{{end}}
{{with .Body}}<p>Request body (application/json): {{template "type" .}}</p>{{end}}
<table><tr><th>status</th><th>description</th><th>body</th></tr>
{{range .Responses}}<tr><td><code>{{.Code}}</code></td><td>{{.Description}}{{if .Headers}} <span class="c">headers: {{range .Headers}}{{.}} {{end}}</span>{{end}}</td><td>{{if .ContentType}}<span class="c">{{.ContentType}}</span> {{end}}{{with .Type}}{{template "type" .}}{{end}}</td></tr>
{{end}}</table>
</section>
{{end}}{{end}}
<h2 id="schemas">Schemas</h2>
{{range .Schemas}}
<section class="op" id="{{.Anchor}}">
<div class="path">{{.Name}} <span class="c">{{template "type" .Type}}</span></div>
{{.Description}}
{{if .Properties}}<table><tr><th>field</th><th>type</th><th>description</th></tr>
{{range .Properties}}<tr><td><code>{{.Name}}</code>{{if .Required}} <span class="req">required</span>{{end}}</td><td>{{template "type" .Type}}</td><td>{{.Description}}</td></tr>
{{end}}</table>{{end}}
</section>
{{end}}
</main>
</body>
</html>
{{define "type"}}{{if .Link}}<a href="{{.Link}}">{{.Text}}</a>{{else}}<code>{{.Text}}</code>{{end}}{{if .Constraints}} <span class="c">{{.Constraints}}</span>{{end}}{{end}}`))
