package load

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// PrintTable writes the final table: one row per store × region.
func PrintTable(w io.Writer, st Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "store\tregion\toffered\tok%\trefused\tstranded\tp50 ms\tp99 ms\treads\tstale\toversold\tSLO\t")
	for _, s := range st.Stores {
		for _, f := range s.Regions {
			slo := "met"
			if !f.SLOMet {
				slo = "MISSED"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%d\t%d\t%.1f\t%.1f\t%d\t%d\t%d\t%s\t\n", s.Store, f.Region, f.Offered, f.Availability,
				f.Refused, f.Stranded, f.P50Ms, f.P99Ms, f.ReadsOffered, f.StaleReads, s.Oversold, slo)
		}
	}
	_ = tw.Flush()
	for _, s := range st.Stores {
		fmt.Fprintf(w, "%s: %s\n", s.Store, s.Verdict)
		if s.Check != nil {
			lin := "linearizable"
			if !s.Check.Linearizable {
				lin = "NOT linearizable"
			}
			fmt.Fprintf(w, "  checker (%d recorded operations on %s): %s\n", s.Check.Operations, s.Check.SKU, lin)
		}
	}
	if len(st.Faults) > 0 {
		var fs []string
		for _, f := range st.Faults {
			fs = append(fs, fmt.Sprintf("%.1fs %s", f.T, f.Detail))
		}
		fmt.Fprintf(w, "faults: %s\n", strings.Join(fs, "; "))
	}
	if st.State != StateFinished {
		fmt.Fprintf(w, "state: %s %s\n", st.State, st.Reason)
	}
}

// WriteCSV writes one row per sample. Columns are only ever added at the
// end (stranded: geo buys among the refused whose only units left were out
// of reach; 0 on the other stores).
func WriteCSV(w io.Writer, samples []Sample) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"t", "store", "region", "offered", "ok", "sold_out", "unavailable", "fail_fast", "conflict", "overloaded", "shed",
		"reads_offered", "reads", "stale_reads", "p50_ms", "p90_ms", "p99_ms", "max_ms", "read_p99_ms", "availability", "sold", "oversold", "in_flight", "stranded"})
	for _, s := range samples {
		f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
		i := func(v int64) string { return strconv.FormatInt(v, 10) }
		_ = cw.Write([]string{f(s.T), s.Store, s.Region, i(s.Offered), i(s.OK), i(s.SoldOut), i(s.Unavailable), i(s.FailFast), i(s.Conflict),
			i(s.Overloaded), i(s.Shed), i(s.ReadsOffered), i(s.Reads), i(s.StaleReads), f(s.P50Ms), f(s.P90Ms), f(s.P99Ms), f(s.MaxMs),
			f(s.ReadP99Ms), f(s.Availability), i(s.Sold), i(s.Oversold), i(s.InFlight), i(s.Stranded)})
	}
	cw.Flush()
	return cw.Error()
}
