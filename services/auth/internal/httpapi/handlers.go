// Package httpapi is the auth service's HTTP boundary: the routes and types
// generated from openapi/auth.yaml (api.gen.go), and the handlers that
// decode and validate requests into the accounts domain's values and write
// its answers. Each generated ServerInterface method is a one-line adapter
// onto a method that returns an error; httpx turns errors into
// problem+json.
package httpapi

import (
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/mylittleshopping/shop/services/auth/internal/accounts"
	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/authn"
	"github.com/mylittleshopping/shop/services/platform/httpx"
	"github.com/mylittleshopping/shop/services/platform/validate"
)

// API implements the generated ServerInterface.
type API struct {
	accounts *accounts.Service
	jwks     authn.JWKS
}

var _ ServerInterface = (*API)(nil)

// New returns the service's routes. verifier authenticates bearer tokens on
// every route, exactly as other services do with auth's tokens; handlers
// decide whether a caller is needed.
func New(svc *accounts.Service, jwks authn.JWKS, verifier *authn.Verifier) http.Handler {
	r := httpx.NewRouter()
	h := HandlerWithOptions(&API{accounts: svc, jwks: jwks}, GorillaServerOptions{
		BaseRouter:       r,
		ErrorHandlerFunc: httpx.ParamError,
	})
	return verifier.Middleware(h)
}

// The ServerInterface adapters: each runs the error-returning method that
// does the work.

func (a *API) Signup(w http.ResponseWriter, r *http.Request, _ SignupParams) {
	httpx.Serve(w, r, a.signup)
}

func (a *API) VerifyEmail(w http.ResponseWriter, r *http.Request) {
	httpx.Serve(w, r, a.verifyEmail)
}

func (a *API) ResendVerification(w http.ResponseWriter, r *http.Request, _ ResendVerificationParams) {
	httpx.Serve(w, r, a.resend)
}

func (a *API) Login(w http.ResponseWriter, r *http.Request, p LoginParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.login(w, r, p.XClientAddress) })
}

func (a *API) RefreshToken(w http.ResponseWriter, r *http.Request) {
	httpx.Serve(w, r, a.refresh)
}

func (a *API) Logout(w http.ResponseWriter, r *http.Request) {
	httpx.Serve(w, r, a.logout)
}

func (a *API) ChangePassword(w http.ResponseWriter, r *http.Request, p ChangePasswordParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.changePassword(w, r, p.XClientAddress) })
}

func (a *API) ForgotPassword(w http.ResponseWriter, r *http.Request, _ ForgotPasswordParams) {
	httpx.Serve(w, r, a.forgotPassword)
}

func (a *API) ResetPassword(w http.ResponseWriter, r *http.Request, _ ResetPasswordParams) {
	httpx.Serve(w, r, a.resetPassword)
}

func (a *API) ListRevocations(w http.ResponseWriter, r *http.Request, p ListRevocationsParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.listRevocations(w, r, p) })
}

func (a *API) GetJWKS(w http.ResponseWriter, r *http.Request) {
	httpx.Serve(w, r, a.getJWKS)
}

func (a *API) ListAccounts(w http.ResponseWriter, r *http.Request, p ListAccountsParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.listAccounts(w, r, p) })
}

func (a *API) GetMyAccount(w http.ResponseWriter, r *http.Request) {
	a.serveAccount(w, r, nil, a.getAccount)
}

func (a *API) UpdateMyAccount(w http.ResponseWriter, r *http.Request) {
	a.serveAccount(w, r, nil, a.updateAccount)
}

func (a *API) DeleteMyAccount(w http.ResponseWriter, r *http.Request) {
	a.serveAccount(w, r, nil, a.deleteAccount)
}

func (a *API) GetInternalAccount(w http.ResponseWriter, r *http.Request, id openapi_types.UUID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.getInternalAccount(w, r, id) })
}

func (a *API) GetAccount(w http.ResponseWriter, r *http.Request, id openapi_types.UUID) {
	a.serveAccount(w, r, &id, a.getAccount)
}

func (a *API) UpdateAccount(w http.ResponseWriter, r *http.Request, id openapi_types.UUID) {
	a.serveAccount(w, r, &id, a.updateAccount)
}

func (a *API) DeleteAccount(w http.ResponseWriter, r *http.Request, id openapi_types.UUID) {
	a.serveAccount(w, r, &id, a.deleteAccount)
}

