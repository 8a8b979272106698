// Package load is caplab's Black Friday: an open-loop load generator that
// drives every store of a lab at once with the same arrivals, and the live
// statistics that compare them.
//
// # Arrivals
//
// Each region has a Poisson arrival process of RatePerRegion buys a second
// plus ReadsPerBuy reads for each buy (the brief's 2M reads : 50k writes is
// 40:1). Every arrival picks a SKU — the doorbuster with probability
// DoorbusterShare, else one of SKUs catalogue items by Zipf popularity —
// and is sent to every store under test with the same intended time, so the
// stores are compared on identical traffic.
//
// The generator is open loop: arrivals keep coming when a store stalls, and
// latency is measured from the arrival's intended time, not from when a
// worker got round to sending it. A closed loop of N clients would slow
// down with the store and hide the stall (coordinated omission). In-flight
// operations per (store, region) are bounded by MaxInFlight; an arrival
// beyond that is counted with outcome "shed" — never dropped silently — so
// offered always equals the sum of outcomes once the run has drained.
//
// # Room for the control plane
//
// The lab generates its own load on the cores its page, its API and its
// viewers' stream run on, so the generator paces itself (pace.go): while
// runnable goroutines wait longer than 10 ms for a core (the Go
// scheduler's p99 over 250 ms, from runtime/metrics), fewer arrivals go
// through; the rest are answered "shed" for every store alike, as the
// in-flight cap's are. A load of at most 250 arrivals a second is never
// held back. Config.Pace false turns it off (benchmarks of a lab's limits).
//
// # Statistics and memory
//
// Per (store, region) the run keeps counters by outcome (open-ended
// strings: whatever the lab answers, e.g. ok, sold_out, unavailable,
// fail_fast, conflict, overloaded) and HDR histograms of latency
// (github.com/HdrHistogram/hdrhistogram-go), one for the running second and
// one for the whole run; once a second it cuts a Sample. Per (store, SKU)
// it keeps units stocked and sold, so "sold ≤ stocked" is checked on every
// SKU from aggregates: oversold is the sum over SKUs of sold beyond stocked.
// A read is stale when it shows more units than can be left given the buys
// that had completed before it was sent.
//
// The lab's History (the porcupine checker's input) gets only the
// doorbuster SKU and a fixed sample of SampleSKUs catalogue items; every
// other operation is counted but not recorded, and no load operation is
// published one by one (lab.WithOpRecording). Memory therefore stays flat
// however long a run lasts: a bounded ring of samples, fixed histograms, and
// three integers per (store, SKU).
//
// # Use
//
// A Controller owns at most one Run per lab (web's /api/load, the lessons'
// "load start" and "caplab load" share it): Start, Stop, Status, and
// Subscribe for one Frame a second. Target is what a run drives; LabTarget
// adapts a *lab.Lab (through the very Stock, Buy and Read methods the page
// uses), and a benchmark may drive a no-op Target to measure the generator
// alone.
package load
