package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"caplab/lab"
)

// Limits of the API (API.md).
const (
	maxBodyBytes = 64 << 10
	minQty       = 1
	maxQty       = 1000
	maxStock     = 1_000_000
	maxRTTMs     = 5000
)

var skuPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

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
	case errors.Is(err, lab.ErrUnknownRegion), errors.Is(err, lab.ErrUnknownStore):
		status = http.StatusNotFound
	case errors.Is(err, lab.ErrBadInput):
		status = http.StatusBadRequest
	case errors.Is(err, lab.ErrConflict):
		status = http.StatusConflict
	case errors.Is(err, lab.ErrUnavailable), errors.Is(err, lab.ErrClosed):
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
		return fmt.Sprintf("%s must be %s, not %s.", lab.Echo(field), jsonTypeName(te.Type.String()), echoValue(te.Value))
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

// --- validation: everything the API defines is checked before the lab is
// called, so nothing is half-applied.

func (s *Server) region(name string) error {
	regions := s.lab.Regions()
	if name == "" {
		return badRequest("Say which region, e.g. \"region\": %q (regions: %s).", first(regions), strings.Join(regions, ", "))
	}
	if !slices.Contains(regions, name) {
		return notFound("region %s is not in this lab (regions: %s)", lab.Echo(name), strings.Join(regions, ", "))
	}
	return nil
}

func parseStore(name string) (lab.Store, error) {
	st := lab.Store(name)
	if !slices.Contains(lab.Stores, st) {
		names := make([]string, len(lab.Stores))
		for i, x := range lab.Stores {
			names[i] = string(x)
		}
		return "", notFound("store %s is not in this lab (stores: %s)", lab.Echo(name), strings.Join(names, ", "))
	}
	return st, nil
}

func checkSKU(sku string) error {
	if !skuPattern.MatchString(sku) {
		return badRequest("SKU %s is not valid: use 1 to 64 letters, digits, '.', '_' or '-', e.g. IPHONE-15-PRO.", lab.Echo(sku))
	}
	return nil
}

func checkQty(field string, q *int, lo, hi int) error {
	if q == nil {
		return badRequest("Say how many: %q is missing (a whole number from %d to %d).", field, lo, hi)
	}
	if *q < lo || *q > hi {
		return badRequest("%q must be a whole number from %d to %d, not %d.", field, lo, hi, *q)
	}
	return nil
}

func (s *Server) checkPair(from, to string) error {
	if from != to && (s.lab.IsZone(from) || s.lab.IsZone(to)) {
		return nil // a zone link: the lab checks both zones (geo issue)
	}
	if err := s.region(from); err != nil {
		return err
	}
	if err := s.region(to); err != nil {
		return err
	}
	if from == to {
		return badRequest("A link joins two different regions; from and to are both %s.", lab.Echo(from))
	}
	return nil
}

// checkGroups verifies that groups cover every region exactly once.
func (s *Server) checkGroups(groups [][]string) error {
	regions := s.lab.Regions()
	if len(groups) == 0 {
		return badRequest("Say how to split the regions, e.g. {\"groups\":[[%q],[...]]}; every region in exactly one group.", first(regions))
	}
	seen := map[string]int{}
	for i, g := range groups {
		if len(g) == 0 {
			return badRequest("Group %d is empty; every group needs at least one region.", i+1)
		}
		for _, name := range g {
			if err := s.region(name); err != nil {
				return err
			}
			if j, dup := seen[name]; dup {
				if j == i {
					return badRequest("Region %s appears twice in group %d; put every region in exactly one group.", lab.Echo(name), i+1)
				}
				return badRequest("Region %s is in group %d and group %d; put every region in exactly one group.", lab.Echo(name), j+1, i+1)
			}
			seen[name] = i
		}
	}
	var missing []string
	for _, name := range regions {
		if _, ok := seen[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return badRequest("Every region must be in a group; missing: %s.", strings.Join(missing, ", "))
	}
	return nil
}

func first(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	return xs[0]
}

func joinComma(xs []string) string { return strings.Join(xs, ", ") }

func joinOr(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
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

// --- handlers

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Server) handleState(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("at") {
		s.handleStateAt(w, r) // replay.go
		return
	}
	writeJSON(w, http.StatusOK, s.lab.State())
}

// answerState finishes a mutation: err, or the State after it.
func (s *Server) answerState(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.lab.State())
}

