package lab

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"caplab/nodes"
)

// ---- names and input ----

var skuPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// CheckRegion returns an error naming the valid regions unless name is one.
func (l *Lab) CheckRegion(name string) error {
	if slices.Contains(l.regions, name) {
		return nil
	}
	return fmt.Errorf("%w: region %s is not in this lab (regions: %s)", ErrUnknownRegion, Echo(name), strings.Join(l.regions, ", "))
}

// ParseStore checks a store name.
func ParseStore(name string) (Store, error) {
	switch s := Store(name); s {
	case Consensus, Replicated, Geo:
		return s, nil
	}
	return "", fmt.Errorf("%w: store %s does not exist (stores: consensus, replicated, geo)", ErrUnknownStore, Echo(name))
}

// CheckSKU checks a SKU against ^[A-Za-z0-9._-]{1,64}$.
func CheckSKU(sku string) error {
	if skuPattern.MatchString(sku) {
		return nil
	}
	return fmt.Errorf("%w: SKU %s must be 1 to 64 letters, digits, '.', '_' or '-'", ErrBadInput, Echo(sku))
}

// CheckQty checks a buy quantity (1..1000).
func CheckQty(qty int) error {
	if qty >= 1 && qty <= 1000 {
		return nil
	}
	return fmt.Errorf("%w: qty must be a whole number from 1 to 1000 (got %d)", ErrBadInput, qty)
}

// MaxStock bounds a stock level.
const MaxStock = 1_000_000

func (l *Lab) checkOp(store Store, sku, region string) error {
	if _, err := ParseStore(string(store)); err != nil {
		return err
	}
	if err := l.CheckRegion(region); err != nil {
		return err
	}
	return CheckSKU(sku)
}

// wrapNodes maps a nodes error to the lab's sentinels.
func wrapNodes(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, nodes.ErrBadOperation): // region names are checked before nodes is called
		msg := strings.TrimPrefix(err.Error(), "nodes: ")
		return fmt.Errorf("%w: %s", ErrBadInput, cleanNodesMsg(msg))
	case errors.Is(err, nodes.ErrClosed):
		return ErrClosed
	case errors.Is(err, nodes.ErrRegionDown), errors.Is(err, nodes.ErrRegionUp):
		return fmt.Errorf("%w: %s", ErrConflict, strings.TrimPrefix(err.Error(), "nodes: "))
	case errors.Is(err, nodes.ErrNoLeader):
		return fmt.Errorf("%w: %s", ErrUnavailable, strings.TrimPrefix(err.Error(), "nodes: "))
	}
	return fmt.Errorf("%w: %s", ErrUnavailable, strings.TrimPrefix(err.Error(), "nodes: "))
}

// cleanNodesMsg drops the "bad operation: " inside a nodes message.
func cleanNodesMsg(msg string) string {
	return strings.Replace(msg, nodes.ErrBadOperation.Error()+": ", "", 1)
}
