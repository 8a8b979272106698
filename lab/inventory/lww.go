package inventory

// Item is the replicated store's value for one SKU in one replica: the stock
// count and the version of the write that set it.
type Item struct {
	Quantity int     `json:"quantity"`
	Version  Version `json:"version"`
}

// Merge resolves two copies of one SKU by last-writer-wins: the item with
// the newer Version wins, and an item with the zero Version ("never
// written") loses to any written one. Merge is pure, commutative,
// associative and idempotent, so replicas that exchange items in any order
// and any number of times converge.
//
// Two different items with the same Version cannot come from one hybrid
// logical clock per region; should it happen anyway, the larger Quantity
// wins so that Merge stays commutative.
func Merge(a, b Item) Item {
	if itemOlder(a, b) {
		return b
	}
	return a
}

// itemOlder reports whether a orders strictly before b in the total order
// Merge picks the maximum of: written before never-written, then by
// Version, then by Quantity.
func itemOlder(a, b Item) bool {
	az, bz := a.Version.IsZero(), b.Version.IsZero()
	if az != bz {
		return az
	}
	if a.Version != b.Version {
		return a.Version.Less(b.Version)
	}
	return a.Quantity < b.Quantity
}