func (s *Server) handlePartition(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Groups [][]string `json:"groups"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkGroups(req.Groups); err != nil {
		s.fail(w, r, err)
		return
	}
	s.answerState(w, r, s.lab.Partition(req.Groups))
}

func (s *Server) handleHeal(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	s.answerState(w, r, s.lab.HealAll())
}

// handleBridge (extension): the other regions split into two halves that
// reach each other only through via, in one step (no half-applied state).
func (s *Server) handleBridge(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Via string `json:"via"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.region(req.Via); err != nil {
		s.fail(w, r, err)
		return
	}
	if n := len(s.lab.Regions()); n < 3 {
		s.fail(w, r, badRequest("A bridge needs at least 3 regions; this lab has %d.", n))
		return
	}
	s.answerState(w, r, s.lab.Bridge(req.Via))
}

func (s *Server) handleLink(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From   string `json:"from"`
		To     string `json:"to"`
		State  string `json:"state"`
		OneWay bool   `json:"oneWay"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkPair(req.From, req.To); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.State != "up" && req.State != "cut" {
		s.fail(w, r, badRequest("\"state\" must be \"up\" or \"cut\", not %s.", lab.Echo(req.State)))
		return
	}
	s.answerState(w, r, s.lab.SetLink(req.From, req.To, req.State == "up", req.OneWay))
}

func (s *Server) handleLatency(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From   string   `json:"from"`
		To     string   `json:"to"`
		RTTMs  *float64 `json:"rttMs"`
		OneWay bool     `json:"oneWay"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkPair(req.From, req.To); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.RTTMs == nil {
		s.fail(w, r, badRequest("Say the round-trip time: \"rttMs\" is missing (0 to %d).", maxRTTMs))
		return
	}
	if rtt := *req.RTTMs; rtt < 0 || rtt > maxRTTMs {
		s.fail(w, r, badRequest("\"rttMs\" must be from 0 to %d milliseconds, not %s.", maxRTTMs, lab.EchoNumber(rtt)))
		return
	}
	s.answerState(w, r, s.lab.SetLatency(req.From, req.To, *req.RTTMs, req.OneWay))
}

// regionAction decodes the (empty) body and the {region} path value.
func (s *Server) regionAction(w http.ResponseWriter, r *http.Request) (string, bool) {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return "", false
	}
	name := r.PathValue("region")
	if err := s.region(name); err != nil {
		s.fail(w, r, err)
		return "", false
	}
	return name, true
}

func (s *Server) handleCrash(w http.ResponseWriter, r *http.Request) {
	if name, ok := s.regionOrZoneAction(w, r); ok {
		s.answerState(w, r, s.lab.Crash(name))
	}
}

func (s *Server) handleRestart(w http.ResponseWriter, r *http.Request) {
	if name, ok := s.regionOrZoneAction(w, r); ok {
		s.answerState(w, r, s.lab.Restart(name))
	}
}

// regionOrZoneAction is regionAction that also takes a zone (us-east-1a):
// the lab names both in its errors (geo issue).
func (s *Server) regionOrZoneAction(w http.ResponseWriter, r *http.Request) (string, bool) {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return "", false
	}
	name := r.PathValue("region")
	if name == "" {
		s.fail(w, r, s.region(name))
		return "", false
	}
	return name, true
}

