package web

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"

	"github.com/gorilla/websocket"
)

// The lean stream: deltas (?delta=1) and panels (?panels=, "panels"
// messages). Real WebSocket viewers on a real hub.

func (f *hubFixture) dialQuery(t *testing.T, query string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(f.wsURL+"?"+query, nil)
	if err != nil {
		t.Fatalf("dial ?%s: %v", query, err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// rawFrame is any frame, its delta left undecoded.
type rawFrame struct {
	Type    string          `json:"type"`
	State   json.RawMessage `json:"state"`
	Base    int64           `json:"base"`
	Version int64           `json:"version"`
	Delta   json.RawMessage `json:"delta"`
	ID      string          `json:"id"`
}

func readRaw(t *testing.T, c *websocket.Conn) rawFrame {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var f rawFrame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("frame %s: %v", b, err)
	}
	return f
}

// changingState is version v of a lab whose counters, traffic, roles and
// links all move.
func changingState(v int64) lab.Event {
	st := testState(v)
	st.Counters = []lab.StoreCounter{{Store: inventory.Consensus, OK: int(v * 7)}, {Store: inventory.Replicated, OK: int(v)}}
	st.Links = []lab.LinkState{{From: "us-east-1", To: "eu-west-1", State: "up", Bytes: v * 1000, Messages: v}, {From: "eu-west-1", To: "us-east-1", State: []string{"up", "cut"}[v%4/3], Bytes: v * 10}}
	st.Regions[v%3].Consensus.Role = "leader"
	st.Regions[1].Consensus.CommitIndex = uint64(v * 3)
	if v%5 == 0 {
		st.Regions[2].Zones = []lab.ZoneState{{Name: "ap-southeast-1a", Up: true, Role: "leader"}}
	}
	return lab.Event{Type: lab.EventState, State: &st}
}

// TestDeltaViewerHoldsTheSameStates: a viewer that asked for deltas and
// one that did not see the same States at every version: applying each
// delta to the State the viewer holds gives the State the other got
// whole. Deltas are also smaller.
func TestDeltaViewerHoldsTheSameStates(t *testing.T) {
	f := startHub(t, hubConfig{Interval: time.Millisecond, SummaryInterval: time.Millisecond})
	whole, delta := f.dial(t), f.dialQuery(t, "delta=1")
	for _, c := range []*websocket.Conn{whole, delta} {
		if fr := readRaw(t, c); fr.Type != frameState {
			t.Fatalf("first frame %q, want the State", fr.Type)
		}
	}
	waitClients(t, f.hub, 2)
	const last = 60
	go func() {
		for v := int64(1); v <= last; v++ {
			f.events <- changingState(v)
			time.Sleep(3 * time.Millisecond) // past Interval: most versions become a frame
		}
	}()
	states := map[int64]any{}
	var wholeBytes int
	for {
		fr := readRaw(t, whole)
		if fr.Type != frameState {
			continue
		}
		wholeBytes += len(fr.State)
		var st any
		_ = json.Unmarshal(fr.State, &st)
		v := int64(st.(map[string]any)["version"].(float64))
		states[v] = st
		if v == last {
			break
		}
	}
	var held any
	var deltaBytes, deltas int
	for {
		fr := readRaw(t, delta)
		switch fr.Type {
		case frameState: // a State whole: after a connect, or when a delta cannot say it
			_ = json.Unmarshal(fr.State, &held)
		case frameDelta:
			deltas++
			deltaBytes += len(fr.Delta)
			if v := int64(held.(map[string]any)["version"].(float64)); v != fr.Base {
				t.Fatalf("a delta from version %d came to a viewer holding %d", fr.Base, v)
			}
			var d any
			_ = json.Unmarshal(fr.Delta, &d)
			held = applyJSON(held, d)
		default:
			continue
		}
		v := int64(held.(map[string]any)["version"].(float64))
		want, ok := states[v]
		if !ok {
			t.Fatalf("the delta viewer holds version %d, which the other viewer never got", v)
		}
		if !reflect.DeepEqual(dropNulls(held), dropNulls(want)) {
			a, _ := json.Marshal(held)
			b, _ := json.Marshal(want)
			t.Fatalf("version %d: the delta viewer holds\n%s\nthe other got\n%s", v, a, b)
		}
		if v == last {
			break
		}
	}
	if deltas < last/3 {
		t.Fatalf("%d deltas for %d versions", deltas, last)
	}
	if deltaBytes*2 > wholeBytes {
		t.Errorf("deltas took %d bytes, the whole States %d: want less than half", deltaBytes, wholeBytes)
	}
}

// TestPanelsGateFrames: a viewer that says which panels it shows gets the
// frames of the others' panels only when it opens them — and then at once
// the newest of them (the sticky load frame, the last counters); a viewer
// that never said gets everything, as before.
func TestPanelsGateFrames(t *testing.T) {
	frags := func(st lab.State) []fragment {
		return []fragment{{ID: "counters", HTML: fmt.Sprintf("<div id=counters>%d</div>", st.Version), Panel: panelChecker}, {ID: "always", HTML: "x"}}
	}
	f := startHub(t, hubConfig{Interval: time.Millisecond, SummaryInterval: time.Millisecond, Fragments: frags})
	all, lean := f.dial(t), f.dialQuery(t, "panels=")
	waitClients(t, f.hub, 2)
	load := func(n int) {
		b, _ := json.Marshal(map[string]any{"type": frameLoad, "load": map[string]int{"n": n}})
		f.hub.sendMsg(outMsg{viewer: b, sticky: frameLoad, panel: panelLoad})
	}
	load(1)
	f.emit(t, changingState(1))
	f.emit(t, faultEvent(9)) // a marker: every frame before it has been queued
	seen := func(c *websocket.Conn) map[string]int {
		got := map[string]int{}
		for {
			fr := readRaw(t, c)
			key := fr.Type
			if fr.Type == frameFragment {
				key += ":" + fr.ID
			}
			got[key]++
			if fr.Type == frameFault {
				return got
			}
		}
	}
	if got := seen(all); got[frameLoad] != 1 || got["fragment:counters"] < 1 || got["fragment:always"] < 1 {
		t.Errorf("a viewer that never said which panels it shows got %v, want every frame", got)
	}
	if got := seen(lean); got[frameLoad] != 0 || got["fragment:counters"] != 0 || got["fragment:always"] < 1 || got[frameState] < 1 {
		t.Errorf("a viewer showing no panel got %v, want state and ungated fragments only", got)
	}
	// Opening the load panel: the newest load frame at once, then each one.
	if err := lean.WriteMessage(websocket.TextMessage, []byte(`{"type":"panels","show":["load","nonsense"]}`)); err != nil {
		t.Fatal(err)
	}
	// The newest load frame follows (after any state frame already queued).
	for fr := readRaw(t, lean); fr.Type != frameLoad; fr = readRaw(t, lean) {
		if fr.Type != frameState && fr.Type != frameFragment && fr.Type != frameDelta || fr.ID == "counters" {
			t.Fatalf("after opening the load panel: a %q %q frame before the newest load frame", fr.Type, fr.ID)
		}
	}
	load(2)
	f.emit(t, changingState(2))
	f.emit(t, faultEvent(10))
	if got := seen(lean); got[frameLoad] != 1 || got["fragment:counters"] != 0 {
		t.Errorf("with the load panel open: %v, want the load frame and still no counters", got)
	}
	// Opening the checker panel too: the last counters at once.
	_ = lean.WriteMessage(websocket.TextMessage, []byte(`{"type":"panels","show":["load","checker"]}`))
	for fr := readRaw(t, lean); fr.Type != frameFragment || fr.ID != "counters"; fr = readRaw(t, lean) {
		if fr.Type != frameState && fr.Type != frameFragment && fr.Type != frameDelta {
			t.Fatalf("after opening the checker panel: a %q frame before the counters", fr.Type)
		}
	}
}

// TestStreamOptionsRefused: a /ws query the hub cannot honour is a 400
// with a sentence, before the upgrade.
func TestStreamOptionsRefused(t *testing.T) {
	f := startHub(t, hubConfig{})
	for q, says := range map[string]string{"delta=yes": "delta must be 1 or 0", "panels=checker,shops": "not \"shops\""} {
		_, resp, err := websocket.DefaultDialer.Dial(f.wsURL+"?"+q, nil)
		if err == nil || resp == nil || resp.StatusCode != 400 {
			t.Fatalf("?%s: %v %v, want 400", q, resp, err)
		}
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		_ = resp.Body.Close()
		if !strings.Contains(e.Error, says) {
			t.Errorf("?%s: %q does not say %q", q, e.Error, says)
		}
	}
}
