package httpx

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"
)

// routeSlot is where the router writes the route a request matched, for a
// middleware outside the router (the metrics): a router adds what it
// learns to a copy of the request, which the middleware never sees.
type routeSlot struct{ route string }

type routeKey struct{}

// WithRouteSlot returns r carrying an empty slot for its route, and the
// function that reads what the router wrote there once the request is
// served: the route's template ("/v1/orders/{id}"), or "" when no route
// matched.
func WithRouteSlot(r *http.Request) (*http.Request, func() string) {
	slot := &routeSlot{}
	return r.WithContext(context.WithValue(r.Context(), routeKey{}, slot)), func() string { return slot.route }
}

// SetRoute names the route r matched, when a middleware asked for it
// (WithRouteSlot); an inner router's call wins over an outer one's.
// route must be a template or a fixed name, never the request's path: it
// becomes a metric's label.
func SetRoute(r *http.Request, route string) {
	if slot, ok := r.Context().Value(routeKey{}).(*routeSlot); ok {
		slot.route = route
	}
}

// setMuxRoute names the gorilla route r matched by its path template.
func setMuxRoute(r *http.Request) {
	if route := mux.CurrentRoute(r); route != nil {
		if tmpl, err := route.GetPathTemplate(); err == nil {
			SetRoute(r, tmpl)
		}
	}
}
