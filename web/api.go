package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// Limits of the API (API.md).
const (
	maxBodyBytes = 64 << 10
	minQty       = inventory.MinQty
	maxQty       = inventory.MaxQty
	maxStock     = inventory.MaxStock
	maxRTTMs     = lab.MaxRTTMs
)

// apiError is an error with the HTTP status it answers with.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &apiError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

// writeJSON answers v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(map[string]string{"error": "The lab could not encode its answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// writeError answers {"error": sentence}.
func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// fail answers err with the status its kind calls for.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var mbe *http.MaxBytesError
	status := http.StatusInternalServerError
	msg := err.Error()
	switch {
	case errors.As(err, &ae):
		status = ae.status
	case errors.As(err, &mbe):
		status = http.StatusRequestEntityTooLarge
		msg = fmt.Sprintf("The request body is larger than %d KiB; send less.", maxBodyBytes>>10)
	case errors.Is(err, inventory.ErrUnknownRegion), errors.Is(err, inventory.ErrUnknownStore):
		status = http.StatusNotFound
	case errors.Is(err, inventory.ErrBadInput):
		status = http.StatusBadRequest
	case errors.Is(err, inventory.ErrConflict):
		status = http.StatusConflict
	case errors.Is(err, inventory.ErrUnavailable), errors.Is(err, inventory.ErrClosed):
		status = http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
		msg = "The lab did not answer in time; try again in a moment."
	case errors.Is(err, context.Canceled):
		status = http.StatusServiceUnavailable
		msg = "The request was cancelled before the lab answered."
	}
	if status >= 500 {
		s.log.Warn("web: request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	writeError(w, status, "%s", sentence(msg))
}

// sentence makes sure a message starts with a capital and ends with a stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "Something went wrong."
	}
	if r := s[0]; r >= 'a' && r <= 'z' {
		s = string(r-'a'+'A') + s[1:]
	}
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") && !strings.HasSuffix(s, "!") && !strings.HasSuffix(s, ")") {
		s += "."
	}
	return s
}

// decode reads one JSON value from the body into v: at most 64 KiB, no
// trailing data, types as declared. Unknown fields are allowed, because the
// API may grow. An empty body is read as {}.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("The request body could not be read: %v.", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return badRequest("%s", jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("The request body has more after its JSON object; send exactly one object.")
	}
	return nil
}

// jsonProblem turns a decoding error into a sentence.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return fmt.Sprintf("The request body must be a JSON object, not %s.", echoValue(te.Value))
		}
		return fmt.Sprintf("%s must be %s, not %s.", inventory.Echo(field), jsonTypeName(te.Type.String()), echoValue(te.Value))
	case errors.As(err, &se):
		return fmt.Sprintf("The request body is not valid JSON (at byte %d: %v).", se.Offset, se.Error())
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "The request body is cut short; send a complete JSON object."
	}
	return fmt.Sprintf("The request body is not valid JSON: %v.", err)
}

func jsonTypeName(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "*int"):
		return "a whole number"
	case strings.Contains(goType, "float"):
		return "a number"
	case strings.Contains(goType, "bool"):
		return "true or false"
	case strings.Contains(goType, "string"):
		return "a string"
	case strings.HasPrefix(goType, "[]"), strings.HasPrefix(goType, "[][]"):
		return "a list"
	}
	return "a " + goType
}

// opContext bounds a store operation: the lab answers within its request
// timeout; the extra second only guards against a lab that does not.
func (s *Server) opContext(r *http.Request, factor int) (context.Context, context.CancelFunc) {
	d := s.lab.RequestTimeout()
	if d <= 0 {
		d = 2 * time.Second
	}
	return context.WithTimeout(r.Context(), time.Duration(factor)*d+time.Second)
}

// --- handlers: faults and state in api_faults.go, store operations in
// api_stores.go, history and verdicts in api_history.go.

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}
