package lab

// Transitional aliases: these names moved to package audit (issue 20).
// go fix -inline ./... rewrites callers; the vars are rewritten by hand.

import (
	"io"

	"caplab/lab/audit"
	"caplab/lab/inventory"
)

//go:fix inline
type CheckSubject = audit.CheckSubject

//go:fix inline
type ExportFilter = audit.Filter

//go:fix inline
type ExportFormat = audit.Format

//go:fix inline
type HistoryFile = audit.HistoryFile

//go:fix inline
type AuditLog = audit.Log

//go:fix inline
type AuditOptions = audit.Options

//go:fix inline
type AuditRecord = audit.Record

//go:fix inline
type AuditRecordType = audit.RecordType

//go:fix inline
const ExportEDN = audit.FormatEDN

//go:fix inline
const ExportJSONL = audit.FormatJSONL

//go:fix inline
const ExportPorcupine = audit.FormatPorcupine

//go:fix inline
const MaxHistoryLine = audit.MaxHistoryLine

//go:fix inline
const AuditDropped = audit.RecordDropped

//go:fix inline
const AuditFault = audit.RecordFault

//go:fix inline
const AuditGap = audit.RecordGap

//go:fix inline
const AuditGeoCall = audit.RecordGeoCall

//go:fix inline
const AuditOperation = audit.RecordOperation

//go:fix inline
const AuditReset = audit.RecordReset

//go:fix inline
const AuditStart = audit.RecordStart

//go:fix inline
const AuditStop = audit.RecordStop

var (
	ExportFormats = audit.Formats
)

//go:fix inline
func AuditDir(dataDir string) string { return audit.Dir(dataDir) }

//go:fix inline
func ExportAudit(dir string, w io.Writer, format audit.Format, f audit.Filter) error {
	return audit.Export(dir, w, format, f)
}

//go:fix inline
func OpenAuditLog(dir string, regions []string, opts audit.Options) (*audit.Log, error) {
	return audit.Open(dir, regions, opts)
}

//go:fix inline
func ParseExportFormat(s string) (audit.Format, error) { return audit.ParseFormat(s) }

//go:fix inline
func ReadAuditLog(dir string, fn func(audit.Record) error) error { return audit.Read(dir, fn) }

//go:fix inline
func ReadHistory(r io.Reader, name string, store inventory.Store) (*audit.HistoryFile, error) {
	return audit.ReadHistory(r, name, store)
}
