//! Promises: what a replicated system says about its histories, and the one judge of them.
//!
//! A consistency model ([`crate::Model`]) is a property of a history. A *promise* is what one
//! kind of system guarantees, which is often several models over different parts of the same
//! history: ZooKeeper promises linearizable writes but only ordered (sequential) plain reads; a
//! Dynamo-style store promises convergence of its replicas, and linearizability only when
//! `R + W > N`. [`judge`] takes a history and a [`Promise`] and returns a [`Judgement`]: every
//! model it checked, whether the promise covers it (a failure is then a violation) or it was only
//! measured, the violations, and measurements.
//!
//! The simulator judges every run with this function, and `quorate check --promise P` (or
//! `quorate check h.jsonl` on a history whose header names its promise) calls it too: an
//! exported history gets the simulator's verdict because there is one judging code path.
//!
//! ## What the history must record
//!
//! - Each event's read [`Mode`]: `linearizable` (the default), `sync` and `local` (ZooKeeper's
//!   read modes), `any-replica` (a read sent to a replica drawn at random: staleness is
//!   measured, nothing promised; the multi-primary promises still count it among its
//!   session's reads, since the session's later writes carry the context it returned) and `final` (a read of one replica, named by `node`, after the
//!   cluster settled without clients).
//! - Written values unique per key (the simulator's workloads write each value once), so a read
//!   names the write it saw; the ordered-reads, staleness and final-read rules rely on it.
//!
//! ## The promises
//!
//! | promise | promised | measured |
//! |---|---|---|
//! | `linearizable` (raft, paxos, multipaxos, primary-backup, chain, craq) | linearizable | staleness of `any-replica` reads |
//! | `zab` | linearizable writes and linearizable reads; ordered reads over everything | |
//! | `quorum` (`R + W > N` with write-back) | linearizable; final reads agree on a written value | stale reads |
//! | `quorum-sloppy` (partial or sloppy quorums, no write-back) | final reads agree on a written value | linearizable; stale reads |
//! | `lww` | final reads agree on a written value | |
//! | `version-vectors` | final reads agree; no acknowledged write lost, none superseded comes back | |
//! | `crdt` | final reads agree; counters count every acknowledged increment; sets keep every acknowledged add not removed later | |
//!
//! Whatever the promise, transactions (`txn` events: `MULTI`/`EXEC`, `MGET`) are promised
//! strict serializable, judged by the list-append checker over their micro-ops (only log
//! protocols accept them).

use crate::final_reads::{self, FinalRead};
use crate::history::{pair, Event, EventKind, History, Mode, OpValue, Operation};
use crate::linearizability::{check_linearizable, Limits, Verdict};
use crate::list_append;
use crate::ordered_reads;
use crate::report::Validity;
use crate::staleness::split_any_replica_reads;
use std::collections::BTreeMap;

/// What a system promises about its histories (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Promise {
    Linearizable,
    Zab,
    Quorum,
    QuorumSloppy,
    Lww,
    VersionVectors,
    Crdt,
}

impl Promise {
    pub const ALL: [Promise; 7] = [
        Promise::Linearizable,
        Promise::Zab,
        Promise::Quorum,
        Promise::QuorumSloppy,
        Promise::Lww,
        Promise::VersionVectors,
        Promise::Crdt,
    ];

    /// The name a history header and `--promise` use.
    pub fn name(self) -> &'static str {
        match self {
            Promise::Linearizable => "linearizable",
            Promise::Zab => "zab",
            Promise::Quorum => "quorum",
            Promise::QuorumSloppy => "quorum-sloppy",
            Promise::Lww => "lww",
            Promise::VersionVectors => "version-vectors",
            Promise::Crdt => "crdt",
        }
    }

    /// The promise named `name`.
    pub fn parse(name: &str) -> Result<Promise, String> {
        Promise::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Promise::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown promise {name:?}: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// The verdict on one consistency model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelVerdict {
    pub model: &'static str,
    /// `Some(true)`: the history satisfies the model; `None`: the check could not decide.
    pub satisfied: Option<bool>,
    /// Whether the promise covers the model (a failure is then a violation) or it was only
    /// measured.
    pub promised: bool,
}

impl ModelVerdict {
    pub fn promised(model: &'static str, verdict: &Verdict) -> ModelVerdict {
        ModelVerdict {
            model,
            satisfied: satisfied(verdict),
            promised: true,
        }
    }

