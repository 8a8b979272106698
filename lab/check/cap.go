package check

import (
	"fmt"

	"caplab/lab/inventory"
)

// noteCap tells a verdict that the in-memory history is full: the checker
// then judged only the operations recorded before the cap
// (inventory.MaxHistoryOperations), and says so in Unjudged and the explanation.
// The audit log (OpenAudit) keeps every operation past the cap.
func noteCap(res *Result, dropped int) {
	if dropped <= 0 {
		return
	}
	res.Unjudged = dropped
	note := fmt.Sprintf("The lab's history is full: this verdict judges only the first %s operations recorded since the last reset; %s later (every store and SKU) were not kept and not judged. Reset the lab to start a fresh history.",
		thousands(inventory.MaxHistoryOperations), thousands(dropped)+" "+checkPlural(dropped, "operation", "operations"))
	if res.Explanation == "" {
		res.Explanation = note
	} else {
		res.Explanation += " " + note
	}
}

// thousands writes n with commas: 100,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
