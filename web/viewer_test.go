package web

import (
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"caplab/lab"
	"caplab/lessons"
)

func TestViewerKeys(t *testing.T) {
	k, other := newViewerKeys(), newViewerKeys()
	v := k.issue()
	id := k.verify(v)
	if len(id) != 32 || !strings.HasPrefix(v, id+".") {
		t.Fatalf("verify(%q) = %q", v, id)
	}
	if k.issue() == v {
		t.Error("two ids alike")
	}
	tag := v[33:]
	flipped := []byte(tag)
	flipped[0] ^= 1
	if flipped[0] > 'f' || (flipped[0] > '9' && flipped[0] < 'a') {
		flipped[0] = '0'
	}
	for _, bad := range []string{
		"", id, id + ".", strings.Repeat("0", 32), strings.Repeat("0", 32) + "." + tag,
		id + "." + string(flipped), strings.ToUpper(v), v + "0", " " + v,
		id + "." + strings.Repeat("0", 32),
	} {
		if got := k.verify(bad); got != "" && bad != v {
			t.Errorf("verify(%q) = %q, want refused", bad, got)
		}
	}
	if other.verify(v) != "" {
		t.Error("another lab's secret accepts this lab's id")
	}
	if _, err := hex.DecodeString(id); err != nil {
		t.Error(err)
	}
}

func TestClientAddress(t *testing.T) {
	for remote, want := range map[string]string{
		"127.0.0.1:5555":               "127.0.0.1",
		"10.1.2.3:80":                  "10.1.2.3",
		"[2001:db8:1:2:3:4:5:6]:443":   "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443":   "2001:db8:1:2::/64",
		"[::ffff:192.168.1.9]:1":       "192.168.1.9",
		"not an address":               "not an address",
		"[2001:db8:1:3:3:4:5:6]:65535": "2001:db8:1:3::/64",
	} {
		r := &http.Request{RemoteAddr: remote}
		if got := clientAddress(r); got != want {
			t.Errorf("clientAddress(%q) = %q, want %q", remote, got, want)
		}
	}
}

// TestVoteStuffing replays the attack of issue 9 — made-up viewer ids with
// a forged Origin — and the next one: many real ids from one address.
// Only ids the lab signed vote, at most VotesPerAddress of them per
// address and question; the presenter sees votes beside connected viewers.
func TestVoteStuffing(t *testing.T) {
	cat, _ := lessons.LoadCatalog(lessonDir(t))
	l := startLab(t, lab.Config{LatencyScale: 0.05})
	const perAddress = 5
	s := New(l, Options{Token: testToken, Logger: quietLogger(), Lessons: LessonsFrom(cat, lessons.LabOf(l)), VotesPerAddress: perAddress})
	t.Cleanup(s.Close)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	f := &apiFixture{lab: l, srv: srv, s: s}
	origin := srv.URL

	if resp, b := f.call(t, "PUT", "/api/lesson", `{"lesson":"quiz","step":1}`, nil); resp.StatusCode != 200 {
		t.Fatalf("PUT /api/lesson: %d %s", resp.StatusCode, b)
	}
	presenter := dialLessonStream(t, f, true)

	// The WebSocket issues an id to a viewer that has none.
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial /ws: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	var wsID string
	for _, c := range resp.Cookies() {
		if c.Name == viewerCookie && s.viewerKeys.verify(c.Value) != "" && c.HttpOnly {
			wsID = c.Value
		}
	}
	if wsID == "" {
		t.Fatalf("the upgrade set no signed viewer cookie: %v", resp.Header["Set-Cookie"])
	}

	vote := func(client *http.Client, cookie, option string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/api/poll/vote", strings.NewReader(`{"option":"`+option+`"}`))
		req.Header.Set("Origin", origin)
		req.Header.Set("Cookie", viewerCookie+"="+cookie)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	local := http.DefaultClient
	if code, b := vote(local, wsID, "yes"); code != 200 || !strings.Contains(b, `"votes":1`) {
		t.Fatalf("vote with the WebSocket's id: %d %s", code, b)
	}

	// 300 made-up ids (the issue's script, shortened): none counts.
	for i := range 300 {
		if code, b := vote(local, fmt.Sprintf("%032x", i), "no"); code != http.StatusForbidden {
			t.Fatalf("made-up id %d: %d %s, want 403", i, code, b)
		}
	}

	// Real ids, collected by loading the page: the address's first
	// perAddress voters count, the next is refused, a voter may still change
	// its mind.
	ids := []string{wsID}
	for len(ids) < perAddress+2 {
		ids = append(ids, viewerCookieFrom(t, f))
	}
	for i, id := range ids[1:perAddress] {
		if code, b := vote(local, id, "no"); code != 200 || !strings.Contains(b, fmt.Sprintf(`"votes":%d`, i+2)) {
			t.Fatalf("voter %d: %d %s", i+2, code, b)
		}
	}
	code, b := vote(local, ids[perAddress], "no")
	if code != http.StatusTooManyRequests || !strings.Contains(b, "127.0.0.1") || !strings.Contains(b, fmt.Sprint(perAddress)) {
		t.Fatalf("voter %d from the same address: %d %s, want 429 naming the address and the cap", perAddress+1, code, b)
	}
	if code, b := vote(local, ids[0], "maybe"); code != 200 || !strings.Contains(b, fmt.Sprintf(`"votes":%d`, perAddress)) {
		t.Errorf("changing a counted vote: %d %s", code, b)
	}

	// Another address (127.0.0.2 is loopback too) has its own cap.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")},
	}).DialContext}}
	t.Cleanup(other.CloseIdleConnections)
	if code, b := vote(other, ids[perAddress], "no"); code != 200 || !strings.Contains(b, fmt.Sprintf(`"votes":%d`, perAddress+1)) {
		t.Errorf("a voter from 127.0.0.2: %d %s", code, b)
	}

	got := presenter.await(t, "votes beside viewers", framePoll, func(f lessonFrame) bool {
		return f.Poll != nil && f.Poll.Votes == perAddress+1
	})
	if got.Poll.Viewers != 2 { // the presenter's stream and conn
		t.Errorf("presenter's poll says %d viewers connected, want 2: %+v", got.Poll.Viewers, got.Poll)
	}

	// The next question starts every address afresh.
	if resp, b := f.call(t, "POST", "/api/poll/next", `{}`, nil); resp.StatusCode != 200 {
		t.Fatalf("next question: %d %s", resp.StatusCode, b)
	}
	if code, b := vote(local, ids[perAddress], "no"); code != 200 {
		t.Errorf("voter %d on the next question: %d %s", perAddress+1, code, b)
	}
}
