package lab

// Transitional aliases: these names moved to package check (issue 20).
// go fix -inline ./... rewrites callers; the vars are rewritten by hand.

import (
	"io"
	"time"

	"github.com/anishathalye/porcupine"

	"caplab/lab/check"
	"caplab/lab/inventory"
)

//go:fix inline
type Anomaly = check.Anomaly

//go:fix inline
type CheckCut = check.Cut

//go:fix inline
type GeoAudit = check.GeoConservation

//go:fix inline
type GeoLinearizability = check.GeoLinearizability

//go:fix inline
type GeoCheck = check.GeoResult

//go:fix inline
type GeoRowState = check.GeoRow

//go:fix inline
type PorcupineGeoCall = check.PorcupineGeoCall

//go:fix inline
type PorcupineGeoIn = check.PorcupineGeoIn

//go:fix inline
type PorcupineInput = check.PorcupineInput

//go:fix inline
type PorcupineOperation = check.PorcupineOperation

//go:fix inline
type PorcupineOutput = check.PorcupineOutput

//go:fix inline
type Recorded = check.Recorded

//go:fix inline
type CheckResult = check.Result

//go:fix inline
type Unplaced = check.Unplaced

//go:fix inline
const AnomalyDoubleSale = check.AnomalyDoubleSale

//go:fix inline
const AnomalyLostUpdate = check.AnomalyLostUpdate

//go:fix inline
const AnomalyOrder = check.AnomalyOrder

//go:fix inline
const AnomalySoldOutInStock = check.AnomalySoldOutInStock

//go:fix inline
const AnomalyStaleRead = check.AnomalyStaleRead

//go:fix inline
const AnomalyVanished = check.AnomalyVanished

//go:fix inline
const CheckTimeout = check.Timeout

//go:fix inline
const VisualizeTimeout = check.VisualizeTimeout

//go:fix inline
func Judge(rec check.Recorded, store inventory.Store, sku string, timeout time.Duration) check.Result {
	return check.Judge(rec, store, sku, timeout)
}

//go:fix inline
func Check(ops []inventory.Operation, store inventory.Store, sku string, timeout time.Duration) (check.Result, porcupine.LinearizationInfo) {
	return check.Operations(ops, store, sku, timeout)
}

//go:fix inline
func Visualize(ops []inventory.Operation, store inventory.Store, sku string, w io.Writer) error {
	return check.Visualize(ops, store, sku, w)
}

//go:fix inline
func VisualizeRecorded(rec check.Recorded, store inventory.Store, sku string, w io.Writer) error {
	return check.VisualizeRecorded(rec, store, sku, w)
}