    pub fn measured(model: &'static str, verdict: &Verdict) -> ModelVerdict {
        ModelVerdict {
            model,
            satisfied: satisfied(verdict),
            promised: false,
        }
    }
}

fn satisfied(verdict: &Verdict) -> Option<bool> {
    match verdict {
        Verdict::Linearizable => Some(true),
        Verdict::NotLinearizable => Some(false),
        Verdict::Unknown => None,
    }
}

fn verdict(ok: bool) -> Verdict {
    if ok {
        Verdict::Linearizable
    } else {
        Verdict::NotLinearizable
    }
}

/// What [`judge`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Judgement {
    /// Every model checked, in the order the promise lists them.
    pub models: Vec<ModelVerdict>,
    /// What breaks the promise, one line each.
    pub violations: Vec<String>,
    /// Measurements (stale reads, reads checked, ...).
    pub counters: Vec<(&'static str, u64)>,
}

impl Judgement {
    /// Invalid when anything breaks the promise; unknown when a promised model could not be
    /// decided; valid otherwise.
    pub fn validity(&self) -> Validity {
        let promised = || self.models.iter().filter(|m| m.promised);
        if !self.violations.is_empty() || promised().any(|m| m.satisfied == Some(false)) {
            Validity::Invalid
        } else if promised().any(|m| m.satisfied.is_none()) {
            Validity::Unknown
        } else {
            Validity::Valid
        }
    }

    fn malformed(why: String) -> Judgement {
        Judgement {
            violations: vec![why],
            ..Judgement::default()
        }
    }
}

/// Judges `history` by `promise`. Transactions (`txn` events), with the single operations
/// on the keys they touch, are judged apart from every promise, for strict serializability
/// by the list-append checker; the promise judges the rest.
pub fn judge(history: &[Event], promise: Promise, limits: &Limits) -> Judgement {
    let leases = crate::lease::counts(history);
    let mut judgement = judge_all(history, promise, limits);
    judgement.counters.extend(leases);
    judgement
}

fn judge_all(history: &[Event], promise: Promise, limits: &Limits) -> Judgement {
    let is_txn = |e: &Event| matches!(e.value, OpValue::Txn(_));
    if !history.iter().any(is_txn) {
        return judge_promise(history, promise, limits);
    }
    // Single operations on a key some transaction touches are judged with the transactions
    // (appends and reads: a torture history's lists), the rest by the promise.
    let txn_keys: std::collections::BTreeSet<&str> = history
        .iter()
        .filter_map(|e| match &e.value {
            OpValue::Txn(mops) => Some(mops.iter().map(|m| m.key())),
            _ => None,
        })
        .flatten()
        .collect();
    let with_txns = |e: &Event| is_txn(e) || e.key.as_deref().is_some_and(|k| txn_keys.contains(k));
    let (txns, rest): (Vec<Event>, Vec<Event>) = history.iter().cloned().partition(with_txns);
    let mut judgement = if rest.is_empty() {
        Judgement::default()
    } else {
        judge_promise(&rest, promise, limits)
    };
    let (model, violations) = transactions(&txns);
    judgement.models.push(model);
    judgement.violations.extend(violations);
    judgement.counters.extend(transaction_counts(&txns));
    judgement
}

