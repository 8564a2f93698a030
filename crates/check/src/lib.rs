//! # quorate-check: histories and the checkers that judge them
//!
//! A *history* is what clients observed: for every operation, when it was invoked and how it
//! completed (`ok`, `fail`, or `info` when the outcome is unknown). Checkers decide whether
//! some execution of a consistency model could have produced it.
//!
//! - [`history`]: the event format (JSON lines, one event per line) and the pairing of
//!   invocations with completions into [`Operation`](history::Operation)s, with Jepsen's
//!   semantics for `fail` and `info`.
//! - [`model`]: sequential specifications (the KV register per key).
//! - [`linearizability`]: the Wing–Gong search with Lowe's just-in-time linearization and
//!   memoization, decomposed per key (P-compositionality), as Porcupine and Knossos do it.
//! - [`generate`]: seeded histories that are linearizable by construction (benchmarks, tests).
//!
//! Checkers read no clock: a caller that wants a time limit passes a cancellation closure.

pub mod causal;
pub mod convergence;
pub mod edn;
pub mod explain;
pub mod generate;
pub mod history;
pub mod linearizability;
pub mod model;
pub mod report;
pub mod sequential;
pub mod session;

pub use history::{Event, EventKind, HistoryError, OpValue, Operation};
pub use linearizability::{check_linearizable, LinearizabilityReport, Verdict};
pub use report::{check, Model, Report, Validity};