// serveAccount runs a handler about account id, or about the caller's own
// account when id is nil (the /me routes).
func (a *API) serveAccount(w http.ResponseWriter, r *http.Request, id *uuid.UUID, h func(http.ResponseWriter, *http.Request, *uuid.UUID) error) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return h(w, r, id) })
}

// accepted is the one answer of signup, resend and forgot, whatever the
// address: it must not tell whether the address has an account.
var accepted = Accepted{Status: AcceptedStatusAccepted, Detail: "If the address can receive it, an email is on its way."}

func (a *API) signup(w http.ResponseWriter, r *http.Request) error {
	var req SignupRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	in := accounts.Signup{
		Email:       accounts.NormalizeEmail(req.Email),
		Password:    req.Password,
		DisplayName: accounts.NormalizeDisplayName(req.DisplayName),
		Role:        accounts.Role(req.Role),
	}
	var errs validate.Errors
	errs.Check("email", accounts.CheckEmail(in.Email))
	errs.Check("password", accounts.CheckPassword(in.Password))
	errs.Check("display_name", accounts.CheckDisplayName(in.DisplayName))
	if in.Role != accounts.Buyer && in.Role != accounts.Seller {
		errs.Check("role", "must be buyer or seller")
	}
	if err := errs.Err(); err != nil {
		return err
	}
	if err := a.accounts.Signup(r.Context(), in); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusAccepted, accepted)
}

func (a *API) verifyEmail(w http.ResponseWriter, r *http.Request) error {
	var req TokenRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	var errs validate.Errors
	errs.Check("token", checkToken(req.Token))
	if err := errs.Err(); err != nil {
		return err
	}
	acc, err := a.accounts.VerifyEmail(r.Context(), req.Token)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, toAccount(acc))
}

func (a *API) resend(w http.ResponseWriter, r *http.Request) error {
	email, err := decodeEmail(w, r)
	if err != nil {
		return err
	}
	if err := a.accounts.ResendVerification(r.Context(), email); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusAccepted, accepted)
}

func (a *API) login(w http.ResponseWriter, r *http.Request, clientAddress *string) error {
	var req LoginRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	email := accounts.NormalizeEmail(req.Email)
	var errs validate.Errors
	errs.Check("email", accounts.CheckEmail(email))
	errs.Check("password", checkGivenPassword(req.Password))
	client := clientOf(&errs, clientAddress)
	if err := errs.Err(); err != nil {
		return err
	}
	tokens, err := a.accounts.Login(r.Context(), email, req.Password, client)
	if err != nil {
		return err
	}
	return writeTokens(w, tokens)
}

func (a *API) refresh(w http.ResponseWriter, r *http.Request) error {
	token, err := decodeRefreshToken(w, r)
	if err != nil {
		return err
	}
	tokens, err := a.accounts.Refresh(r.Context(), token)
	if err != nil {
		return err
	}
	return writeTokens(w, tokens)
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) error {
	token, err := decodeRefreshToken(w, r)
	if err != nil {
		return err
	}
	if err := a.accounts.Logout(r.Context(), token); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) changePassword(w http.ResponseWriter, r *http.Request, clientAddress *string) error {
	actor, err := actorOf(r)
	if err != nil {
		return err
	}
	var req ChangePasswordRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	var keep string
	if req.RefreshToken != nil {
		keep = *req.RefreshToken
	}
	var errs validate.Errors
	errs.Check("current_password", checkGivenPassword(req.CurrentPassword))
	errs.Check("new_password", accounts.CheckPassword(req.NewPassword))
	if keep != "" {
		errs.Check("refresh_token", checkToken(keep))
	}
	client := clientOf(&errs, clientAddress)
	if err := errs.Err(); err != nil {
		return err
	}
	if err := a.accounts.ChangePassword(r.Context(), actor, req.CurrentPassword, req.NewPassword, keep, client); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) forgotPassword(w http.ResponseWriter, r *http.Request) error {
	email, err := decodeEmail(w, r)
	if err != nil {
		return err
	}
	if err := a.accounts.ForgotPassword(r.Context(), email); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusAccepted, accepted)
}

func (a *API) resetPassword(w http.ResponseWriter, r *http.Request) error {
	var req ResetPasswordRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	var errs validate.Errors
	errs.Check("token", checkToken(req.Token))
	errs.Check("new_password", accounts.CheckPassword(req.NewPassword))
	if err := errs.Err(); err != nil {
		return err
	}
	if err := a.accounts.ResetPassword(r.Context(), req.Token, req.NewPassword); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// getAccount reads account id, or the caller's own when id is nil.
func (a *API) getAccount(w http.ResponseWriter, r *http.Request, id *uuid.UUID) error {
	actor, err := actorOf(r)
	if err != nil {
		return err
	}
	acc, err := a.accounts.Get(r.Context(), actor, target(actor, id))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, toAccount(acc))
}

