package web

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
)

// tokenCookie is the cookie the page sets from /?token=… (API.md).
const tokenCookie = "caplab_token"

// authSource says how a request proved it holds the token.
type authSource int

const (
	authNone   authSource = iota
	authBearer            // Authorization: Bearer <token>
	authCookie            // caplab_token cookie
)

// authenticate reports how r carries a valid token, if it does.
func (s *Server) authenticate(r *http.Request) authSource {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") && s.validToken(strings.TrimSpace(tok)) {
			return authBearer
		}
	}
	if c, err := r.Cookie(tokenCookie); err == nil && s.validToken(c.Value) {
		return authCookie
	}
	return authNone
}

// validToken compares in constant time; an empty configured token matches
// nothing.
func (s *Server) validToken(tok string) bool {
	if s.opts.Token == "" || tok == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(tok), []byte(s.opts.Token)) == 1
}

// mutation guards a mutating route: 401 without a valid token, 403 when a
// cookie-authenticated request comes from another origin (cross-site
// request forgery). Bearer tokens are never sent by a browser on its own, so
// they need no origin check.
func (s *Server) mutation(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch s.authenticate(r) {
		case authNone:
			w.Header().Set("WWW-Authenticate", `Bearer realm="caplab"`)
			writeError(w, http.StatusUnauthorized, "This changes the lab, so it needs the lab token: open the link caplab printed at start (…/?token=…) or send \"Authorization: Bearer <token>\".")
			return
		case authCookie:
			if !sameOrigin(r) {
				writeError(w, http.StatusForbidden, "This request came from another site (%s), so the lab refused it; act from the caplab page itself.", foreignOrigin(r))
				return
			}
		}
		h(w, r)
	})
}

// sameOrigin reports whether a browser request comes from the page's own
// origin. Without Origin and Referer (curl, old browsers with SameSite
// cookies) it is taken as same-origin.
func sameOrigin(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		return originMatchesHost(o, r.Host)
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		return originMatchesHost(ref, r.Host)
	}
	return true
}

func foreignOrigin(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		return o
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		return ref
	}
	return "another site"
}

// originMatchesHost reports whether the URL u (an Origin or Referer header)
// names host, the request's Host header.
func originMatchesHost(u, host string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return false // includes Origin: null
	}
	return strings.EqualFold(p.Host, host)
}

// setTokenCookie stores a valid token for the page and later requests.
func setTokenCookie(w http.ResponseWriter, r *http.Request, tok string) {
	http.SetCookie(w, &http.Cookie{
		Name:     tokenCookie,
		Value:    tok,
		Path:     "/",
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}
