package web

import (
	"caplab/lab"
	"caplab/lab/inventory"
)

// What the API says with an operation or fault: its words (lab.Say,
// lab.SayFault), the one source of outcome sentences for live frames, the
// history and API answers alike (doc.go, "Story mode").

// saidOutcome is an Outcome with its words, as operation frames and the
// history carry them.
type saidOutcome struct {
	inventory.Outcome
	Said lab.Words `json:"said"`
}

// saidFault is a recorded fault with its sentence.
type saidFault struct {
	inventory.Fault
	Said lab.Words `json:"said"`
}

// saidOperation is a recorded operation with its words: what GET
// /api/history answers, so a page that reads the history shows the
// sentences a live page showed.
type saidOperation struct {
	inventory.Operation
	Said lab.Words `json:"said"`
}
