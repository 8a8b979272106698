package load

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"caplab/lab/inventory"
)

// Limits of a load's configuration.
const (
	MaxRatePerRegion = 100_000            // buys a second in one region
	MaxOpsPerSecond  = 2_000_000          // arrivals a second, all regions, reads included, times stores
	MaxReadsPerBuy   = 1000               // the mix
	MaxSKUs          = 100_000            // catalogue size (each is stocked in every store before the run)
	MaxStock         = inventory.MaxStock // units per SKU
	MaxDuration      = 24 * time.Hour
	MaxInFlightLimit = 100_000 // per (store, region)
	MaxSampleSKUs    = 64
	MaxSLOMs         = 60_000
)

// Defaults of a load's configuration.
const (
	DefaultRate            = 20 // buys a second per region
	DefaultReadsPerBuy     = 40
	DefaultSKUs            = 1000
	DefaultZipf            = 1.1
	DefaultDoorbuster      = "IPHONE-15-PRO"
	DefaultDoorbusterShare = 0.05
	DefaultStock           = 100
	DefaultDuration        = 60 * time.Second
	DefaultSLOMs           = 150
	DefaultMaxInFlight     = 10_000
	DefaultSampleSKUs      = 4
	DefaultConsistency     = "serializable"
)

// ErrBadConfig wraps every configuration error; the message names the field.
var ErrBadConfig = errors.New("bad load configuration")

// Duration is a time.Duration that reads and writes as a Go duration
// string ("60s", "2m30s"); a JSON number is read as seconds.
type Duration time.Duration

