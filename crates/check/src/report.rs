//! One entry point for every model: [`check`] runs a checker and turns its answer into a
//! [`Report`] with a one-line verdict, explanation lines, and the smallest set of operations
//! found that shows the violation (the *witness*), ready for a text timeline or an SVG.

use crate::causal::check_causal;
use crate::convergence::{check_convergence, ConvergenceViolation};
use crate::explain::{describe, minimize};
use crate::history::{HistoryError, Operation};
use crate::linearizability::{
    check_linearizable, check_linearizable_search, Limits, LinearizabilityReport, Verdict,
};
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

/// What [`check_with`] does beyond deciding the verdict.
pub struct Options<'a> {
    /// Polled while shrinking a witness, which starts only once the verdict is known: true
    /// stops shrinking and keeps the smallest witness found so far. Shrinking never changes
    /// the verdict or the key a violation is reported on.
    pub shrink_cancelled: &'a dyn Fn() -> bool,
    /// Called once, as soon as the verdict (and the headline) is known, before shrinking.
    pub on_verdict: &'a dyn Fn(&Report),
    /// Linearizability by the search alone, without the unique-value fast path (a baseline).
    pub search_only: bool,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            shrink_cancelled: &|| false,
            on_verdict: &|_| {},
            search_only: false,
        }
    }
}

/// Checks `operations` against `model`; `Err` when the history cannot be judged by this model
/// (naming the line), which callers treat as bad input.
pub fn check(
    model: Model,
    operations: &[Operation],
    limits: &Limits,
) -> Result<Report, HistoryError> {
    check_with(model, operations, limits, &Options::default())
}

/// [`check`] with [`Options`]: a separate budget for shrinking, a callback for the verdict.
pub fn check_with(
    model: Model,
    operations: &[Operation],
    limits: &Limits,
    options: &Options,
) -> Result<Report, HistoryError> {
    let report = match model {
        Model::Linearizable => linearizable(operations, limits, options),
        Model::Sequential => sequential(operations, limits, options),
        Model::Causal => announce(causal(operations, limits)?, options),
        Model::Session(wanted) => announce(session(operations, wanted, limits)?, options),
        Model::Convergence => announce(convergence(operations)?, options),
        Model::ListAppend => announce(crate::list_append::report(operations)?, options),
    };
    Ok(report)
}

/// Fills in a default headline and reports the verdict through `options`.
fn announce(mut report: Report, options: &Options) -> Report {
    if report.headline.is_empty() {
        report.headline = match report.validity {
            Validity::Valid => report.model.adjective().to_string(),
            Validity::Invalid => format!("not {}", report.model.adjective()),
            Validity::Unknown => "unknown".into(),
        };
    }
    (options.on_verdict)(&report);
    report
}

/// "these 3 operations cannot be linearized together" / "this operation cannot be ...".
fn these(count: usize, what: &str) -> String {
    if count == 1 {
        format!("this operation cannot be {what} (smallest set found):")
    } else {
        format!("these {count} operations cannot be {what} together (smallest set found):")
    }
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

/// Shrinks a violating subset of `operations` (ids in `scope`) with `violates`, within the
/// shrinking budget of `options` (and the time limit of `limits`).
fn shrink(
    operations: &[Operation],
    scope: impl Fn(&Operation) -> bool,
    limits: &Limits,
    options: &Options,
    violates: impl Fn(&[Operation], &Limits) -> bool,
) -> Vec<usize> {
    let subset: Vec<Operation> = operations.iter().filter(|o| scope(o)).cloned().collect();
    let stop = || (limits.cancelled)() || (options.shrink_cancelled)();
    let inner = Limits {
        memo_bytes_max: limits.memo_bytes_max,
        cancelled: &stop,
    };
    let mut check = |ops: &[Operation]| !stop() && violates(ops, &inner);
    minimize(&subset, &mut check, SHRINK_CHECKS_MAX)
        .iter()
        .map(|o| o.id)
        .collect()
}

fn linearizable(operations: &[Operation], limits: &Limits, options: &Options) -> Report {
    let linearize = |ops: &[Operation], limits: &Limits| {
        if options.search_only {
            check_linearizable_search(ops, limits)
        } else {
            check_linearizable(ops, limits)
        }
    };
    let found = linearize(operations, limits);
    let mut out = report(Model::Linearizable, found.verdict, found.reason.clone());
    if found.verdict != Verdict::NotLinearizable {
        return announce(out, options);
    }
    // The verdict and the key come from the whole history alone; shrinking only explains.
    let key = found.key.clone();
    out.headline = match &key {
        Some(key) => format!("not linearizable: key {key:?} has no linearization"),
        None => "not linearizable: the register has no linearization".into(),
    };
    out.key = key.clone();
    let mut out = announce(out, options);
    if !found.witness.is_empty() {
        // The fast path's witness is small and explained in terms of its own operations.
        out.witness = found.witness.clone();
    } else {
        out.witness = shrink(
            operations,
            |o| o.key == key,
            limits,
            options,
            |ops, limits| linearize(ops, limits).verdict == Verdict::NotLinearizable,
        );
    }
    // Explain with the witness alone, so that every operation named is one drawn.
    let witness: Vec<Operation> = operations
        .iter()
        .filter(|o| out.witness.contains(&o.id))
        .cloned()
        .collect();
    let small = if found.witness.is_empty() {
        linearize(&witness, limits)
    } else {
        found
    };
    out.details.push(explain_linearizability(&small, &witness));
    out.details.push(these(out.witness.len(), "linearized"));
    out
}

/// One line on why `found` (a violation among `operations`) cannot be linearized.
fn explain_linearizability(found: &LinearizabilityReport, operations: &[Operation]) -> String {
    if let Some(text) = &found.explanation {
        return text.clone();
    }
    let by_id = |id: usize| operations.iter().find(|o| o.id == id);
    match found.stuck.and_then(by_id) {
        Some(stuck) => format!(
            "after linearizing {} operation{}, #{} ({}) returned before it could take effect",
            found.linearized.len(),
            if found.linearized.len() == 1 { "" } else { "s" },
            stuck.id,
            describe(stuck)
        ),
        None => "no order of these operations respects both real time and the register".into(),
    }
}

fn sequential(operations: &[Operation], limits: &Limits, options: &Options) -> Report {
    let found = check_sequential(operations, limits);
    let out = report(Model::Sequential, found.verdict, found.reason.clone());
    let mut out = announce(out, options);
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
         operation{}, then no process's next operation was legal",
        found.ordered.len(),
        if found.ordered.len() == 1 { "" } else { "s" }
    ));
    out.witness = shrink(
        operations,
        |_| true,
        limits,
        options,
        |ops, limits| check_sequential(ops, limits).verdict == Verdict::NotLinearizable,
    );
    out.details.push(these(out.witness.len(), "ordered"));
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
