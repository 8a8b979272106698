package web

import (
	"slices"
	"strings"

	"caplab/lab/inventory"
)

// --- validation: everything the API defines is checked before the lab is
// called, so nothing is half-applied.

func (s *Server) region(name string) error {
	regions := s.lab.Regions()
	if name == "" {
		return badRequest("Say which region, e.g. \"region\": %q (regions: %s).", first(regions), strings.Join(regions, ", "))
	}
	if !slices.Contains(regions, name) {
		return notFound("region %s is not in this lab (regions: %s)", inventory.Echo(name), strings.Join(regions, ", "))
	}
	return nil
}

func parseStore(name string) (inventory.Store, error) {
	st := inventory.Store(name)
	if !slices.Contains(inventory.Stores, st) {
		names := make([]string, len(inventory.Stores))
		for i, x := range inventory.Stores {
			names[i] = string(x)
		}
		return "", notFound("store %s is not in this lab (stores: %s)", inventory.Echo(name), strings.Join(names, ", "))
	}
	return st, nil
}

func checkSKU(sku string) error {
	if !inventory.ValidSKU(sku) {
		return badRequest("SKU %s is not valid: use 1 to 64 letters, digits, '.', '_' or '-', e.g. IPHONE-15-PRO.", inventory.Echo(sku))
	}
	return nil
}

func checkQty(field string, q *int, lo, hi int) error {
	if q == nil {
		return badRequest("Say how many: %q is missing (a whole number from %d to %d).", field, lo, hi)
	}
	if *q < lo || *q > hi {
		return badRequest("%q must be a whole number from %d to %d, not %d.", field, lo, hi, *q)
	}
	return nil
}

func (s *Server) checkPair(from, to string) error {
	if from != to && (s.lab.Faults().IsZone(from) || s.lab.Faults().IsZone(to)) {
		return nil // a zone link: the lab checks both zones (geo issue)
	}
	if err := s.region(from); err != nil {
		return err
	}
	if err := s.region(to); err != nil {
		return err
	}
	if from == to {
		return badRequest("A link joins two different regions; from and to are both %s.", inventory.Echo(from))
	}
	return nil
}

// checkGroups verifies that groups cover every region exactly once.
func (s *Server) checkGroups(groups [][]string) error {
	regions := s.lab.Regions()
	if len(groups) == 0 {
		return badRequest("Say how to split the regions, e.g. {\"groups\":[[%q],[...]]}; every region in exactly one group.", first(regions))
	}
	seen := map[string]int{}
	for i, g := range groups {
		if len(g) == 0 {
			return badRequest("Group %d is empty; every group needs at least one region.", i+1)
		}
		for _, name := range g {
			if err := s.region(name); err != nil {
				return err
			}
			if j, dup := seen[name]; dup {
				if j == i {
					return badRequest("Region %s appears twice in group %d; put every region in exactly one group.", inventory.Echo(name), i+1)
				}
				return badRequest("Region %s is in group %d and group %d; put every region in exactly one group.", inventory.Echo(name), j+1, i+1)
			}
			seen[name] = i
		}
	}
	var missing []string
	for _, name := range regions {
		if _, ok := seen[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return badRequest("Every region must be in a group; missing: %s.", strings.Join(missing, ", "))
	}
	return nil
}

func first(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	return xs[0]
}

func joinComma(xs []string) string { return strings.Join(xs, ", ") }

func joinOr(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}
