package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"html"
	"net/http"

	"github.com/mylittleshopping/shop/aggregator/internal/clients/auth"
	"github.com/mylittleshopping/shop/aggregator/internal/reply"
	"github.com/mylittleshopping/shop/services/platform/httpx"
)

// Accounts: each route passes the request on to auth, and auth's answer
// back; auth down costs these routes alone a 503 "accounts is
// unavailable". The routes that check a password or send an email tell
// auth who the client is (X-Client-Address), so that auth counts login
// failures per client and a stranger cannot lock an owner out.

func (a *API) Signup(w http.ResponseWriter, r *http.Request)            { httpx.Serve(w, r, a.signup) }
func (a *API) VerifyEmailPage(w http.ResponseWriter, r *http.Request)   { verifyPage.serve(w) }
func (a *API) ResetPasswordPage(w http.ResponseWriter, r *http.Request) { resetPage.serve(w) }
func (a *API) VerifyEmail(w http.ResponseWriter, r *http.Request)       { httpx.Serve(w, r, a.verifyEmail) }
func (a *API) ResendVerification(w http.ResponseWriter, r *http.Request) {
	httpx.Serve(w, r, a.resendVerification)
}
func (a *API) Login(w http.ResponseWriter, r *http.Request)        { httpx.Serve(w, r, a.login) }
func (a *API) RefreshToken(w http.ResponseWriter, r *http.Request) { httpx.Serve(w, r, a.refreshToken) }
func (a *API) Logout(w http.ResponseWriter, r *http.Request)       { httpx.Serve(w, r, a.logout) }
func (a *API) ChangePassword(w http.ResponseWriter, r *http.Request) {
	httpx.Serve(w, r, a.changePassword)
}
func (a *API) ForgotPassword(w http.ResponseWriter, r *http.Request) {
	httpx.Serve(w, r, a.forgotPassword)
}
func (a *API) ResetPassword(w http.ResponseWriter, r *http.Request) {
	httpx.Serve(w, r, a.resetPassword)
}
func (a *API) GetMyAccount(w http.ResponseWriter, r *http.Request) { httpx.Serve(w, r, a.getMyAccount) }
func (a *API) UpdateMyAccount(w http.ResponseWriter, r *http.Request) {
	httpx.Serve(w, r, a.updateMyAccount)
}
func (a *API) DeleteMyAccount(w http.ResponseWriter, r *http.Request) {
	httpx.Serve(w, r, a.deleteMyAccount)
}
func (a *API) ListAccounts(w http.ResponseWriter, r *http.Request, p ListAccountsParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.listAccounts(w, r, p) })
}
func (a *API) GetAccount(w http.ResponseWriter, r *http.Request, id ID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.getAccount(w, r, id) })
}
func (a *API) UpdateAccount(w http.ResponseWriter, r *http.Request, id ID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.updateAccount(w, r, id) })
}
func (a *API) DeleteAccount(w http.ResponseWriter, r *http.Request, id ID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.deleteAccount(w, r, id) })
}

