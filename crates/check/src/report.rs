//! One entry point for every model: [`check`] runs a checker and turns its answer into a
//! [`Report`] with a one-line verdict, explanation lines, and the smallest set of operations
//! found that shows the violation (the *witness*), ready for a text timeline or an SVG.

use crate::causal::check_causal;
use crate::convergence::{check_convergence, ConvergenceViolation};
use crate::explain::{describe, minimize};
use crate::history::{HistoryError, Operation};
use crate::linearizability::{check_linearizable, Limits, Verdict};
use crate::sequential::check_sequential;
use crate::session::{check_session, Guarantees, SessionViolation};

/// The consistency models `quorate check --model` knows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Model {
    Linearizable,
    Sequential,
    Causal,
    /// The session guarantees in the set (all four by default).
    Session(Guarantees),
    Convergence,
    /// Elle's list-append analysis (strict serializability of appends and list reads).
    ListAppend,
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::Linearizable => "linearizable",
            Model::Sequential => "sequential",
            Model::Causal => "causal",
            Model::Session(_) => "session",
            Model::Convergence => "convergence",
            Model::ListAppend => "list-append",
        }
    }

    /// What a valid history is called, e.g. "sequentially consistent".
    fn adjective(self) -> &'static str {
        match self {
            Model::Linearizable => "linearizable",
            Model::Sequential => "sequentially consistent",
            Model::Causal => "causally consistent",
            Model::Session(_) => "satisfies the session guarantees",
            Model::Convergence => "converged",
            Model::ListAppend => "strict serializable (list-append)",
        }
    }
}

/// A verdict for any model.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Validity {
    Valid,
    Invalid,
    /// The check was stopped (time limit, memory bound) or had nothing to judge.
    Unknown,
}

impl From<Verdict> for Validity {
    fn from(verdict: Verdict) -> Validity {
        match verdict {
            Verdict::Linearizable => Validity::Valid,
            Verdict::NotLinearizable => Validity::Invalid,
            Verdict::Unknown => Validity::Unknown,
        }
    }
}

/// The answer of [`check`].
#[derive(Clone, Debug)]
pub struct Report {
    pub model: Model,
    pub validity: Validity,
    /// One line: the verdict and, for a violation, what kind.
    pub headline: String,
    /// Explanation lines (what was found, and why it cannot be ordered).
    pub details: Vec<String>,
    /// Operation ids: the smallest set found that still violates the model.
    pub witness: Vec<usize>,
    /// The key a per-key violation is on.
    pub key: Option<String>,
}

/// How many checks shrinking a witness may spend.
const SHRINK_CHECKS_MAX: usize = 400;

/// Checks `operations` against `model`; `Err` when the history cannot be judged by this model
/// (naming the line), which callers treat as bad input.
pub fn check(
    model: Model,
    operations: &[Operation],
    limits: &Limits,
) -> Result<Report, HistoryError> {
    let mut report = match model {
        Model::Linearizable => linearizable(operations, limits),
        Model::Sequential => sequential(operations, limits),
        Model::Causal => causal(operations, limits)?,
        Model::Session(wanted) => session(operations, wanted, limits)?,
        Model::Convergence => convergence(operations)?,
        Model::ListAppend => crate::list_append::report(operations)?,
    };
    if report.headline.is_empty() {
        report.headline = match report.validity {
            Validity::Valid => model.adjective().to_string(),
            Validity::Invalid => format!("not {}", model.adjective()),
            Validity::Unknown => "unknown".into(),
        };
    }
    Ok(report)
}

fn report(model: Model, verdict: Verdict, reason: Option<String>) -> Report {
    let validity = Validity::from(verdict);
    Report {
        model,
        validity,
        headline: match (&reason, validity) {
            (Some(reason), Validity::Unknown) => format!("unknown: {reason}"),
            _ => String::new(),
        },
        details: Vec::new(),
        witness: Vec::new(),
        key: None,
    }
}

/// Shrinks a violating subset of `operations` (ids in `scope`) with `violates`.
fn shrink(
    operations: &[Operation],
    scope: impl Fn(&Operation) -> bool,
    limits: &Limits,
    violates: impl Fn(&[Operation], &Limits) -> bool,
) -> Vec<usize> {
    let subset: Vec<Operation> = operations.iter().filter(|o| scope(o)).cloned().collect();
    let inner = Limits {
        memo_bytes_max: limits.memo_bytes_max,
        cancelled: limits.cancelled,
    };
    let mut check = |ops: &[Operation]| !(limits.cancelled)() && violates(ops, &inner);
    minimize(&subset, &mut check, SHRINK_CHECKS_MAX)
        .iter()
        .map(|o| o.id)
        .collect()
}

fn linearizable(operations: &[Operation], limits: &Limits) -> Report {
    let found = check_linearizable(operations, limits);
    let mut out = report(Model::Linearizable, found.verdict, found.reason.clone());
    if found.verdict != Verdict::NotLinearizable {
        return out;
    }
    let key = found.key.clone();
    out.headline = match &key {
        Some(key) => format!("not linearizable: key {key:?} has no linearization"),
        None => "not linearizable: the register has no linearization".into(),
    };
    let by_id = |id: usize| {
        operations
            .iter()
            .find(|o| o.id == id)
            .expect("a reported id")
    };
    if let Some(stuck) = found.stuck {
        out.details.push(format!(
            "after linearizing {} operations, #{} ({}) returned before it could take effect",
            found.linearized.len(),
            stuck,
            describe(by_id(stuck))
        ));
    }
    out.witness = shrink(
        operations,
        |o| o.key == key,
        limits,
        |ops, limits| check_linearizable(ops, limits).verdict == Verdict::NotLinearizable,
    );
    out.details.push(format!(
        "these {} operations cannot be linearized together (smallest set found):",
        out.witness.len()
    ));
    out.key = key;
    out
}

