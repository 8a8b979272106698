// Package history keeps, in memory, what the lab did since its last reset:
//
//   - every operation (History): append-only, lock-free, numbered from 1,
//     at most MaxOperations, decided at each operation's call (Reserve);
//   - every fault and configuration change: at most MaxFaults;
//   - every call the geo store made into a regional Raft group (GeoLog),
//     the records its verdict is computed from: at most MaxGeoCalls;
//   - the gaps in that record (Gaps): per (store, SKU), where writes went
//     unrecorded, so that the checker judges only what a correct store
//     could have produced.
//
// Past a cap it counts what it dropped instead of storing it. Readers copy
// what they need (View, Operations, Select, GeoLog.Calls, Gaps.Snapshot)
// or follow the log with a Cursor that reads only what is new (Since,
// SinceShared). It knows nothing of stores, networks or verdicts.
package history
