package lessons

import "caplab/lab"

// LabOf is l as the runner's Lab: the lesson vocabulary is flat (a lesson
// says "partition", "clock", "pause" and "buy" alike), while the lab keeps
// faults, clocks and shop pauses in rooms of their own. The adapter's
// methods are l's own and those of its Faults and Time rooms (a name two
// of them shared would not compile).
func LabOf(l *lab.Lab) Lab { return rooms{l, l.Faults(), l.Time()} }

// rooms is a *lab.Lab with its Faults and Time rooms' methods promoted.
type rooms struct {
	*lab.Lab
	*lab.Faults
	*lab.Time
}

// Unwrap is the lab itself (the load generator drives it directly).
func (r rooms) Unwrap() *lab.Lab { return r.Lab }
