// Package openapi holds the API specifications, the source of truth of every
// HTTP interface of the shop: servers and clients are generated from them
// (make generate), and a service can serve its own spec from FS.
//
// The specs reference each other's schemas (components.yaml's shared ones,
// and shop.yaml the services'), so a spec is read with Load, which follows
// those references within FS, and handed to someone outside the shop as
// Bundle makes it: one self-contained document.
package openapi

import (
	"embed"
	"fmt"
	"io/fs"
	"net/url"
	"path"

	"github.com/getkin/kin-openapi/openapi3"
)

// FS holds every spec of this folder, by file name ("shop.yaml", …).
//
//go:embed *.yaml
var FS embed.FS

// Load reads the spec name of fsys (FS, or a copy of it in a test) with
// kin-openapi, following its references to the other specs of fsys and
// nothing outside it.
func Load(fsys fs.FS, name string) (*openapi3.T, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = true
	loader.ReadFromURIFunc = func(_ *openapi3.Loader, u *url.URL) ([]byte, error) {
		if u.Scheme != "" || u.Host != "" {
			return nil, fmt.Errorf("%s: a spec references only the specs beside it", u)
		}
		return fs.ReadFile(fsys, path.Clean(u.Path))
	}
	doc, err := loader.LoadFromDataWithPath(data, &url.URL{Path: name})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return doc, nil
}
