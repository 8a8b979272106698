package check

// GeoConservation is the conservation check of one SKU across every regional
// group: stocked = sold + remaining + in transit, from the rows themselves.
type GeoConservation struct {
	SKU              string            `json:"sku"`
	Stocked          int               `json:"stocked"`
	Sold             int               `json:"sold"`
	Remaining        int               `json:"remaining"`
	InTransit        int               `json:"inTransit"`        // units debited at a source and not credited
	PendingTransfers int               `json:"pendingTransfers"` // transfer records not finished
	Conserved        bool              `json:"conserved"`
	Oversold         int               `json:"oversold"`
	Regions          map[string]GeoRow `json:"regions"`
	Explanation      string            `json:"explanation"`
}

// GeoRow is one region's row in a GeoConservation.
type GeoRow struct {
	Quantity int `json:"quantity"`
	Sold     int `json:"sold"`
	Stocked  int `json:"stocked"`
	In       int `json:"in"`
	Out      int `json:"out"`
}
