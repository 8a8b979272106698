package lab

// Transitional aliases: these names moved to package inventory (issue 20).
// go fix -inline ./... rewrites callers; the vars are rewritten by hand.

import (
	"time"

	"caplab/lab/inventory"
)

//go:fix inline
type Allocation = inventory.Allocation

//go:fix inline
type Clock = inventory.Clock

//go:fix inline
type Consistency = inventory.Consistency

//go:fix inline
type Fault = inventory.Fault

//go:fix inline
type FaultKind = inventory.FaultKind

//go:fix inline
type GapReason = inventory.GapReason

//go:fix inline
type GeoCall = inventory.GeoCall

//go:fix inline
type GeoCallKind = inventory.GeoCallKind

//go:fix inline
type Item = inventory.Item

//go:fix inline
type Kind = inventory.Kind

//go:fix inline
type Op = inventory.Op

//go:fix inline
type Operation = inventory.Operation

//go:fix inline
type Outcome = inventory.Outcome

//go:fix inline
type QuorumState = inventory.QuorumState

//go:fix inline
type RecordingGap = inventory.RecordingGap

//go:fix inline
type Store = inventory.Store

//go:fix inline
type Version = inventory.Version

//go:fix inline
const Conflict = inventory.Conflict

//go:fix inline
const Consensus = inventory.Consensus

//go:fix inline
const FailFast = inventory.FailFast

//go:fix inline
const FaultClock = inventory.FaultClock

//go:fix inline
const FaultCrash = inventory.FaultCrash

//go:fix inline
const FaultCut = inventory.FaultCut

//go:fix inline
const FaultHeal = inventory.FaultHeal

//go:fix inline
const FaultLatency = inventory.FaultLatency

//go:fix inline
const FaultLead = inventory.FaultLead

//go:fix inline
const FaultOutsideWrite = inventory.FaultOutsideWrite

//go:fix inline
const FaultPartition = inventory.FaultPartition

//go:fix inline
const FaultPause = inventory.FaultPause

//go:fix inline
const FaultQuorum = inventory.FaultQuorum

//go:fix inline
const FaultReset = inventory.FaultReset

//go:fix inline
const FaultRestart = inventory.FaultRestart

//go:fix inline
const GapGeoLogFull = inventory.GapGeoLogFull

//go:fix inline
const GapHistoryFull = inventory.GapHistoryFull

//go:fix inline
const GapResumed = inventory.GapResumed

//go:fix inline
const GapSkipped = inventory.GapSkipped

//go:fix inline
const GapTooManySKUs = inventory.GapTooManySKUs

//go:fix inline
const Geo = inventory.Geo

//go:fix inline
const Linearizable = inventory.Linearizable

//go:fix inline
const MaxEcho = inventory.MaxEcho

//go:fix inline
const MaxPause = inventory.MaxPause

//go:fix inline
const MaxStock = inventory.MaxStock

//go:fix inline
const OK = inventory.OK

//go:fix inline
const OpBuy = inventory.OpBuy

//go:fix inline
const OpRead = inventory.OpRead

//go:fix inline
const OpStock = inventory.OpStock

//go:fix inline
const Overloaded = inventory.Overloaded

//go:fix inline
const Replicated = inventory.Replicated

//go:fix inline
const Serializable = inventory.Serializable

//go:fix inline
const SoldOut = inventory.SoldOut

//go:fix inline
const Unavailable = inventory.Unavailable

var (
	ErrBadInput      = inventory.ErrBadInput
	ErrClosed        = inventory.ErrClosed
	ErrConflict      = inventory.ErrConflict
	ErrUnavailable   = inventory.ErrUnavailable
	ErrUnknownRegion = inventory.ErrUnknownRegion
	ErrUnknownStore  = inventory.ErrUnknownStore
	Kinds            = inventory.Kinds
	Stores           = inventory.Stores
)

//go:fix inline
func CheckQty(qty int) error { return inventory.CheckQty(qty) }

//go:fix inline
func CheckSKU(sku string) error { return inventory.CheckSKU(sku) }

//go:fix inline
func Echo(input string) string { return inventory.Echo(input) }

//go:fix inline
func EchoNumber(f float64) string { return inventory.EchoNumber(f) }

//go:fix inline
func GlobalTables(n int) inventory.QuorumState { return inventory.GlobalTables(n) }

//go:fix inline
func Majority(n int) int { return inventory.Majority(n) }

//go:fix inline
func Merge(a inventory.Item, b inventory.Item) inventory.Item { return inventory.Merge(a, b) }

//go:fix inline
func NewClock(region string, now func() time.Time) *inventory.Clock {
	return inventory.NewClock(region, now)
}

//go:fix inline
func Newest(items []inventory.Item) (inventory.Item, []int) { return inventory.Newest(items) }

//go:fix inline
func Overlaps(n int, w int, r int) bool { return inventory.Overlaps(n, w, r) }

//go:fix inline
func ParseStore(name string) (inventory.Store, error) { return inventory.ParseStore(name) }

//go:fix inline
func StrictQuorum(n int) inventory.QuorumState { return inventory.StrictQuorum(n) }

//go:fix inline
func ValidateQuorum(n int, w int, r int) error { return inventory.ValidateQuorum(n, w, r) }