func (s *Server) handleLead(w http.ResponseWriter, r *http.Request) {
	name, ok := s.regionAction(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.opContext(r, 5)
	defer cancel()
	err := s.lab.Lead(ctx, name)
	if errors.Is(err, context.DeadlineExceeded) {
		// Whatever stopped the move (a cut, a crash), the region cannot lead now.
		err = &apiError{http.StatusServiceUnavailable, fmt.Sprintf("Region %s did not become the leader in time; it may be cut off from the majority or crashed.", lab.Echo(name))}
	}
	s.answerState(w, r, err)
}

// skuAction reads {store} and {sku} from the path.
func (s *Server) skuAction(r *http.Request) (lab.Store, string, error) {
	st, err := parseStore(r.PathValue("store"))
	if err != nil {
		return "", "", err
	}
	sku := r.PathValue("sku")
	if err := checkSKU(sku); err != nil {
		return "", "", err
	}
	return st, sku, nil
}

// answerOutcome answers an Outcome with the status API.md gives its kind.
func (s *Server) answerOutcome(w http.ResponseWriter, r *http.Request, o lab.Outcome, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if o.AnsweredBy == nil {
		o.AnsweredBy = []string{}
	}
	status := http.StatusOK
	switch o.Outcome {
	case lab.Unavailable, lab.FailFast, lab.Overloaded:
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	case lab.Conflict:
		status = http.StatusConflict
	}
	writeJSON(w, status, saidOutcome{o, lab.SayOutcome(o)})
}

func (s *Server) handleStock(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Region      string         `json:"region"`
		Quantity    *int           `json:"quantity"`
		Allocations map[string]int `json:"allocations"` // geo store only
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if st := lab.Store(r.PathValue("store")); st == lab.Geo || len(req.Allocations) > 0 {
		s.stockGeo(w, r, req.Region, req.Quantity, req.Allocations)
		return
	}
	s.write(w, r, req.Region, checkQty("quantity", req.Quantity, 0, maxStock), req.Quantity, s.lab.Stock)
}

// stockGeo sets a geo SKU's allocations: as given, or quantity split
// evenly (the lab checks that they add up and names bad regions).
func (s *Server) stockGeo(w http.ResponseWriter, r *http.Request, region string, quantity *int, alloc map[string]int) {
	st, sku, err := s.skuAction(r)
	if err == nil && st != lab.Geo {
		err = badRequest("Only the geo store takes \"allocations\"; the %s store holds one stock count per SKU.", st)
	}
	if err == nil {
		err = s.region(region)
	}
	q := -1
	switch {
	case err != nil:
	case quantity == nil && len(alloc) == 0:
		err = badRequest("Say how many: give \"quantity\" (split evenly across regions) or \"allocations\", e.g. {\"us-east-1\":4}.")
	case quantity != nil:
		err = checkQty("quantity", quantity, 0, maxStock)
		q = *quantity
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := s.opContext(r, 1)
	defer cancel()
	o, err := s.lab.StockSplit(ctx, sku, region, q, alloc)
	s.answerOutcome(w, r, o, err)
}

func (s *Server) handleBuy(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Region string `json:"region"`
		Qty    *int   `json:"qty"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	s.write(w, r, req.Region, checkQty("qty", req.Qty, minQty, maxQty), req.Qty, s.lab.Buy)
}

// write finishes a stock or a buy: it checks the path's store and SKU, the
// region, then the amount (amountErr, from checkQty), and answers the
// Outcome of op.
func (s *Server) write(w http.ResponseWriter, r *http.Request, region string, amountErr error, amount *int,
	op func(context.Context, lab.Store, string, string, int) (lab.Outcome, error)) {
	st, sku, err := s.skuAction(r)
	if err == nil {
		err = s.region(region)
	}
	if err == nil {
		err = amountErr
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := s.opContext(r, 1)
	defer cancel()
	o, err := op(ctx, st, sku, region, *amount)
	s.answerOutcome(w, r, o, err)
}

func (s *Server) handleRead(w http.ResponseWriter, r *http.Request) {
	st, sku, err := s.skuAction(r)
	q := r.URL.Query()
	if err == nil {
		err = s.region(q.Get("region"))
	}
	c := lab.Consistency(q.Get("consistency"))
	if c == "" {
		c = lab.Linearizable
	}
	if err == nil && c != lab.Linearizable && c != lab.Serializable {
		err = badRequest("\"consistency\" must be linearizable or serializable, not %s.", lab.Echo(string(c)))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := s.opContext(r, 1)
	defer cancel()
	o, err := s.lab.Read(ctx, st, sku, q.Get("region"), c)
	s.answerOutcome(w, r, o, err)
}

func (s *Server) handleQuorum(w http.ResponseWriter, r *http.Request) {
	var req struct {
		W *int `json:"w"`
		R *int `json:"r"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := parseStore(r.PathValue("store"))
	if err == nil && st != lab.Replicated {
		err = badRequest("Only the replicated store has W and R; the %s store always uses a majority.", st)
	}
	n := len(s.lab.Regions())
	if err == nil {
		err = checkQty("w", req.W, 1, n)
	}
	if err == nil {
		err = checkQty("r", req.R, 1, n)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.answerState(w, r, s.lab.SetQuorum(*req.W, *req.R))
}

func (s *Server) handleReset(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	s.answerState(w, r, s.lab.Reset(ctx))
}

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
		if err != nil || n < 1 || n > lab.MaxHistoryOperations {
			s.fail(w, r, fmt.Errorf("%w: last must be a whole number from 1 to %d (the newest operations and faults to return), got %s", lab.ErrBadInput, lab.MaxHistoryOperations, lab.Echo(v)))
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
func checkQuery(r *http.Request) (lab.Store, string, error) {
	q := r.URL.Query()
	name := q.Get("store")
	if name == "" {
		name = string(lab.Consensus)
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
		if len(lit) > lab.MaxEcho {
			return kind + " " + lab.Echo(lit)
		}
	}
	return v
}
