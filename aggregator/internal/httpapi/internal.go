package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mylittleshopping/shop/aggregator/internal/checkout"
	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/httpx"
)

// The aggregator's one internal path, for operators inside the cluster:
//
//	POST /internal/reconcile
//
// runs a reconciliation pass now (after restoring the databases, say) and
// answers 200 with its counts (checkout.Counts as JSON); a pass that
// takes longer than the checkout budget goes on and is answered 202
// {"pass_id", "status": "running"}, its counts logged under that request
// id when it ends; 503 with Retry-After when a pass already running did
// not end in time to take this one. It is not in openapi/shop.yaml,
// which is the public API: HAProxy refuses every path with an "internal"
// segment, so only the cluster's network reaches it, like the services'
// /internal paths.

// reconcile waits for the pass at most the checkout budget, which is
// shorter than the server's write timeout, so that its answer is written.
func (a *API) reconcile(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := a.detached(r)
	defer cancel()
	id, done, err := a.Reconciler.Trigger(ctx)
	if errors.Is(err, checkout.ErrBusy) {
		return apierr.RetryLater(apierr.Unavailable, 10*time.Second, fmt.Errorf("%w; retry later", err))
	}
	if err != nil {
		return err
	}
	select {
	case c := <-done:
		return httpx.WriteJSON(w, http.StatusOK, c)
	case <-ctx.Done():
		return httpx.WriteJSON(w, http.StatusAccepted, map[string]string{"pass_id": id, "status": "running"})
	}
}