// MarshalJSON writes "60s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "60s" or 60.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as \"60s\" or \"2m\"", s)
		}
		*d = Duration(v)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e9 {
		return fmt.Errorf("must be a duration such as \"60s\"")
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// Config describes one load. Every field is optional; Normalize fills in
// defaults and checks ranges. The JSON names are API.md's.
type Config struct {
	// Rate is the buys a second in every region not named in RatePerRegion.
	Rate float64 `json:"rate,omitempty"`
	// RatePerRegion sets buys a second per region; a region left out gets
	// Rate. Arrivals per region are Rate × (1 + ReadsPerBuy).
	RatePerRegion map[string]float64 `json:"ratePerRegion,omitempty"`
	// ReadsPerBuy is the read:buy mix (default 40; 0 = buys only).
	ReadsPerBuy *float64 `json:"readsPerBuy,omitempty"`
	// Consistency of the consensus store's reads: serializable (default,
	// read from the region's own member), linearizable, or cached (the
	// region's watch-fed cache in memory; the other stores read their own
	// way whatever this says).
	Consistency string `json:"consistency,omitempty"`
	// SKUs is the catalogue size besides the doorbuster (default 1000).
	SKUs int `json:"skus,omitempty"`
	// Zipf is the popularity exponent s > 1 (default 1.1).
	Zipf float64 `json:"zipf,omitempty"`
	// Doorbuster is the SKU everyone wants; DoorbusterShare of arrivals
	// go to it (default 0.05).
	Doorbuster      string   `json:"doorbuster,omitempty"`
	DoorbusterShare *float64 `json:"doorbusterShare,omitempty"`
	// Stock is the units of every SKU (default 100); DoorbusterStock of
	// the doorbuster (default Stock).
	Stock           *int `json:"stock,omitempty"`
	DoorbusterStock *int `json:"doorbusterStock,omitempty"`
	// RestockEvery, when set, sets the doorbuster and the RestockTop most
	// popular SKUs back to their stock that often.
	RestockEvery Duration `json:"restockEvery,omitempty"`
	RestockTop   int      `json:"restockTop,omitempty"`
	// Stores to drive (default: every store of the lab, at once).
	Stores []string `json:"stores,omitempty"`
	// Duration of the run (default 60s).
	Duration Duration `json:"duration,omitempty"`
	// SLOP99Ms is the latency objective: p99 below it (default 150).
	SLOP99Ms float64 `json:"sloP99Ms,omitempty"`
	// MaxInFlight bounds operations in flight per (store, region)
	// (default 10,000); arrivals beyond it are counted as "shed".
	MaxInFlight int `json:"maxInFlight,omitempty"`
	// SampleSKUs is how many catalogue SKUs besides the doorbuster go to
	// the lab's history for the linearizability check (default 4, or
	// SKUs when the catalogue is smaller).
	SampleSKUs *int `json:"sampleSKUs,omitempty"`
	// Seed makes the arrivals reproducible (0: random).
	Seed uint64 `json:"seed,omitempty"`
	// Pace (default true) keeps room for the lab's own control plane:
	// while the machine's cores are too busy for it, arrivals beyond what
	// it takes are held back at the source and counted as shed (pace.go).
	// false sends every arrival, for measuring how far a lab goes.
	Pace *bool `json:"pace,omitempty"`
}

// Normalize returns c with every default filled in, or an error wrapping
// ErrBadConfig that names the bad field. regions and stores are the lab's.
func (c Config) Normalize(regions, stores []string) (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, args...))
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if !(c.Rate > 0) || c.Rate > MaxRatePerRegion {
		return bad("\"rate\" must be more than 0 and at most %d buys a second per region (got %v)", MaxRatePerRegion, c.Rate)
	}
	rates := map[string]float64{}
	for r, v := range c.RatePerRegion {
		if !slices.Contains(regions, r) {
			return bad("\"ratePerRegion\": region '%s' is not in this lab (regions: %s)", r, strings.Join(regions, ", "))
		}
		if !(v > 0) || v > MaxRatePerRegion || math.IsInf(v, 0) {
			return bad("\"ratePerRegion\".%s must be more than 0 and at most %d buys a second (got %v)", r, MaxRatePerRegion, v)
		}
		rates[r] = v
	}
	for _, r := range regions {
		if _, ok := rates[r]; !ok {
			rates[r] = c.Rate
		}
	}
	c.RatePerRegion = rates
	if c.ReadsPerBuy == nil {
		c.ReadsPerBuy = ptr(float64(DefaultReadsPerBuy))
	}
	if m := *c.ReadsPerBuy; !(m >= 0) || m > MaxReadsPerBuy {
		return bad("\"readsPerBuy\" must be from 0 to %d reads per buy (got %v)", MaxReadsPerBuy, m)
	}
	switch c.Consistency {
	case "":
		c.Consistency = DefaultConsistency
	case "serializable", "linearizable", "cached":
	default:
		return bad("\"consistency\" must be serializable, linearizable or cached (got %q)", c.Consistency)
	}
	if c.SKUs == 0 {
		c.SKUs = DefaultSKUs
	}
	if c.SKUs < 1 || c.SKUs > MaxSKUs {
		return bad("\"skus\" must be from 1 to %d (got %d)", MaxSKUs, c.SKUs)
	}
	if c.Zipf == 0 {
		c.Zipf = DefaultZipf
	}
	if !(c.Zipf > 1) || c.Zipf > 5 {
		return bad("\"zipf\" must be more than 1 and at most 5 (got %v)", c.Zipf)
	}
	if c.Doorbuster == "" {
		c.Doorbuster = DefaultDoorbuster
	}
	if !inventory.ValidSKU(c.Doorbuster) {
		return bad("\"doorbuster\" %q must be 1 to 64 letters, digits, '.', '_' or '-'", c.Doorbuster)
	}
	if strings.HasPrefix(c.Doorbuster, catalogPrefix) {
		return bad("\"doorbuster\" %q must not start with %q (the catalogue's names)", c.Doorbuster, catalogPrefix)
	}
	if c.DoorbusterShare == nil {
		c.DoorbusterShare = ptr(DefaultDoorbusterShare)
	}
	if s := *c.DoorbusterShare; !(s >= 0) || s > 1 {
		return bad("\"doorbusterShare\" must be from 0 to 1 (got %v)", s)
	}
	if c.Stock == nil {
		c.Stock = ptr(DefaultStock)
	}
	if *c.Stock < 0 || *c.Stock > MaxStock {
		return bad("\"stock\" must be from 0 to %d units (got %d)", MaxStock, *c.Stock)
	}
	if c.DoorbusterStock == nil {
		c.DoorbusterStock = ptr(*c.Stock)
	}
	if *c.DoorbusterStock < 0 || *c.DoorbusterStock > MaxStock {
		return bad("\"doorbusterStock\" must be from 0 to %d units (got %d)", MaxStock, *c.DoorbusterStock)
	}
	if c.RestockEvery < 0 || (c.RestockEvery > 0 && time.Duration(c.RestockEvery) < 100*time.Millisecond) {
		return bad("\"restockEvery\" must be at least 100ms, or empty for no restocks (got %v)", time.Duration(c.RestockEvery))
	}
	if c.RestockTop < 0 || c.RestockTop > 1000 {
		return bad("\"restockTop\" must be from 0 to 1000 (got %d)", c.RestockTop)
	}
	if len(c.Stores) == 0 {
		c.Stores = slices.Clone(stores)
	}
	seen := map[string]bool{}
	for _, s := range c.Stores {
		if !slices.Contains(stores, s) {
			return bad("\"stores\": store '%s' is not in this lab (stores: %s)", s, strings.Join(stores, ", "))
		}
		if seen[s] {
			return bad("\"stores\": store '%s' is named twice", s)
		}
		seen[s] = true
	}
	if c.Duration == 0 {
		c.Duration = Duration(DefaultDuration)
	}
	if c.Duration < Duration(time.Second) || c.Duration > Duration(MaxDuration) {
		return bad("\"duration\" must be from 1s to %v (got %v)", MaxDuration, time.Duration(c.Duration))
	}
	if c.SLOP99Ms == 0 {
		c.SLOP99Ms = DefaultSLOMs
	}
	if !(c.SLOP99Ms > 0) || c.SLOP99Ms > MaxSLOMs {
		return bad("\"sloP99Ms\" must be more than 0 and at most %d ms (got %v)", MaxSLOMs, c.SLOP99Ms)
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > MaxInFlightLimit {
		return bad("\"maxInFlight\" must be from 1 to %d (got %d)", MaxInFlightLimit, c.MaxInFlight)
	}
	if c.SampleSKUs == nil { // the default follows a smaller catalogue: --skus 3 samples all 3
		c.SampleSKUs = ptr(min(DefaultSampleSKUs, c.SKUs))
	}
	if *c.SampleSKUs < 0 || *c.SampleSKUs > MaxSampleSKUs || *c.SampleSKUs > c.SKUs {
		return bad("\"sampleSKUs\" must be from 0 to %d and at most \"skus\" (got %d)", MaxSampleSKUs, *c.SampleSKUs)
	}
	if c.Pace == nil {
		c.Pace = ptr(true)
	}
	if total := c.OpsPerSecond() * float64(len(c.Stores)); total > MaxOpsPerSecond {
		return bad("\"rate\" × (1 + \"readsPerBuy\") × regions × stores is %.0f operations a second, more than this lab's limit of %d; lower the rate or the mix", total, MaxOpsPerSecond)
	}
	return c, nil
}

// OpsPerSecond is the arrivals a second over every region (buys and reads),
// per store.
func (c Config) OpsPerSecond() float64 {
	mix := 0.0
	if c.ReadsPerBuy != nil {
		mix = *c.ReadsPerBuy
	}
	sum := 0.0
	for _, v := range c.RatePerRegion {
		sum += v
	}
	return sum * (1 + mix)
}

func ptr[T any](v T) *T { return &v }
