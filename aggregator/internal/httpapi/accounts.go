package httpapi

import (
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

func (a *API) Signup(w http.ResponseWriter, r *http.Request) { httpx.Serve(w, r, a.signup) }
func (a *API) VerifyEmailLink(w http.ResponseWriter, r *http.Request, p VerifyEmailLinkParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.verifyEmailLink(w, r, p) })
}
func (a *API) VerifyEmail(w http.ResponseWriter, r *http.Request) { httpx.Serve(w, r, a.verifyEmail) }
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
	b, err := body[SignupRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.SignupWithBodyWithResponse(r.Context(), &auth.SignupParams{XClientAddress: a.clientAddress(r)}, jsonType, b)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) verifyEmailLink(w http.ResponseWriter, r *http.Request, p VerifyEmailLinkParams) error {
	resp, err := a.Auth.VerifyEmailLinkWithResponse(r.Context(), &auth.VerifyEmailLinkParams{Token: p.Token})
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) verifyEmail(w http.ResponseWriter, r *http.Request) error {
	b, err := body[TokenRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.VerifyEmailWithBodyWithResponse(r.Context(), jsonType, b)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) resendVerification(w http.ResponseWriter, r *http.Request) error {
	b, err := body[EmailRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.ResendVerificationWithBodyWithResponse(r.Context(), &auth.ResendVerificationParams{XClientAddress: a.clientAddress(r)}, jsonType, b)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	b, err := body[LoginRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.LoginWithBodyWithResponse(r.Context(), &auth.LoginParams{XClientAddress: a.clientAddress(r)}, jsonType, b)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) refreshToken(w http.ResponseWriter, r *http.Request) error {
	b, err := body[RefreshRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.RefreshTokenWithBodyWithResponse(r.Context(), jsonType, b)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) error {
	b, err := body[RefreshRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.LogoutWithBodyWithResponse(r.Context(), jsonType, b)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) changePassword(w http.ResponseWriter, r *http.Request) error {
	b, err := body[ChangePasswordRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.ChangePasswordWithBodyWithResponse(r.Context(), &auth.ChangePasswordParams{XClientAddress: a.clientAddress(r)}, jsonType, b)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) forgotPassword(w http.ResponseWriter, r *http.Request) error {
	b, err := body[EmailRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.ForgotPasswordWithBodyWithResponse(r.Context(), &auth.ForgotPasswordParams{XClientAddress: a.clientAddress(r)}, jsonType, b)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) resetPassword(w http.ResponseWriter, r *http.Request) error {
	b, err := body[ResetPasswordRequest](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.ResetPasswordWithBodyWithResponse(r.Context(), &auth.ResetPasswordParams{XClientAddress: a.clientAddress(r)}, jsonType, b)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) getMyAccount(w http.ResponseWriter, r *http.Request) error {
	resp, err := a.Auth.GetMyAccountWithResponse(r.Context())
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) updateMyAccount(w http.ResponseWriter, r *http.Request) error {
	b, err := body[AccountPatch](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.UpdateMyAccountWithBodyWithResponse(r.Context(), jsonType, b)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) deleteMyAccount(w http.ResponseWriter, r *http.Request) error {
	resp, err := a.Auth.DeleteMyAccountWithResponse(r.Context())
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) listAccounts(w http.ResponseWriter, r *http.Request, p ListAccountsParams) error {
	params, err := convert[auth.ListAccountsParams](p)
	if err != nil {
		return err
	}
	resp, err := a.Auth.ListAccountsWithResponse(r.Context(), &params)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) getAccount(w http.ResponseWriter, r *http.Request, id ID) error {
	resp, err := a.Auth.GetAccountWithResponse(r.Context(), id)
	return reply.Write(w, r, capAccounts, resp, err)
}

func (a *API) updateAccount(w http.ResponseWriter, r *http.Request, id ID) error {
	b, err := body[AccountPatch](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Auth.UpdateAccountWithBodyWithResponse(r.Context(), id, jsonType, b)
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
