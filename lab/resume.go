package lab

import (
	"encoding/json"
	"fmt"

	"caplab/lab/store"
	"caplab/nodes"
)

// A lab started again on the data directory of an earlier run (see
// nodes' LayoutFile) must read its stores where that run wrote them: keys
// live under a reset epoch (consensusStore.key; the geo store's rows and
// transfers in every regional group too), so the epochs are kept
// beside the data as a note and read back at start.

const epochsNote = "lab-epochs"

type epochs struct {
	Consensus  int64 `json:"consensus"`
	Replicated int64 `json:"replicated"`
	Geo        int64 `json:"geo"` // absent in a note older than the geo store: 0
}

// loadEpochs sets the stores' epochs to those the earlier run on this
// data directory last used (nothing for new data).
func loadEpochs(cl *nodes.Cluster, consensus, replicated, geo store.Store) error {
	raw, err := cl.LoadNote(epochsNote)
	if err != nil || raw == nil {
		return err
	}
	var e epochs
	if err := json.Unmarshal(raw, &e); err != nil {
		return fmt.Errorf("the data dir's %s note is damaged (%v): move the directory away or start with another data dir", epochsNote, err)
	}
	consensus.SetEpoch(e.Consensus)
	replicated.SetEpoch(e.Replicated)
	geo.SetEpoch(e.Geo)
	return nil
}

// saveEpochs records the stores' epochs (after a reset moved them).
func saveEpochs(cl *nodes.Cluster, consensus, replicated, geo store.Store) error {
	raw, _ := json.Marshal(epochs{Consensus: consensus.Epoch(), Replicated: replicated.Epoch(), Geo: geo.Epoch()})
	return cl.SaveNote(epochsNote, raw)
}
