// Package audit keeps the lab's durable record and turns records into
// exports.
//
//   - Log appends every operation, fault and reset, the recording gaps and
//     the geo store's calls as JSON Lines to files in a directory: no cap,
//     it survives a restart, rotates by size, and commits in groups with a
//     bounded wait. Read reads the files back.
//   - Export and Write write a log, or the in-memory history the lab hands
//     over (Memory), as JSON Lines, porcupine's operation log or a Jepsen
//     EDN history, for checkers outside the lab — with what each verdict
//     is computed from (gaps, geo calls).
//   - ReadHistory reads any of those back (caplab history check), for
//     package check to judge again.
//
// The lab attaches a Log with lab.OpenAudit; audit knows nothing of the
// lab.
package audit