func (a *API) signup(w http.ResponseWriter, r *http.Request) error {
	req, err := decode[SignupRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.SignupWithResponse(r.Context(), &auth.SignupParams{XClientAddress: a.clientAddress(r)}, req)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) verifyEmail(w http.ResponseWriter, r *http.Request) error {
	req, err := decode[TokenRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.VerifyEmailWithResponse(r.Context(), req)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) resendVerification(w http.ResponseWriter, r *http.Request) error {
	req, err := decode[EmailRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.ResendVerificationWithResponse(r.Context(), &auth.ResendVerificationParams{XClientAddress: a.clientAddress(r)}, req)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	req, err := decode[LoginRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.LoginWithResponse(r.Context(), &auth.LoginParams{XClientAddress: a.clientAddress(r)}, req)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) refreshToken(w http.ResponseWriter, r *http.Request) error {
	req, err := decode[RefreshRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.RefreshTokenWithResponse(r.Context(), req)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) error {
	req, err := decode[RefreshRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.LogoutWithResponse(r.Context(), req)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) changePassword(w http.ResponseWriter, r *http.Request) error {
	req, err := decode[ChangePasswordRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.ChangePasswordWithResponse(r.Context(), &auth.ChangePasswordParams{XClientAddress: a.clientAddress(r)}, req)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) forgotPassword(w http.ResponseWriter, r *http.Request) error {
	req, err := decode[EmailRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.ForgotPasswordWithResponse(r.Context(), &auth.ForgotPasswordParams{XClientAddress: a.clientAddress(r)}, req)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) resetPassword(w http.ResponseWriter, r *http.Request) error {
	req, err := decode[ResetPasswordRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.ResetPasswordWithResponse(r.Context(), &auth.ResetPasswordParams{XClientAddress: a.clientAddress(r)}, req)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) getMyAccount(w http.ResponseWriter, r *http.Request) error {
	resp, err := a.Auth.GetMyAccountWithResponse(r.Context())
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) updateMyAccount(w http.ResponseWriter, r *http.Request) error {
	req, err := decode[AccountPatch](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.UpdateMyAccountWithResponse(r.Context(), req)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) deleteMyAccount(w http.ResponseWriter, r *http.Request) error {
	resp, err := a.Auth.DeleteMyAccountWithResponse(r.Context())
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) listAccounts(w http.ResponseWriter, r *http.Request, p ListAccountsParams) error {
	params := auth.ListAccountsParams{Limit: p.Limit, PageToken: p.PageToken, Role: p.Role}
	resp, err := a.Auth.ListAccountsWithResponse(r.Context(), &params)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) getAccount(w http.ResponseWriter, r *http.Request, id ID) error {
	resp, err := a.Auth.GetAccountWithResponse(r.Context(), id)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) updateAccount(w http.ResponseWriter, r *http.Request, id ID) error {
	req, err := decode[AccountPatch](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.UpdateAccountWithResponse(r.Context(), id, req)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) deleteAccount(w http.ResponseWriter, r *http.Request, id ID) error {
	resp, err := a.Auth.DeleteAccountWithResponse(r.Context(), id)
	return reply.Write(w, r, capAccounts, resp, err)
}

// clientAddress is the client's address as the rate limiter sees it (the
// edge's X-Forwarded-For believed from trusted proxies only).
func (a *API) clientAddress(r *http.Request) *string {
	addr := a.Limiter.Address(r)
	return &addr
}

// The pages the emails link to. The token travels in the link's fragment
// (#token=…), which a browser never sends, so it reaches no access log;
// the page posts it with fetch when the person acts (a button, a form),
// so a GET — a mail scanner's, a prefetch's — changes nothing. Each page
// is self-contained (inline style and script, pinned by hash in its
// Content-Security-Policy; nothing loaded from elsewhere).
var (
	verifyPage = newPage("Confirm your email address", `<h1>Confirm your email address</h1>
<p>Confirm that this address is yours to finish opening your Mylittleshopping account.</p>
<p><button id="go" type="button">Confirm my address</button></p>
<p id="out" role="status"></p>`, pageToken+`
const go = document.getElementById("go");
if (!token) { say("This link has no token: open the link from the email again, whole."); go.disabled = true; }
go.addEventListener("click", async () => {
  go.disabled = true;
  say("Confirming…");
  const r = await post("/v1/verify-email", {token});
  if (r.ok) { say("Your address is confirmed. You can close this page."); return; }
  say(await problem(r));
  go.disabled = false;
});`)
	resetPage = newPage("Choose a new password", `<h1>Choose a new password</h1>
<form id="form">
<p><label>New password<br><input id="pw" type="password" autocomplete="new-password" minlength="8" maxlength="128" required></label></p>
<p><label>The same again<br><input id="again" type="password" autocomplete="new-password" minlength="8" maxlength="128" required></label></p>
<p><button id="go" type="submit">Change my password</button></p>
</form>
<p id="out" role="status"></p>`, pageToken+`
const go = document.getElementById("go");
if (!token) { say("This link has no token: open the link from the email again, whole."); go.disabled = true; }
document.getElementById("form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const pw = document.getElementById("pw").value;
  if (pw !== document.getElementById("again").value) { say("The two passwords differ."); return; }
  go.disabled = true;
  say("Changing…");
  const r = await post("/v1/password/reset", {token, new_password: pw});
  if (r.ok) { say("Your password is changed: log in with it."); return; }
  say(await problem(r));
  go.disabled = false;
});`)
)

// pageToken is the script both pages start with: the token from the
// fragment (or the query of a link mailed before fragments, so that it
// still works, by a click), then out of the address bar and the history.
const pageToken = `"use strict";
const token = new URLSearchParams(location.hash.slice(1)).get("token") || new URLSearchParams(location.search).get("token");
history.replaceState(null, "", location.pathname);
const out = document.getElementById("out");
function say(text) { out.textContent = text; }
async function post(path, body) {
  try {
    return await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  } catch (e) {
    return {ok: false, status: 0, json: async () => ({detail: "The shop could not be reached; try again."})};
  }
}
async function problem(r) {
  const p = await r.json().catch(() => ({}));
  return (p.errors && p.errors.length ? p.errors.map((e) => e.detail).join(" ") : p.detail) || ("Something went wrong (" + r.status + "); try again.");
}`

const pageStyle = `body{font:16px/1.5 system-ui,sans-serif;max-width:32em;margin:3em auto;padding:0 1em;color:#222}` +
	`button{font:inherit;padding:.4em 1em}input{font:inherit;width:100%;box-sizing:border-box}`

// page is one of the HTML pages, with its Content-Security-Policy.
type page struct {
	html []byte
	csp  string
}

func newPage(title, body, script string) page {
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	return page{
		html: []byte(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>` + html.EscapeString(title) + ` — Mylittleshopping</title>
<style>` + pageStyle + `</style></head>
<body>
` + body + `
<script>` + script + `</script>
</body></html>
`),
		// connect-src 'self': the script may call this API and nothing
		// else; no form posts natively, no frame may embed the page.
		csp: "default-src 'none'; script-src " + hash(script) + "; style-src " + hash(pageStyle) +
			"; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
	}
}

func (p page) serve(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", p.csp)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(p.html)
}
