package web

import (
	"net/http"

	"caplab/lab/audit"
)

// handleExport answers GET /api/history/export?format=jsonl|porcupine|edn
// &store=S&sku=S: the lab's history for checkers outside it (lab.Export:
// from the audit log when the lab keeps one, else from memory). Open to
// viewers, like GET /api/history. The body streams; an error before the
// first byte is a JSON error, one after it cuts the response short (the
// client sees an incomplete transfer, never a silently short file).
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format, err := audit.ParseFormat(q.Get("format"))
	var f audit.Filter
	if err == nil && q.Get("store") != "" {
		f.Store, err = parseStore(q.Get("store"))
	}
	if sku := q.Get("sku"); err == nil && sku != "" {
		err = checkSKU(sku)
		f.SKU = sku
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	name, ctype := "caplab-history.jsonl", "application/x-ndjson; charset=utf-8"
	switch format {
	case audit.FormatPorcupine:
		name = "caplab-porcupine.jsonl"
	case audit.FormatEDN:
		name, ctype = "caplab-history.edn", "application/edn; charset=utf-8"
	}
	ew := &exportWriter{w: w, ctype: ctype, name: name}
	if err := s.lab.Export(ew, format, f); err != nil {
		if !ew.started {
			s.fail(w, r, err)
			return
		}
		s.log.Warn("web: history export cut short", "err", err)
		panic(http.ErrAbortHandler)
	}
	if !ew.started {
		ew.start() // an empty history: an empty file
	}
}

// exportWriter sends the headers with the first byte.
type exportWriter struct {
	w           http.ResponseWriter
	ctype, name string
	started     bool
}

func (e *exportWriter) start() {
	e.started = true
	h := e.w.Header()
	h.Set("Content-Type", e.ctype)
	h.Set("Content-Disposition", `attachment; filename="`+e.name+`"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	e.w.WriteHeader(http.StatusOK)
}

func (e *exportWriter) Write(p []byte) (int, error) {
	if !e.started {
		e.start()
	}
	return e.w.Write(p)
}
