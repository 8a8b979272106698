package lab

import "fmt"

// FaultSpeed records a change of the network's speed (SetSpeed).
const FaultSpeed FaultKind = "speed"

// SetSpeed makes every link between regions faster than the lab started:
// each delay factor × its start (0 < factor ≤ 1; 1 is the start). Raft's
// timers were set for the start's delays, so the lab never gets slower
// than that. A reset keeps the factor. Bad input changes nothing.
func (l *Lab) SetSpeed(factor float64) error {
	if err := l.cluster.Fabric().SetSpeed(factor); err != nil {
		return wrapNodes(err)
	}
	l.fault(FaultSpeed, nil, fmt.Sprintf("links at %g × their start delay", factor))
	return nil
}

// Speed is the factor SetSpeed set (1 at the start).
func (l *Lab) Speed() float64 { return l.cluster.Fabric().Speed() }