/// How many transactions committed, how many of those spanned several keys, and how many
/// failed (a `WATCH` guard that did not hold, or a definite refusal).
fn transaction_counts(txns: &[Event]) -> [(&'static str, u64); 3] {
    // Only `txn` events: the single operations judged with them are not transactions.
    let count = |keep: &dyn Fn(&Event) -> bool| {
        txns.iter()
            .filter(|e| matches!(e.value, OpValue::Txn(_)) && keep(e))
            .count() as u64
    };
    let keys = |e: &Event| match &e.value {
        OpValue::Txn(mops) => mops
            .iter()
            .map(|m| m.key())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        _ => 0,
    };
    [
        ("txns_committed", count(&|e| e.kind == EventKind::Ok)),
        (
            "txns_multi_key",
            count(&|e| e.kind == EventKind::Ok && keys(e) > 1),
        ),
        ("txns_failed", count(&|e| e.kind == EventKind::Fail)),
    ]
}

/// Strict serializability of transactions of appends and reads (Elle's list-append
/// analysis, [`crate::list_append`]), failed transactions included: a read of a failed
/// transaction's append is an aborted read.
fn transactions(events: &[Event]) -> (ModelVerdict, Vec<String>) {
    let history = History {
        events: events.to_vec(),
        lines: (1..=events.len()).collect(),
        promise: None,
    };
    let (satisfied, violations) = match list_append::report_history(&history) {
        Ok(report) => match report.validity {
            Validity::Valid => (Some(true), Vec::new()),
            Validity::Unknown => (None, Vec::new()),
            Validity::Invalid => {
                let mut detail = format!("transactions: {}", report.headline);
                if let Some(first) = report.details.first() {
                    detail += &format!("; {first}");
                }
                (Some(false), vec![detail])
            }
        },
        Err(why) => (None, vec![format!("malformed transactions: {why}")]),
    };
    let model = ModelVerdict {
        model: "strict-serializable",
        satisfied,
        promised: true,
    };
    (model, violations)
}

fn judge_promise(history: &[Event], promise: Promise, limits: &Limits) -> Judgement {
    let any_replica = history.iter().any(|e| e.mode == Mode::AnyReplica);
    let (judged, staleness) = split_any_replica_reads(history);
    let (clients, finals) = final_reads::split_final_reads(&judged);
    let mut judgement = match promise {
        Promise::Linearizable => linearizable(&clients, limits),
        Promise::Zab => zab(&clients, limits),
        Promise::Quorum | Promise::QuorumSloppy => {
            quorum(&clients, &finals, promise == Promise::Quorum, limits)
        }
        Promise::Lww | Promise::VersionVectors | Promise::Crdt => {
            // An `any-replica` read promises nothing about its values, but it is still one of
            // its session's reads: the session's later writes carry the context it returned
            // and supersede what it saw. The lost-write rules need it to know what a write
            // replaced (without it, a sibling replaced by a write whose session read it only
            // at a random replica counts as lost).
            let (sessions, _) = final_reads::split_final_reads(history);
            multi_primary(&sessions, &finals, promise)
        }
    };
    if any_replica {
        judgement.counters.extend([
            ("local_reads", staleness.reads),
            ("local_reads_stale", staleness.stale),
            ("local_reads_writes_behind", staleness.writes_behind),
            ("local_reads_writes_behind_max", staleness.writes_behind_max),
        ]);
    }
    judgement
}

/// Linearizability of every client operation.
fn linearizable(clients: &[Event], limits: &Limits) -> Judgement {
    let (verdict, violations) = linearizability(clients, limits);
    Judgement {
        models: vec![ModelVerdict::promised("linearizable", &verdict)],
        violations,
        counters: Vec::new(),
    }
}

/// ZAB: linearizability over writes and linearizable reads; ordered reads over everything.
/// The verdict stays linearizability's; ordering violations are listed.
fn zab(clients: &[Event], limits: &Limits) -> Judgement {
    let strong: Vec<Event> = clients
        .iter()
        .filter(|e| e.mode == Mode::Linearizable)
        .cloned()
        .collect();
    let mut judgement = linearizable(&strong, limits);
    match operations(clients) {
        Ok(ops) => judgement.violations.extend(ordered_reads::check(&ops)),
        Err(why) => judgement.violations.push(why),
    }
    judgement
}

/// Quorum replication: linearizable (promised when `strict`), and convergence of the home
/// replicas' final reads on written values.
fn quorum(
    clients: &[Event],
    finals: &BTreeMap<String, Vec<FinalRead>>,
    strict: bool,
    limits: &Limits,
) -> Judgement {
    let (linearizable, lin_violations) = linearizability(clients, limits);
    let mut judgement = Judgement::default();
    if strict {
        judgement.violations.extend(lin_violations);
        let model = ModelVerdict::promised("linearizable", &linearizable);
        judgement.models.push(model);
    } else {
        let model = ModelVerdict::measured("linearizable", &linearizable);
        judgement.models.push(model);
    }
    let ops = match operations(clients) {
        Ok(ops) => ops,
        Err(why) => {
            judgement.violations.push(why);
            return judgement;
        }
    };
    let (agreed, mut violations) = final_reads::agreement(finals);
    violations.extend(final_reads::registers_justified(&ops, &agreed));
    let converged = verdict(violations.is_empty());
    judgement
        .models
        .push(ModelVerdict::promised("convergence", &converged));
    judgement.violations.extend(violations);
    let (reads, stale) = final_reads::stale_reads(&ops);
    judgement.counters = vec![("reads_checked", reads), ("stale_reads", stale)];
    judgement
}

/// Multi-primary replication: every replica's final reads agree, and the resolver's rules.
fn multi_primary(
    clients: &[Event],
    finals: &BTreeMap<String, Vec<FinalRead>>,
    promise: Promise,
) -> Judgement {
    let ops = match operations(clients) {
        Ok(ops) => ops,
        Err(why) => return Judgement::malformed(why),
    };
    let (agreed, mut violations) = final_reads::agreement(finals);
    let mut judgement = Judgement::default();
    let lost = match promise {
        Promise::Lww => {
            violations.extend(final_reads::registers_justified(&ops, &agreed));
            None
        }
        Promise::VersionVectors => Some(final_reads::causal_no_lost_writes(&ops, &agreed)),
        _ => Some(final_reads::crdt_no_lost_updates(&ops, &agreed)),
    };
    let converged = !violations.iter().any(|v| v.starts_with("convergence"));
    let converged_too = lost.iter().flatten().all(|v| !v.starts_with("convergence"));
    let model = ModelVerdict::promised("convergence", &verdict(converged && converged_too));
    judgement.models.push(model);
    if let Some(lost) = lost {
        let model = ModelVerdict::promised("no_lost_writes", &verdict(lost.is_empty()));
        judgement.models.push(model);
        violations.extend(lost);
    }
    judgement.violations = violations;
    judgement
}

/// Pairs the client events; a malformed history is itself a violation.
fn operations(clients: &[Event]) -> Result<Vec<Operation>, String> {
    pair(clients).map_err(|e| format!("malformed history: {e}"))
}

/// Linearizability, key by key, with a violation explained in one line.
pub fn linearizability(history: &[Event], limits: &Limits) -> (Verdict, Vec<String>) {
    let operations = match operations(history) {
        Ok(operations) => operations,
        Err(why) => return (Verdict::Unknown, vec![why]),
    };
    let report = check_linearizable(&operations, limits);
    let mut violations = Vec::new();
    if report.verdict == Verdict::NotLinearizable {
        let mut detail = format!(
            "linearizability: no linearization of key {:?}",
            report.key.as_deref().unwrap_or("-")
        );
        if let Some(stuck) = report.stuck {
            detail += &format!(
                "; after linearizing {} operations, {} returned before it could take effect",
                report.linearized.len(),
                operations[stuck]
            );
        }
        if let Some(why) = &report.explanation {
            detail += &format!("; {why}");
        }
        violations.push(detail);
    }
    (report.verdict, violations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(process: u64, kind: EventKind, value: OpValue, time: u64, mode: Mode) -> Event {
        Event {
            process,
            kind,
            key: Some("k".into()),
            value,
            time,
            node: (mode == Mode::Final).then_some(process),
            error: None,
            mode,
        }
    }

    fn op(history: &mut Vec<Event>, process: u64, value: OpValue, at: u64, mode: Mode) {
        let invoke = match value {
            OpValue::Get(_) => OpValue::Get(None),
            ref other => other.clone(),
        };
        history.push(event(process, EventKind::Invoke, invoke, at, mode));
        history.push(event(process, EventKind::Ok, value, at + 1, mode));
    }

    fn get(value: &str) -> OpValue {
        OpValue::Get(Some(value.into()))
    }

    fn put(value: &str) -> OpValue {
        OpValue::Put(value.into())
    }

    /// A transaction history in JSON lines: `txn` events, a failed one among them.
    fn txn_history(lines: &[&str]) -> Vec<Event> {
        crate::history::parse_jsonl(&lines.join("\n")).expect("a valid history")
    }

    const APPEND_THEN_READ: [&str; 6] = [
        r#"{"process":0,"type":"invoke","f":"txn","value":[["append","x","1,"],["append","y","2,"]],"time":0}"#,
        r#"{"process":0,"type":"ok","f":"txn","value":[["append","x","1,"],["append","y","2,"]],"time":10}"#,
        r#"{"process":1,"type":"invoke","f":"txn","value":[["r","x",null],["append","y","3,"]],"time":20}"#,
        r#"{"process":1,"type":"fail","f":"txn","value":[["r","x",null],["append","y","3,"]],"time":30,"error":"a watched key changed"}"#,
        r#"{"process":2,"type":"invoke","f":"txn","value":[["r","x",null],["r","y",null]],"time":40}"#,
        r#"{"process":2,"type":"ok","f":"txn","value":[["r","x","1,"],["r","y","2,"]],"time":50}"#,
    ];

    /// Transactions are judged strict serializable under any promise, and counted.
    #[test]
    fn transactions_are_judged_by_the_list_append_checker() {
        let limits = Limits::default();
        let valid = judge(
            &txn_history(&APPEND_THEN_READ),
            Promise::Linearizable,
            &limits,
        );
        assert_eq!(valid.validity(), Validity::Valid, "{valid:?}");
        assert_eq!(valid.models.len(), 1, "no vacuous linearizable verdict");
        assert_eq!(valid.models[0].model, "strict-serializable");
        assert!(valid.counters.contains(&("txns_multi_key", 2)));
        assert!(valid.counters.contains(&("txns_failed", 1)));

        // The read sees only half of the first transaction: not atomic.
        let mut torn = APPEND_THEN_READ;
        torn[5] = r#"{"process":2,"type":"ok","f":"txn","value":[["r","x","1,"],["r","y",null]],"time":50}"#;
        let judged = judge(&txn_history(&torn), Promise::Zab, &limits);
        assert_eq!(judged.validity(), Validity::Invalid);
        assert!(judged.violations[0].starts_with("transactions: not strict serializable"));

        // The failed transaction's append is read: an aborted read.
        let mut aborted = APPEND_THEN_READ;
        aborted[5] = r#"{"process":2,"type":"ok","f":"txn","value":[["r","x","1,"],["r","y","2,3,"]],"time":50}"#;
        let judged = judge(&txn_history(&aborted), Promise::Linearizable, &limits);
        assert_eq!(judged.validity(), Validity::Invalid, "{judged:?}");
    }

    /// An append outside a transaction to a key transactions also use is judged with them:
    /// a transaction that reads it is no phantom.
    #[test]
    fn single_operations_on_transaction_keys_are_judged_with_the_transactions() {
        let mut history = txn_history(&APPEND_THEN_READ);
        let mut append = |kind, at| {
            history.push(Event {
                key: Some("x".into()),
                ..event(
                    8,
                    kind,
                    OpValue::Append("9,".into()),
                    at,
                    Mode::Linearizable,
                )
            })
        };
        append(EventKind::Invoke, 60);
        append(EventKind::Ok, 70);
        history.extend(txn_history(&[
            r#"{"process":9,"type":"invoke","f":"txn","value":[["r","x",null]],"time":80}"#,
            r#"{"process":9,"type":"ok","f":"txn","value":[["r","x","1,9,"]],"time":90}"#,
        ]));
        let judged = judge(&history, Promise::Linearizable, &Limits::default());
        assert_eq!(judged.validity(), Validity::Valid, "{judged:?}");
        let models: Vec<&str> = judged.models.iter().map(|m| m.model).collect();
        assert_eq!(models, ["strict-serializable"]);
    }

    /// Transactions and single operations in one history: each judged by its own model.
    #[test]
    fn transactions_and_registers_are_judged_apart() {
        let mut history = txn_history(&APPEND_THEN_READ);
        op(&mut history, 7, put("a"), 60, Mode::Linearizable);
        op(&mut history, 7, get("a"), 70, Mode::Linearizable);
        let judged = judge(&history, Promise::Linearizable, &Limits::default());
        let models: Vec<&str> = judged.models.iter().map(|m| m.model).collect();
        assert_eq!(models, ["linearizable", "strict-serializable"]);
        assert_eq!(judged.validity(), Validity::Valid);
    }

    #[test]
    fn names_round_trip() {
        for promise in Promise::ALL {
            assert_eq!(Promise::parse(promise.name()), Ok(promise));
        }
        assert!(Promise::parse("strong")
            .unwrap_err()
            .contains("quorum-sloppy"));
    }

    /// A stale read in local mode: ZAB allows it, a linearizable promise does not.
    #[test]
    fn zab_holds_local_reads_to_order_not_to_real_time() {
        let mut history = Vec::new();
        op(&mut history, 1, put("a"), 0, Mode::Linearizable);
        op(&mut history, 1, put("b"), 10, Mode::Linearizable);
        op(&mut history, 2, get("a"), 20, Mode::Local);
        let limits = Limits::default();
        assert_eq!(
            judge(&history, Promise::Zab, &limits).validity(),
            Validity::Valid
        );
        let strict = judge(&history, Promise::Linearizable, &limits);
        assert_eq!(strict.validity(), Validity::Invalid);
        // Reading backwards breaks ZAB's order too.
        op(&mut history, 2, get("b"), 30, Mode::Local);
        op(&mut history, 2, get("a"), 40, Mode::Local);
        let judgement = judge(&history, Promise::Zab, &limits);
        assert_eq!(judgement.validity(), Validity::Invalid, "{judgement:?}");
    }

    /// Final reads are judged for convergence, not as clients' reads.
    #[test]
    fn final_reads_must_agree_on_a_written_value() {
        let mut history = Vec::new();
        op(&mut history, 1, put("a"), 0, Mode::Linearizable);
        op(&mut history, 1, put("b"), 10, Mode::Linearizable);
        op(&mut history, 100, get("b"), 20, Mode::Final);
        op(&mut history, 101, get("b"), 20, Mode::Final);
        let limits = Limits::default();
        for promise in [Promise::Quorum, Promise::QuorumSloppy, Promise::Lww] {
            let judgement = judge(&history, promise, &limits);
            assert_eq!(judgement.validity(), Validity::Valid, "{promise:?}");
        }
        op(&mut history, 102, get("a"), 20, Mode::Final);
        let judgement = judge(&history, Promise::Quorum, &limits);
        assert_eq!(judgement.validity(), Validity::Invalid);
        assert!(judgement.violations[0].starts_with("convergence"));
        assert_eq!(
            judgement.models[0],
            ModelVerdict::promised("linearizable", &Verdict::Linearizable)
        );
    }

    /// Under `quorum-sloppy`, a stale read is measured, not a violation.
    #[test]
    fn sloppy_quorums_measure_linearizability() {
        let mut history = Vec::new();
        op(&mut history, 1, put("a"), 0, Mode::Linearizable);
        op(&mut history, 1, put("b"), 10, Mode::Linearizable);
        op(&mut history, 2, get("a"), 20, Mode::Linearizable);
        let limits = Limits::default();
        let sloppy = judge(&history, Promise::QuorumSloppy, &limits);
        assert_eq!(sloppy.validity(), Validity::Valid);
        assert_eq!(sloppy.models[0].satisfied, Some(false));
        assert!(sloppy.counters.contains(&("stale_reads", 1)));
        let strict = judge(&history, Promise::Quorum, &limits);
        assert_eq!(strict.validity(), Validity::Invalid);
    }

    /// Reads sent to any replica are measured for staleness and left out of the verdict.
    #[test]
    fn any_replica_reads_are_measured() {
        let mut history = Vec::new();
        op(&mut history, 1, put("a"), 0, Mode::Linearizable);
        op(&mut history, 1, put("b"), 10, Mode::Linearizable);
        op(&mut history, 2, get("a"), 20, Mode::AnyReplica);
        let judgement = judge(&history, Promise::Linearizable, &Limits::default());
        assert_eq!(judgement.validity(), Validity::Valid);
        assert!(judgement.counters.contains(&("local_reads_stale", 1)));
    }

    fn siblings(values: &[&str]) -> OpValue {
        OpValue::Siblings(values.iter().map(|v| v.to_string()).collect())
    }

    /// Issue 18: a session that read a sibling only at a random replica, then wrote with the
    /// context it got, replaced that sibling. Leaving the read out of the session made the
    /// replaced write look lost.
    #[test]
    fn a_sibling_read_at_any_replica_is_superseded_by_the_sessions_next_write() {
        let mut history = Vec::new();
        op(&mut history, 1, put("a"), 0, Mode::Linearizable);
        op(&mut history, 2, siblings(&["a"]), 10, Mode::AnyReplica);
        op(&mut history, 2, put("b"), 20, Mode::Linearizable);
        for node in [100, 101] {
            op(&mut history, node, siblings(&["b"]), 30, Mode::Final);
        }
        let limits = Limits::default();
        let judgement = judge(&history, Promise::VersionVectors, &limits);
        assert_eq!(judgement.validity(), Validity::Valid, "{judgement:?}");
        // Without the read, "a" was replaced by a write that never saw it: lost.
        let unseen: Vec<Event> = history
            .iter()
            .filter(|e| e.mode != Mode::AnyReplica)
            .cloned()
            .collect();
        let judgement = judge(&unseen, Promise::VersionVectors, &limits);
        assert_eq!(judgement.validity(), Validity::Invalid);
        assert!(
            judgement.violations[0].starts_with("lost write"),
            "{judgement:?}"
        );
        // And a sibling the any-replica read did not return still must survive.
        let mut other = history.clone();
        op(&mut other, 3, put("c"), 5, Mode::Linearizable);
        let judgement = judge(&other, Promise::VersionVectors, &limits);
        assert!(judgement.violations[0].contains("\"c\""), "{judgement:?}");
    }
}
