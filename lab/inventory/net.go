package inventory

// FaultNet is the network and the regions as a fault left them, recorded
// with every fault (Fault.Net) and once when the History starts, so that
// the map of any moment since the last reset can be drawn again (lab's
// MomentAt). Links are "from>to" (regions' and zones'), one way each.
// Leaders are as the lab knew them at that moment: an election that
// followed the fault is not recorded until the next fault.
type FaultNet struct {
	Cut  []string `json:"cut,omitempty"`  // links cut, one way each
	Down []string `json:"down,omitempty"` // regions and zones not running
	// RTTMs: at the History's start every link's round trip; with a
	// fault only the links whose round trip differs from the start.
	RTTMs       map[string]float64  `json:"rttMs,omitempty"`
	Leader      string              `json:"leader,omitempty"`      // the consensus group's leader, "" none known
	ZoneLeaders []string            `json:"zoneLeaders,omitempty"` // zones that lead their region's group
	W           int                 `json:"w"`                     // the replicated store's W and R
	R           int                 `json:"r"`
	Speed       float64             `json:"speed,omitempty"`  // the network's speed factor
	Clocks      map[string]NetClock `json:"clocks,omitempty"` // regions whose clock is not true time
}

// NetClock is a region clock's setting in a FaultNet.
type NetClock struct {
	OffsetMs float64 `json:"offsetMs"`
	DriftPpm float64 `json:"driftPpm"`
}

// LinkKey names the link from → to in a FaultNet.
func LinkKey(from, to string) string { return from + ">" + to }
