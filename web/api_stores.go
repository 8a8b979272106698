package web

import (
	"context"
	"net/http"

	"caplab/lab"
	"caplab/lab/inventory"
)

// --- handlers of store operations: stock, buy, read.

// skuAction reads {store} and {sku} from the path.
func (s *Server) skuAction(r *http.Request) (inventory.Store, string, error) {
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
func (s *Server) answerOutcome(w http.ResponseWriter, r *http.Request, o inventory.Outcome, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if o.AnsweredBy == nil {
		o.AnsweredBy = []string{}
	}
	status := http.StatusOK
	switch o.Outcome {
	case inventory.Unavailable, inventory.FailFast, inventory.Overloaded:
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	case inventory.Conflict:
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
	if st := inventory.Store(r.PathValue("store")); st == inventory.Geo || len(req.Allocations) > 0 {
		s.stockGeo(w, r, req.Region, req.Quantity, req.Allocations)
		return
	}
	s.write(w, r, req.Region, checkQty("quantity", req.Quantity, 0, maxStock), req.Quantity, s.lab.Stock)
}

// stockGeo sets a geo SKU's allocations: as given, or quantity split
// evenly (the lab checks that they add up and names bad regions).
func (s *Server) stockGeo(w http.ResponseWriter, r *http.Request, region string, quantity *int, alloc map[string]int) {
	st, sku, err := s.skuAction(r)
	if err == nil && st != inventory.Geo {
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
	op func(context.Context, inventory.Store, string, string, int) (inventory.Outcome, error)) {
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
	c := inventory.Consistency(q.Get("consistency"))
	if c == "" {
		c = inventory.Linearizable
	}
	if err == nil && c != inventory.Linearizable && c != inventory.Serializable && c != inventory.Cached {
		err = badRequest("\"consistency\" must be linearizable, serializable or cached, not %s.", inventory.Echo(string(c)))
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
