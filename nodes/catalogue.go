package nodes

import (
	"fmt"
	"math"
	"strings"
)

// Place is a region of the catalogue: an AWS region name, the city it
// stands for and where it is.
type Place struct {
	Name string
	City string
	Lat  float64
	Lon  float64
}

// catalogue holds every region a lab can have, in the order a lab with N
// regions takes them.
var catalogue = []Place{
	{"us-east-1", "N. Virginia", 38.95, -77.45},
	{"eu-west-1", "Ireland", 53.35, -6.26},
	{"ap-southeast-1", "Singapore", 1.35, 103.82},
	{"us-west-2", "Oregon", 45.84, -119.70},
	{"eu-central-1", "Frankfurt", 50.11, 8.68},
	{"ap-northeast-1", "Tokyo", 35.68, 139.69},
	{"sa-east-1", "São Paulo", -23.55, -46.63},
}

// measuredRTT is the mean ping between AWS regions, in ms (ETCD-NOTES.md).
var measuredRTT = map[[2]string]float64{
	{"us-east-1", "eu-west-1"}:           76,
	{"us-east-1", "ap-southeast-1"}:      227,
	{"eu-west-1", "ap-southeast-1"}:      175,
	{"us-east-1", "us-west-2"}:           72,
	{"us-east-1", "eu-central-1"}:        88,
	{"us-east-1", "ap-northeast-1"}:      153,
	{"us-east-1", "sa-east-1"}:           141,
	{"eu-west-1", "eu-central-1"}:        25,
	{"eu-central-1", "ap-southeast-1"}:   171,
	{"us-west-2", "ap-northeast-1"}:      100,
	{"ap-southeast-1", "ap-northeast-1"}: 72,
	{"ap-southeast-1", "sa-east-1"}:      341,
}

// DefaultRegions are the regions of a lab started without a choice.
var DefaultRegions = []string{"us-east-1", "eu-west-1", "ap-southeast-1"}

// MaxRegions is the size of the catalogue.
const MaxRegions = 7

// Catalogue returns every region caplab knows, in catalogue order.
func Catalogue() []Place { return append([]Place(nil), catalogue...) }

// Lookup returns the catalogue entry of a region name.
func Lookup(name string) (Place, bool) {
	for _, p := range catalogue {
		if p.Name == name {
			return p, true
		}
	}
	return Place{}, false
}

// CatalogueNames lists the names of the catalogue.
func CatalogueNames() []string {
	names := make([]string, len(catalogue))
	for i, p := range catalogue {
		names[i] = p.Name
	}
	return names
}

// FirstRegions returns the first n regions of the catalogue.
func FirstRegions(n int) ([]string, error) {
	if n < 1 || n > MaxRegions {
		return nil, fmt.Errorf("nodes: a lab has 1 to %d regions (asked for %d)", MaxRegions, n)
	}
	return CatalogueNames()[:n], nil
}

// ModelRTT is the round-trip time between two regions in ms at latency
// scale 1, and whether it was measured (false: estimated from great-circle
// distance as 2 × distance / 200,000 km/s × 1.5 for fibre routes).
func ModelRTT(a, b string) (ms float64, measured bool) {
	if a == b {
		return 0, true
	}
	if v, ok := measuredRTT[[2]string{a, b}]; ok {
		return v, true
	}
	if v, ok := measuredRTT[[2]string{b, a}]; ok {
		return v, true
	}
	pa, oka := Lookup(a)
	pb, okb := Lookup(b)
	if !oka || !okb {
		return 0, false
	}
	return math.Round(2 * greatCircleKm(pa, pb) / 200_000 * 1000 * 1.5), false
}

// greatCircleKm is the haversine distance between two places.
func greatCircleKm(a, b Place) float64 {
	const earthKm = 6371.0
	rad := math.Pi / 180
	dLat := (b.Lat - a.Lat) * rad
	dLon := (b.Lon - a.Lon) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthKm * math.Asin(math.Sqrt(h))
}

// validateRegions checks a lab's region list: known, distinct, 1..7.
func validateRegions(names []string) error {
	if len(names) < 1 || len(names) > MaxRegions {
		return fmt.Errorf("nodes: a lab has 1 to %d regions (got %d)", MaxRegions, len(names))
	}
	seen := map[string]bool{}
	for _, n := range names {
		if _, ok := Lookup(n); !ok {
			return fmt.Errorf("nodes: region %q is not in the catalogue (known: %s)", n, strings.Join(CatalogueNames(), ", "))
		}
		if seen[n] {
			return fmt.Errorf("nodes: region %q is listed twice", n)
		}
		seen[n] = true
	}
	return nil
}
