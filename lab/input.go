package lab

import (
	"errors"
	"fmt"
	"strings"

	"caplab/lab/inventory"
	"caplab/nodes"
)

// checkOp checks an operation's store, region (one of regions) and SKU.
func checkOp(regions []string, store inventory.Store, sku, region string) error {
	if _, err := inventory.ParseStore(string(store)); err != nil {
		return err
	}
	if err := inventory.CheckRegion(regions, region); err != nil {
		return err
	}
	return inventory.CheckSKU(sku)
}

// wrapNodes maps a nodes error to the lab's sentinels.
func wrapNodes(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, nodes.ErrBadOperation): // region names are checked before nodes is called
		msg := strings.TrimPrefix(err.Error(), "nodes: ")
		return fmt.Errorf("%w: %s", inventory.ErrBadInput, cleanNodesMsg(msg))
	case errors.Is(err, nodes.ErrClosed):
		return inventory.ErrClosed
	case errors.Is(err, nodes.ErrRegionDown), errors.Is(err, nodes.ErrRegionUp):
		return fmt.Errorf("%w: %s", inventory.ErrConflict, strings.TrimPrefix(err.Error(), "nodes: "))
	case errors.Is(err, nodes.ErrNoLeader):
		return fmt.Errorf("%w: %s", inventory.ErrUnavailable, strings.TrimPrefix(err.Error(), "nodes: "))
	}
	return fmt.Errorf("%w: %s", inventory.ErrUnavailable, strings.TrimPrefix(err.Error(), "nodes: "))
}

// cleanNodesMsg drops the "bad operation: " inside a nodes message.
func cleanNodesMsg(msg string) string {
	return strings.Replace(msg, nodes.ErrBadOperation.Error()+": ", "", 1)
}
