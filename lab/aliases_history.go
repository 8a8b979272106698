package lab

// Transitional aliases: these names moved to package history (issue 20).
// go fix -inline ./... rewrites callers; the vars are rewritten by hand.

import "caplab/lab/history"

//go:fix inline
type HistoryCursor = history.Cursor

//go:fix inline
type History = history.History

//go:fix inline
type HistoryView = history.View

//go:fix inline
const MaxHistoryFaults = history.MaxFaults

//go:fix inline
const MaxHistoryOperations = history.MaxOperations

//go:fix inline
func NewHistory() *history.History { return history.New() }
