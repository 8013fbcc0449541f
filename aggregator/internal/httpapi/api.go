// Package httpapi is the public API of the shop: the routes and types
// generated from openapi/shop.yaml (api.gen.go), and handlers that call the
// services through their generated clients and pass their answers on,
// compose views from several of them, and run the checkout saga. Each
// generated ServerInterface method is a one-line adapter onto a method
// that returns an error; httpx turns errors into problem+json.
//
// Every capability names the service it depends on; when that service
// cannot answer, the capability alone answers a fast 503 naming it
// (package reply), and the rest of the API is untouched.
package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/mylittleshopping/shop/aggregator/internal/checkout"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/auth"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/inventory"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/orders"
	"github.com/mylittleshopping/shop/aggregator/internal/clients/payment"
	"github.com/mylittleshopping/shop/aggregator/internal/pagecache"
	"github.com/mylittleshopping/shop/aggregator/internal/peer"
	"github.com/mylittleshopping/shop/aggregator/internal/ratelimit"
	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/httpx"
)

// The capabilities the 503s name, each served by one service.
const (
	capAccounts  = "accounts"  // auth
	capCatalogue = "catalogue" // inventory
	capSeller    = "seller products"
	capCart      = "cart"
	capCheckout  = "checkout"  // every service
	capOrders    = "orders"    // orders
	capSales     = "sales"     // orders
	capAddresses = "addresses" // orders
)

// Deps is what the API is built from.
type Deps struct {
	Auth      *auth.ClientWithResponses
	Inventory *inventory.ClientWithResponses
	Orders    *orders.ClientWithResponses
	Payment   *payment.ClientWithResponses
	Saga      *checkout.Saga
	// Reconciler, when set, serves POST /internal/reconcile.
	Reconciler *checkout.Reconciler
	Verifier   *authn.Verifier
	Limiter    *ratelimit.Limiter
	// Pages keeps anonymous catalogue pages for a moment (nil: off).
	Pages *pagecache.Cache
	// Spec is openapi/shop.yaml bundled (openapi.Bundle: one document,
	// the services' schemas it references resolved into it), served at
	// /openapi.yaml; Docs its HTML.
	Spec, Docs []byte
	// RequestBudget bounds every request; CheckoutBudget a checkout or a
	// cancellation, which run to their end even if the client leaves.
	RequestBudget, CheckoutBudget time.Duration
}

// API implements the generated ServerInterface.
type API struct {
	Deps
}

var _ ServerInterface = (*API)(nil)

// New returns the public API's handler: token verification, then the rate
// limit (per account, else per address), then the request budget, then
// the routes.
func New(d Deps) http.Handler {
	a := &API{Deps: d}
	router := httpx.NewRouter()
	if d.Reconciler != nil {
		// Hand-written, not in shop.yaml: it is no part of the public API
		// (the edge refuses every /internal path), see internal.go.
		router.Handle("/internal/reconcile", httpx.Handle(a.reconcile)).Methods(http.MethodPost)
	}
	if d.Saga != nil {
		// The operators' view of the orders the saga flagged, and the
		// Consul check of them (429 "warning" while any is flagged): no
		// part of the public API either.
		router.Handle("/internal/orders/flagged", d.Saga.FlaggedHandler()).Methods(http.MethodGet)
		router.Handle("/internal/health/orders", d.Saga.HealthHandler()).Methods(http.MethodGet)
	}
	h := HandlerWithOptions(a, GorillaServerOptions{
		BaseRouter:       router,
		ErrorHandlerFunc: httpx.ParamError,
	})
	return d.Verifier.Middleware(d.Limiter.Middleware(a.budget(h)))
}

// budget gives the request its deadline, and passes the caller's
// Authorization on to every call made for it.
func (a *API) budget(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), a.RequestBudget)
		defer cancel()
		ctx = peer.WithAuthorization(ctx, r.Header.Get("Authorization"))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// detached is the context of work that must run to its end once started
// (a checkout, a cancellation): it keeps the request's values (id, logger,
// Authorization) but not its cancellation, under its own budget.
func (a *API) detached(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), a.CheckoutBudget)
}

// decode reads the request body strictly into a T (size limit, unknown
// fields refused). The public request bodies are the services' own types
// (shop.yaml references their schemas), so what it returns is passed to
// the service's client as it is.
func decode[T any](w http.ResponseWriter, r *http.Request) (T, error) {
	var v T
	err := httpx.DecodeJSON(w, r, &v)
	return v, err
}

// GetOpenAPISpec serves openapi/shop.yaml, bundled.
func (a *API) GetOpenAPISpec(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(a.Spec)
}

// GetDocs serves the documentation rendered from the spec.
func (a *API) GetDocs(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = w.Write(a.Docs)
}