fn sequential(operations: &[Operation], limits: &Limits) -> Report {
    let found = check_sequential(operations, limits);
    let mut out = report(Model::Sequential, found.verdict, found.reason.clone());
    if found.verdict != Verdict::NotLinearizable {
        return out;
    }
    if found.not_causal {
        out.details.push(format!(
            "not even causally consistent, so no total order respects every process's order; \
             causal path: {}",
            found
                .blocked
                .iter()
                .map(|id| format!("#{id}"))
                .collect::<Vec<_>>()
                .join(" → ")
        ));
        out.witness = found.blocked;
        return out;
    }
    out.details.push(format!(
        "no total order respects every process's order: the deepest attempt ordered {} \
         operations, then no process's next operation was legal",
        found.ordered.len()
    ));
    out.witness = shrink(
        operations,
        |_| true,
        limits,
        |ops, limits| check_sequential(ops, limits).verdict == Verdict::NotLinearizable,
    );
    out.details.push(format!(
        "these {} operations cannot be ordered together (smallest set found):",
        out.witness.len()
    ));
    out
}

fn causal(operations: &[Operation], limits: &Limits) -> Result<Report, HistoryError> {
    let found = check_causal(operations, limits)?;
    let mut out = report(Model::Causal, found.verdict, found.reason.clone());
    if let Some(pattern) = &found.pattern {
        out.headline = format!("not causally consistent: {}", pattern.describe());
        out.details.push(format!(
            "causal path (each operation precedes the next in session order or reads from it): {}",
            found
                .witness
                .iter()
                .map(|id| format!("#{id}"))
                .collect::<Vec<_>>()
                .join(" → ")
        ));
        out.witness = found.witness;
    }
    Ok(out)
}

fn session(
    operations: &[Operation],
    wanted: Guarantees,
    limits: &Limits,
) -> Result<Report, HistoryError> {
    let found = check_session(operations, wanted, limits)?;
    let mut out = report(Model::Session(wanted), found.verdict, found.reason.clone());
    let Some(violation) = &found.violation else {
        return Ok(out);
    };
    let names = |set: &Vec<crate::session::Guarantee>| {
        set.iter().map(|g| g.name()).collect::<Vec<_>>().join(" + ")
    };
    let culprits: Vec<String> = found.culprits.iter().map(names).collect();
    out.headline = format!(
        "violates {}",
        if culprits.is_empty() {
            "the session guarantees".into()
        } else {
            culprits.join(", and also ")
        }
    );
    out.details.push(match violation {
        SessionViolation::ThinAir { read } => {
            format!("read #{read} returned a value no write wrote")
        }
        SessionViolation::CyclicPrecedence { write } => {
            format!("write #{write} would have to be ordered before itself")
        }
        SessionViolation::MissedWrite { read, write } => {
            format!("read #{read} returned nothing although write #{write} must be visible to it")
        }
        SessionViolation::StaleRead {
            read,
            returned,
            newer,
        } => format!(
            "read #{read} returned #{returned}'s value although #{newer}, which must be ordered \
             after #{returned}, is visible to it"
        ),
    });
    out.witness = violation.operations();
    Ok(out)
}

fn convergence(operations: &[Operation]) -> Result<Report, HistoryError> {
    let found = check_convergence(operations)?;
    let mut out = report(Model::Convergence, found.verdict, found.reason.clone());
    let checked = format!(
        "{} keys checked, {} keys without final reads",
        found.keys_checked, found.keys_unchecked
    );
    out.key = found.key.clone();
    let Some(violation) = &found.violation else {
        if found.verdict == Verdict::Linearizable {
            out.headline = format!("converged: {checked}");
        }
        return Ok(out);
    };
    let key = found.key.as_deref().unwrap_or("-");
    out.headline = format!("not converged on key {key}");
    out.details.push(match violation {
        ConvergenceViolation::Disagree { reads } => {
            format!("final reads disagree: {}", ids(reads))
        }
        ConvergenceViolation::Superseded { read, write, by } => format!(
            "final read #{read} returned #{write}'s value, but #{by} had superseded it \
             (its session saw #{write} before writing): an acknowledged write was lost"
        ),
        ConvergenceViolation::LostWrite { read, write } => format!(
            "final read #{read} returned nothing, but write #{write} happened and nothing superseded it"
        ),
        ConvergenceViolation::ThinAir { read } => {
            format!("final read #{read} returned a value no write wrote")
        }
        ConvergenceViolation::WrongSiblings { read, expected, got, .. } => format!(
            "final read #{read} returned siblings {{{}}} but the concurrent writes are {{{}}}",
            got.join(", "),
            expected.join(", ")
        ),
    });
    out.details.push(checked);
    out.witness = violation.operations();
    Ok(out)
}

fn ids(ops: &[usize]) -> String {
    ops.iter()
        .map(|id| format!("#{id}"))
        .collect::<Vec<_>>()
        .join(", ")
}