// getInternalAccount is another service's read of an account. No caller
// is required: /internal is not routed by the edge (see the trust model in
// openapi/auth.yaml).
func (a *API) getInternalAccount(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	sum, err := a.accounts.Lookup(r.Context(), id)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, InternalAccount{Id: sum.ID, Email: sum.Email, Role: Role(sum.Role), Verified: sum.Verified})
}

func (a *API) updateAccount(w http.ResponseWriter, r *http.Request, id *uuid.UUID) error {
	actor, err := actorOf(r)
	if err != nil {
		return err
	}
	var req AccountPatch
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	p := accounts.Patch{Disabled: req.Disabled}
	var errs validate.Errors
	if req.DisplayName != nil {
		name := accounts.NormalizeDisplayName(*req.DisplayName)
		errs.Check("display_name", accounts.CheckDisplayName(name))
		p.DisplayName = &name
	}
	if req.Role != nil {
		role := accounts.Role(*req.Role)
		if !role.Valid() {
			errs.Check("role", "must be buyer, seller or admin")
		}
		p.Role = &role
	}
	if err := errs.Err(); err != nil {
		return err
	}
	if p.DisplayName == nil && p.Role == nil && p.Disabled == nil {
		return apierr.Errorf(apierr.Invalid, "the patch changes nothing; send display_name, role or disabled")
	}
	acc, err := a.accounts.Update(r.Context(), actor, target(actor, id), p)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, toAccount(acc))
}

