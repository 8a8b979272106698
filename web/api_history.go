package web

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"caplab/lab"
	"caplab/lab/history"
	"caplab/lab/inventory"
)

// --- handlers of the history and the checker's verdicts.

// handleHistory answers the history of one SKU; without ?sku= it answers
// whatever the lab keeps for "" (every SKU, as the lab defines it). ?last=N
// (1 to the History's own cap) answers only the newest N operations and faults.
func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	sku := r.URL.Query().Get("sku")
	if sku != "" {
		if err := checkSKU(sku); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	last := 0
	if v := r.URL.Query().Get("last"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > history.MaxOperations {
			s.fail(w, r, fmt.Errorf("%w: last must be a whole number from 1 to %d (the newest operations and faults to return), got %s", inventory.ErrBadInput, history.MaxOperations, inventory.Echo(v)))
			return
		}
		last = n
	}
	h := s.lab.History(sku)
	if last > 0 { // a page that shows the newest few need not be sent them all
		h.Operations = h.Operations[max(0, len(h.Operations)-last):]
		h.Faults = h.Faults[max(0, len(h.Faults)-last):]
	}
	ops := make([]saidOperation, len(h.Operations))
	for i, o := range h.Operations {
		w := lab.Say(o)
		o.Message, o.AnsweredBy = "", nil // in said.text: not sent twice
		ops[i] = saidOperation{o, w}
	}
	faults := make([]saidFault, len(h.Faults))
	for i, f := range h.Faults {
		faults[i] = saidFault{f, lab.Words{Text: lab.SayFault(f)}}
	}
	writeJSON(w, http.StatusOK, map[string]any{"operations": ops, "faults": faults})
}

// checkQuery reads ?store= and ?sku=; store defaults to consensus.
func checkQuery(r *http.Request) (inventory.Store, string, error) {
	q := r.URL.Query()
	name := q.Get("store")
	if name == "" {
		name = string(inventory.Consensus)
	}
	st, err := parseStore(name)
	if err != nil {
		return "", "", err
	}
	sku := q.Get("sku")
	if err := checkSKU(sku); err != nil {
		return "", "", err
	}
	return st, sku, nil
}

func (s *Server) handleCheck(w http.ResponseWriter, r *http.Request) {
	st, sku, err := checkQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.lab.Check(st, sku)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleCheckVisual(w http.ResponseWriter, r *http.Request) {
	st, sku, err := checkQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var buf bytes.Buffer
	if err := s.lab.Visualize(st, sku, &buf); err != nil {
		s.fail(w, r, err)
		return
	}
	// porcupine's page is self-contained: inline script and style, nothing
	// to load or send. Its tooltips use innerHTML, so allow nothing else.
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	_, _ = w.Write(buf.Bytes())
}

// echoValue shortens encoding/json's description of a refused value
// ("number 1e308", "string"), which repeats a number literal whole.
func echoValue(v string) string {
	if kind, lit, ok := strings.Cut(v, " "); ok {
		if len(lit) > inventory.MaxEcho {
			return kind + " " + inventory.Echo(lit)
		}
	}
	return v
}
