package httpx

import (
	"errors"
	"net/http"
	"reflect"

	"github.com/gorilla/mux"

	"github.com/mylittleshopping/shop/services/platform/apierr"
)

// NewRouter returns a gorilla/mux router whose unknown paths (404) and wrong
// methods (405) are answered in problem+json like every other error. Pass it
// as the BaseRouter of a generated server.
func NewRouter() *mux.Router {
	r := mux.NewRouter()
	r.NotFoundHandler = Handle(func(w http.ResponseWriter, r *http.Request) error {
		return apierr.Errorf(apierr.NotFound, "no route %s %s", r.Method, r.URL.Path)
	})
	r.MethodNotAllowedHandler = Handle(func(w http.ResponseWriter, r *http.Request) error {
		return apierr.Errorf(apierr.MethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path)
	})
	return r
}

// Serve runs h and writes its error, if any: the body of the one-line
// adapters that turn a generated ServerInterface method (which returns
// nothing) into an error-returning handler.
func Serve(w http.ResponseWriter, r *http.Request, h HandlerFunc) {
	if err := h(w, r); err != nil {
		Error(w, r, err)
	}
}

// ParamError is the ErrorHandlerFunc of oapi-codegen's gorilla servers: a
// path, query or header parameter that fails to bind is a 400 naming it.
// Each generated package declares its own error types (RequiredParamError,
// InvalidParamFormatError, …), all with a ParamName field, so the name is
// read by reflection rather than by a switch repeated in every service.
func ParamError(w http.ResponseWriter, r *http.Request, err error) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		v := reflect.Indirect(reflect.ValueOf(e))
		if v.Kind() != reflect.Struct {
			continue
		}
		if f := v.FieldByName("ParamName"); f.IsValid() && f.Kind() == reflect.String {
			Error(w, r, apierr.InvalidFields(apierr.FieldError{Field: f.String(), Detail: e.Error()}))
			return
		}
	}
	Error(w, r, apierr.E(apierr.Invalid, err))
}