func (a *API) deleteAccount(w http.ResponseWriter, r *http.Request, id *uuid.UUID) error {
	actor, err := actorOf(r)
	if err != nil {
		return err
	}
	if err := a.accounts.Delete(r.Context(), actor, target(actor, id)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Pagination limits of GET /v1/accounts.
const (
	defaultLimit = 20
	maxLimit     = 100
)

func (a *API) listAccounts(w http.ResponseWriter, r *http.Request, p ListAccountsParams) error {
	actor, err := actorOf(r)
	if err != nil {
		return err
	}
	filter := accounts.ListFilter{Limit: defaultLimit}
	var errs validate.Errors
	if p.Limit != nil {
		filter.Limit = *p.Limit
		if filter.Limit < 1 || filter.Limit > maxLimit {
			errs.Check("limit", fmt.Sprintf("must be between 1 and %d", maxLimit))
		}
	}
	if p.Role != nil {
		filter.Role = accounts.Role(*p.Role)
		if !filter.Role.Valid() {
			errs.Check("role", "must be buyer, seller or admin")
		}
	}
	if p.PageToken != nil && *p.PageToken != "" {
		if filter.After, err = decodeCursor(*p.PageToken); err != nil {
			errs.Check("page_token", "is not a next_page_token of this list")
		}
	}
	if err := errs.Err(); err != nil {
		return err
	}
	accs, next, err := a.accounts.List(r.Context(), actor, filter)
	if err != nil {
		return err
	}
	page := AccountPage{Items: make([]Account, len(accs))}
	for i, acc := range accs {
		page.Items[i] = toAccount(acc)
	}
	if next != nil {
		token := encodeCursor(*next)
		page.NextPageToken = &token
	}
	return httpx.WriteJSON(w, http.StatusOK, page)
}

// listRevocations is what every verifier polls (internal, like
// getInternalAccount).
func (a *API) listRevocations(w http.ResponseWriter, r *http.Request, p ListRevocationsParams) error {
	var since time.Time
	if p.Since != nil {
		since = *p.Since
	}
	list, now, err := a.accounts.Revocations(r.Context(), since)
	if err != nil {
		return err
	}
	out := RevocationList{Revocations: make([]Revocation, len(list)), NextSince: now.Add(-revocationOverlap).UTC()}
	for i, rv := range list {
		out.Revocations[i] = Revocation{AccountId: rv.AccountID, SessionId: rv.SessionID, IssuedBefore: rv.IssuedBefore.UTC(), ExpiresAt: rv.ExpiresAt.UTC()}
	}
	w.Header().Set("Cache-Control", "no-store")
	return httpx.WriteJSON(w, http.StatusOK, out)
}

// revocationOverlap is how far before its own time an answer tells the
// poller to start next: a revocation's created_at is its transaction's
// start, so one committed a little after this answer must still be in the
// next one.
const revocationOverlap = 10 * time.Second

func (a *API) getJWKS(w http.ResponseWriter, r *http.Request) error {
	// Short: a verifier meeting an unknown kid refetches anyway, and a
	// retired key should leave caches soon after it leaves the set.
	w.Header().Set("Cache-Control", "public, max-age=300")
	return httpx.WriteJSON(w, http.StatusOK, a.jwks)
}

// actorOf is the authenticated caller, or a 401.
func actorOf(r *http.Request) (accounts.Actor, error) {
	c, err := authn.Require(r.Context())
	if err != nil {
		return accounts.Actor{}, err
	}
	id, err := c.AccountID()
	if err != nil {
		return accounts.Actor{}, err
	}
	return accounts.Actor{ID: id, Role: accounts.Role(c.Role)}, nil
}

// target is the account a request is about: id, or the caller's own.
func target(actor accounts.Actor, id *uuid.UUID) uuid.UUID {
	if id == nil {
		return actor.ID
	}
	return *id
}

// maxClientLen bounds X-Client-Address: an IPv6 address with a zone is
// well under it.
const maxClientLen = 100

// clientOf is the client a request counts under: the address the
// aggregator saw, or accounts.UnknownClient for a direct internal call.
func clientOf(errs *validate.Errors, address *string) string {
	if address == nil || *address == "" {
		return accounts.UnknownClient
	}
	if len(*address) > maxClientLen || !utf8.ValidString(*address) {
		errs.Check("X-Client-Address", fmt.Sprintf("must be at most %d bytes of UTF-8", maxClientLen))
	}
	return "address:" + *address
}

// maxTokenLen bounds the tokens clients send back: ours are 43 characters.
const maxTokenLen = 200

func checkToken(token string) string {
	switch {
	case token == "":
		return "is required"
	case len(token) > maxTokenLen:
		return fmt.Sprintf("must be at most %d characters", maxTokenLen)
	}
	return ""
}

// checkGivenPassword checks a password that is presented rather than set:
// only presence and the length limit (nothing longer can match, and argon2
// should not hash megabytes).
func checkGivenPassword(password string) string {
	switch {
	case password == "":
		return "is required"
	case utf8.RuneCountInString(password) > accounts.MaxPasswordLen:
		return fmt.Sprintf("must be at most %d characters", accounts.MaxPasswordLen)
	}
	return ""
}

// decodeEmail decodes and checks an EmailRequest.
func decodeEmail(w http.ResponseWriter, r *http.Request) (string, error) {
	var req EmailRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return "", err
	}
	email := accounts.NormalizeEmail(req.Email)
	var errs validate.Errors
	errs.Check("email", accounts.CheckEmail(email))
	return email, errs.Err()
}

// decodeRefreshToken decodes and checks a RefreshRequest.
func decodeRefreshToken(w http.ResponseWriter, r *http.Request) (string, error) {
	var req RefreshRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		return "", err
	}
	var errs validate.Errors
	errs.Check("refresh_token", checkToken(req.RefreshToken))
	return req.RefreshToken, errs.Err()
}

func writeTokens(w http.ResponseWriter, t accounts.Tokens) error {
	// Tokens must not land in a shared cache.
	w.Header().Set("Cache-Control", "no-store")
	return httpx.WriteJSON(w, http.StatusOK, TokenPair{
		AccessToken:  t.AccessToken,
		TokenType:    Bearer,
		ExpiresIn:    int(t.ExpiresIn / time.Second),
		RefreshToken: t.RefreshToken,
	})
}

func toAccount(a accounts.Account) Account {
	return Account{
		Id:          a.ID,
		Email:       a.Email,
		DisplayName: a.DisplayName,
		Role:        Role(a.Role),
		VerifiedAt:  utc(a.VerifiedAt),
		DisabledAt:  utc(a.DisabledAt),
		CreatedAt:   a.CreatedAt.UTC(),
		UpdatedAt:   a.UpdatedAt.UTC(),
	}
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// A page token is the last item's position, opaque to clients:
// base64url("<created_at RFC 3339> <id>").
func encodeCursor(c accounts.Cursor) string { return httpx.EncodePageToken(c.CreatedAt, c.ID) }

func decodeCursor(s string) (*accounts.Cursor, error) {
	at, id, err := httpx.DecodePageToken(s)
	if err != nil {
		return nil, err
	}
	return &accounts.Cursor{CreatedAt: at, ID: id}, nil
}
