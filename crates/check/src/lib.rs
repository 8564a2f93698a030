//! # quorate-check: histories and the checkers that judge them
//!
//! A *history* is what clients observed: for every operation, when it was invoked and how it
//! completed (`ok`, `fail`, or `info` when the outcome is unknown). Checkers decide whether
//! some execution of a consistency model could have produced it.
//!
//! - [`history`]: the event format (JSON lines, one event per line) and the pairing of
//!   invocations with completions into [`Operation`]s, with Jepsen's
//!   semantics for `fail` and `info`; [`edn`]: Jepsen/Knossos EDN histories.
//! - [`model`]: the sequential specification (the KV register per key), compiled over
//!   interned values.
//! - [`linearizability`]: the Wing–Gong search with Lowe's just-in-time linearization and
//!   memoization, decomposed per key (P-compositionality), as Porcupine and Knossos do it;
//!   keys whose written values are unique are decided first in O(n log n) from the
//!   reads-from relation (`unique.rs`), and only the others reach the search.
//! - [`sequential`]: sequential consistency, searched over all keys at once.
//! - [`causal`]: causal consistency for unique-write histories by the bad patterns of
//!   Bouajjani et al.; [`session`]: Terry's four session guarantees.
//! - [`list_append`]: Elle's list-append analysis (version orders from the longest read,
//!   dependency cycles, lost/duplicated/phantom elements) over [`txn`]s.
//! - [`convergence`]: eventual consistency's final agreement, single- and multi-value, from
//!   any history; [`final_reads`]: the same property judged from per-replica final reads, by
//!   each resolver's rules.
//! - [`promise`]: what a system promises (linearizable, ZAB's read modes, quorums,
//!   multi-primary resolvers) and [`judge`], which the simulator and `quorate check` both use;
//!   with [`ordered_reads`] (ZAB's sequential reads) and [`staleness`] (reads measured, not
//!   judged).
//! - [`report`]: one entry point, [`check`], for every [`Model`]; [`explain`]: shrinking a
//!   violation to a small witness, text timelines and SVG.
//! - [`generate`]: seeded histories that are linearizable by construction (benchmarks, tests).
//!
//! The models form a hierarchy on unique-write register histories: linearizable ⇒
//! sequential ⇒ causal ⇔ all four session guarantees together; convergence is a separate,
//! end-state property. Checkers read no clock: a caller that wants a time limit passes a
//! cancellation closure in [`Limits`](linearizability::Limits).

pub mod causal;
pub mod convergence;
pub mod edn;
pub mod expiry;
pub mod explain;
pub mod final_reads;
#[doc(hidden)]
pub mod fuzzing;
pub mod generate;
pub mod history;
pub mod lease;
pub mod linearizability;
pub mod list_append;
pub mod model;
pub mod ordered_reads;
pub mod promise;
pub mod report;
pub mod sequential;
pub mod session;
pub mod staleness;
pub mod txn;
mod unique;

pub use history::{Event, EventKind, HistoryError, Mode, OpValue, Operation};
pub use linearizability::{
    check_linearizable, check_linearizable_search, LinearizabilityReport, Verdict,
};
pub use promise::{judge, Judgement, ModelVerdict, Promise};
pub use report::{check, Model, Report, Validity};
