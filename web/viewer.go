package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
)

// Viewer ids and the rules of the audience's vote.
//
// A browser gets its viewer id from the lab — in the caplab_viewer cookie,
// set when it opens the page or the WebSocket — and the id is signed: the
// cookie is "<id>.<tag>", tag = HMAC-SHA256(secret, id) truncated to 128
// bits, with a secret the Server draws at New and never shows. A vote
// counts only with a cookie the lab signed, so a script cannot make up
// ids; and however many ids one client address collects (each page load
// without a cookie issues one), at most Options.VotesPerAddress of them vote
// on one question. The presenter's poll frame says how many viewers are
// connected beside the votes.

const (
	// viewerCookie carries the signed viewer id.
	viewerCookie = "caplab_viewer"
	// defaultVotesPerAddress is Options.VotesPerAddress's default: a
	// classroom behind one NAT address still votes, a script on one
	// machine cannot stuff a poll.
	defaultVotesPerAddress = 50
	viewerIDBytes          = 16
	viewerTagBytes         = 16
)

// viewerKeys signs and checks viewer ids.
type viewerKeys struct {
	secret [32]byte
}

func newViewerKeys() *viewerKeys {
	k := &viewerKeys{}
	_, _ = rand.Read(k.secret[:]) // crypto/rand.Read never fails
	return k
}

func (k *viewerKeys) tag(id string) string {
	m := hmac.New(sha256.New, k.secret[:])
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil)[:viewerTagBytes])
}

// issue returns a new signed cookie value.
func (k *viewerKeys) issue() string {
	var b [viewerIDBytes]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	return id + "." + k.tag(id)
}

// verify returns the id of a cookie value this lab signed, "" otherwise.
func (k *viewerKeys) verify(v string) string {
	id, tag, ok := strings.Cut(v, ".")
	if !ok || len(id) != 2*viewerIDBytes || len(tag) != 2*viewerTagBytes || !isLowerHex(id) {
		return ""
	}
	if !hmac.Equal([]byte(tag), []byte(k.tag(id))) {
		return ""
	}
	return id
}

func isLowerHex(s string) bool {
	for _, ch := range s {
		if (ch < '0' || ch > '9') && (ch < 'a' || ch > 'f') {
			return false
		}
	}
	return true
}

// viewerID is the caller's viewer id: the id of a caplab_viewer cookie
// this lab signed, "" when there is none.
func (s *Server) viewerID(r *http.Request) string {
	c, err := r.Cookie(viewerCookie)
	if err != nil {
		return ""
	}
	return s.viewerKeys.verify(c.Value)
}

// viewerCookieFor is the cookie that gives a caller without a valid
// viewer id a new one; nil when it has one.
func (s *Server) viewerCookieFor(r *http.Request) *http.Cookie {
	if s.viewerID(r) != "" {
		return nil
	}
	return &http.Cookie{
		Name:     viewerCookie,
		Value:    s.viewerKeys.issue(),
		Path:     "/",
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	}
}

// setViewerCookie gives a browser without a signed viewer id its own, for
// one vote per poll (the page).
func (s *Server) setViewerCookie(w http.ResponseWriter, r *http.Request) {
	if c := s.viewerCookieFor(r); c != nil {
		http.SetCookie(w, c)
	}
}

// upgradeHeader is the extra header of a WebSocket upgrade's answer: the
// viewer cookie when the caller has none yet.
func (s *Server) upgradeHeader(r *http.Request) http.Header {
	c := s.viewerCookieFor(r)
	if c == nil || s.session == nil {
		return nil
	}
	return http.Header{"Set-Cookie": {c.String()}}
}

// clientAddress is who sent r, for the per-address vote cap: the IP of the
// connection (never a header the client writes), an IPv6 address by its
// /64 network, which one host usually owns whole.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

// voteGate caps the distinct voters per client address on one question.
// It remembers only the open question's voters.
type voteGate struct {
	mu       sync.Mutex // held across a whole vote: check, count, remember
	question string
	voters   map[string]map[string]struct{} // address → voter ids
}

// pollKey names the open question; "" when none is open.
func pollKey(p *pollView) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf("%s\x00%d\x00%d", p.Lesson, p.Step, p.Index)
}

// admitVote casts voter's vote through cast unless voter's address
// already has its limit of other voters on the open question.
func (s *Server) admitVote(r *http.Request, voter string, cast func() (int, error)) (int, error) {
	g := &s.votes
	g.mu.Lock()
	defer g.mu.Unlock()
	snap := s.session.snapshot(true, "")
	key := pollKey(snap["poll"].(*pollView))
	if key != g.question || g.voters == nil {
		g.question, g.voters = key, map[string]map[string]struct{}{}
	}
	addr := clientAddress(r)
	limit := s.opts.VotesPerAddress
	if limit <= 0 {
		limit = defaultVotesPerAddress
	}
	mine := g.voters[addr]
	if _, known := mine[voter]; !known && len(mine) >= limit && key != "" {
		return 0, &apiError{http.StatusTooManyRequests, fmt.Sprintf(
			"%d viewers at your address (%s) have voted on this question already, the most one address may cast; your vote was not added.", limit, addr)}
	}
	n, err := cast()
	if err != nil {
		return 0, err
	}
	if mine == nil {
		mine = map[string]struct{}{}
		g.voters[addr] = mine
	}
	mine[voter] = struct{}{}
	return n, nil
}
