//! The verdict path every torture run takes (`verdict::judge` then `exit_code`), fed
//! fabricated histories: each check must be able to fail, and unknown must never pass.

use quorate_check::txn::Mop;
use quorate_check::{Event, EventKind, OpValue};
use quorate_torture::verdict::{judge, Plan, Promise};
use quorate_torture::{exit_code, plan_for, EXIT_UNKNOWN, EXIT_VALID, EXIT_VIOLATION};
use std::time::Duration;

/// A history builder: each call appends one event at the next time step.
#[derive(Default)]
struct H(Vec<Event>);

impl H {
    fn ev(&mut self, process: u64, kind: EventKind, key: &str, value: OpValue) -> &mut Self {
        let time = self.0.len() as u64 * 10;
        self.0.push(Event {
            process,
            kind,
            key: Some(key.into()),
            value,
            time,
            node: Some(1),
            error: None,
            mode: Default::default(),
        });
        self
    }

    /// An operation invoked and completed with `kind` before the next one starts.
    fn op(
        &mut self,
        process: u64,
        kind: EventKind,
        key: &str,
        invoke: OpValue,
        done: OpValue,
    ) -> &mut Self {
        self.ev(process, EventKind::Invoke, key, invoke);
        self.ev(process, kind, key, done)
    }

    fn append(&mut self, process: u64, key: &str, token: &str) -> &mut Self {
        let v = OpValue::Append(format!("{token};"));
        self.op(process, EventKind::Ok, key, v.clone(), v)
    }

    fn read(&mut self, process: u64, key: &str, value: Option<&str>) -> &mut Self {
        self.op(
            process,
            EventKind::Ok,
            key,
            OpValue::Get(None),
            OpValue::Get(value.map(str::to_string)),
        )
    }

    fn put(&mut self, process: u64, key: &str, value: &str) -> &mut Self {
        let v = OpValue::Put(value.into());
        self.op(process, EventKind::Ok, key, v.clone(), v)
    }
}

fn verdict_of(events: &[Event], plan: &Plan) -> (u8, Vec<String>) {
    let (models, stats) = judge(events, plan, Duration::from_secs(10)).expect("a valid history");
    let ok = events.iter().filter(|e| e.kind == EventKind::Ok).count() as u64;
    let mut lines: Vec<String> = models
        .iter()
        .map(|m| format!("{} {}: {}", m.model, m.verdict, m.detail))
        .collect();
    lines.extend(stats.examples);
    (exit_code(&models, ok), lines)
}

fn log_plan() -> Plan {
    plan_for("raft", &[]).0
}

#[test]
fn a_clean_history_passes() {
    let mut h = H::default();
    h.append(1, "l0", "a1")
        .append(2, "l0", "a2")
        .read(1, "l0", Some("a1;a2;"));
    h.put(1, "r0", "v1").read(2, "r0", Some("v1"));
    let (code, lines) = verdict_of(&h.0, &log_plan());
    assert_eq!(code, EXIT_VALID, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("elle: strict serializable")),
        "{lines:#?}"
    );
}

#[test]
fn a_lost_append_is_a_violation() {
    let mut h = H::default();
    h.append(1, "l0", "a1")
        .append(2, "l0", "a2")
        .read(1, "l0", Some("a1;"));
    let (code, lines) = verdict_of(&h.0, &log_plan());
    assert_eq!(code, EXIT_VIOLATION, "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("1 lost")), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("lost append ×1")),
        "{lines:#?}"
    );
}

#[test]
fn a_duplicated_append_is_a_violation() {
    let mut h = H::default();
    h.append(1, "l0", "a1").read(1, "l0", Some("a1;a1;"));
    let (code, lines) = verdict_of(&h.0, &log_plan());
    assert_eq!(code, EXIT_VIOLATION, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("1 duplicated")),
        "{lines:#?}"
    );
}

#[test]
fn a_wrong_key_read_is_a_phantom_and_not_linearizable() {
    // Issue 13's bug 1: a read of a list key answered with a register's value, and a
    // register read answered with another register's value.
    let mut h = H::default();
    h.put(1, "r1", "v7").put(1, "r2", "v8");
    h.append(2, "l0", "a1").read(2, "l0", Some("v8"));
    h.read(3, "r1", Some("v8"));
    let (code, lines) = verdict_of(&h.0, &log_plan());
    assert_eq!(code, EXIT_VIOLATION, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.starts_with("linearizable invalid")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("1 phantom")), "{lines:#?}");
}

#[test]
fn reads_that_are_not_prefixes_are_a_violation() {
    let mut h = H::default();
    h.append(1, "l0", "a1").append(2, "l0", "a2");
    h.read(1, "l0", Some("a1;a2;"))
        .read(2, "l0", Some("a2;a1;"));
    let (code, lines) = verdict_of(&h.0, &log_plan());
    assert_eq!(code, EXIT_VIOLATION, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("not prefixes") && !l.contains(" 0 not prefixes")),
        "{lines:#?}"
    );
}

#[test]
fn a_list_order_against_real_time_is_a_violation() {
    // a2 was acknowledged before a1 was appended, yet the list puts a1 first.
    let mut h = H::default();
    h.append(1, "l0", "a2")
        .append(2, "l0", "a1")
        .read(1, "l0", Some("a1;a2;"));
    let (code, lines) = verdict_of(&h.0, &log_plan());
    assert_eq!(code, EXIT_VIOLATION, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("1 misordered")),
        "{lines:#?}"
    );
    // quorate-check's list-append checker names the cycle: ww a1 → a2 against real time.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("elle: not strict serializable") && l.contains("G0-realtime")),
        "{lines:#?}"
    );
}

#[test]
fn an_unconfirmed_append_is_unknown_never_a_pass() {
    // No read after the append: nothing shows it survived.
    let mut h = H::default();
    h.read(1, "l0", None).append(1, "l0", "a1");
    let (code, lines) = verdict_of(&h.0, &log_plan());
    assert_eq!(code, EXIT_UNKNOWN, "{lines:#?}");
}

#[test]
fn a_history_without_any_ok_operation_is_unknown() {
    let mut h = H::default();
    h.ev(1, EventKind::Invoke, "r0", OpValue::Put("v1".into()));
    h.ev(1, EventKind::Info, "r0", OpValue::Put("v1".into()));
    let (code, lines) = verdict_of(&h.0, &log_plan());
    assert_eq!(code, EXIT_UNKNOWN, "{lines:#?}");
}

#[test]
fn a_stale_register_read_breaks_a_promise_but_not_a_measurement() {
    let mut h = H::default();
    h.put(1, "r0", "v1")
        .put(1, "r0", "v2")
        .read(2, "r0", Some("v1"));
    let (code, _) = verdict_of(&h.0, &plan_for("quorum", &[]).0.clone_without_convergence());
    assert_eq!(code, EXIT_VIOLATION);
    // R + W <= N: linearizability is only measured, so the same stale read is reported
    // but is no failure of a promise (and with nothing promised, no pass either).
    let partial = [
        ("r".to_string(), toml::Value::Integer(1)),
        ("w".to_string(), toml::Value::Integer(1)),
    ];
    let plan = plan_for("quorum", &partial).0.clone_without_convergence();
    assert_eq!(plan.linearizable, Some(Promise::Measured));
    let (code, lines) = verdict_of(&h.0, &plan);
    assert!(lines[0].starts_with("linearizable invalid"), "{lines:#?}");
    assert_eq!(code, EXIT_UNKNOWN, "{lines:#?}");
}

trait WithoutConvergence {
    fn clone_without_convergence(&self) -> Plan;
}

impl WithoutConvergence for Plan {
    fn clone_without_convergence(&self) -> Plan {
        Plan {
            convergence: false,
            ..self.clone()
        }
    }
}

#[test]
fn diverged_replicas_are_a_convergence_violation() {
    // Final reads (after the last write) on two nodes disagree.
    let mut h = H::default();
    h.put(1, "r0", "v1").put(2, "r0", "v2");
    h.read(3, "r0", Some("v1"));
    h.0.last_mut().expect("event").node = Some(2);
    h.read(4, "r0", Some("v2"));
    let plan = plan_for(
        "multiprimary",
        &[("resolution".into(), toml::Value::String("lww".into()))],
    )
    .0;
    let (code, lines) = verdict_of(&h.0, &plan);
    assert_eq!(code, EXIT_VIOLATION, "{lines:#?}");
}

/// Differential: on generated list-append histories, valid and with one read damaged at
/// random, torture's own counts and quorate-check's Elle-style checker reach the same
/// verdict. A disagreement prints the seed and the damage.
#[test]
fn the_list_append_counts_and_the_elle_checker_agree() {
    use quorate_check::history::pair;
    use quorate_check::list_append;
    use quorate_check::Validity;
    let mut disagreements = Vec::new();
    let mut invalid = 0;
    for seed in 0..300u64 {
        let mut events = list_append::generate(120, 2, 6, seed);
        let reads: Vec<usize> = (0..events.len())
            .filter(|&i| {
                events[i].kind == EventKind::Ok
                    && matches!(&events[i].value, OpValue::Get(Some(v)) if v.len() > 4)
            })
            .collect();
        let damage = if seed % 5 == 0 || reads.is_empty() {
            "none".to_string()
        } else {
            let at = reads[(seed as usize * 7919) % reads.len()];
            let OpValue::Get(Some(value)) = &events[at].value else {
                unreachable!()
            };
            let mut tokens: Vec<&str> = value.split_terminator(';').collect();
            let k = (seed as usize / 5) % tokens.len();
            let kind = seed % 4;
            match kind {
                0 => {
                    tokens.remove(k);
                }
                1 if tokens.len() > 1 => {
                    let next = (k + 1) % tokens.len();
                    tokens.swap(k, next)
                }
                2 => tokens.insert(k, tokens[k]),
                _ => tokens.truncate(k),
            }
            let damaged: String = tokens.iter().map(|t| format!("{t};")).collect();
            let text = format!("read #{at} {value:?} -> {damaged:?}");
            events[at].value = OpValue::Get(Some(damaged).filter(|v| !v.is_empty()));
            text
        };
        let ops = pair(&events).expect("a paired history");
        let stats = quorate_torture::verdict::appends(&ops);
        let counts_bad =
            stats.lost + stats.duplicated + stats.phantom + stats.not_prefix + stats.misordered > 0;
        let elle = list_append::report(&ops).expect("checkable");
        invalid += usize::from(elle.validity == Validity::Invalid);
        if counts_bad != (elle.validity == Validity::Invalid) {
            disagreements.push(format!(
                "seed {seed}, {damage}: counts bad = {counts_bad}, elle: {} {:?}",
                elle.headline, stats.examples
            ));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    eprintln!("{invalid} of 300 histories invalid");
    assert!(
        invalid > 100,
        "the damage should mostly show: {invalid} invalid"
    );
}

/// A transaction (MULTI/EXEC) as the workload records it: no key, its micro-ops.
fn txn(h: &mut H, process: u64, invoke: Vec<Mop>, done: Vec<Mop>) {
    let time = h.0.len() as u64 * 10;
    for (kind, mops, at) in [
        (EventKind::Invoke, invoke, time),
        (EventKind::Ok, done, time + 10),
    ] {
        h.0.push(Event {
            process,
            kind,
            key: None,
            value: OpValue::Txn(mops),
            time: at,
            node: Some(1),
            error: None,
            mode: Default::default(),
        });
    }
}

fn append_mop(key: &str, token: &str) -> Mop {
    Mop::Append {
        key: key.into(),
        value: format!("{token};"),
    }
}

fn read_mop(key: &str, value: Option<&str>) -> Mop {
    Mop::Read {
        key: key.into(),
        value: value.map(str::to_string),
    }
}

/// Transactions are judged with the lists' single operations: their appends are tokens the
/// counts know (a read of them is no phantom), and a read that sees half of a transaction
/// is a violation the counts alone cannot see but Elle's checker names.
#[test]
fn transactions_are_judged_with_the_lists_and_a_torn_one_is_caught() {
    let both = vec![append_mop("l0", "t1"), append_mop("l1", "t2")];
    let mut clean = H::default();
    txn(&mut clean, 1, both.clone(), both.clone());
    clean.read(2, "l0", Some("t1;")).read(2, "l1", Some("t2;"));
    txn(
        &mut clean,
        3,
        vec![read_mop("l0", None), read_mop("l1", None)],
        vec![read_mop("l0", Some("t1;")), read_mop("l1", Some("t2;"))],
    );
    let (code, lines) = verdict_of(&clean.0, &log_plan());
    assert_eq!(code, EXIT_VALID, "{lines:#?}");

    // The MGET sees t2 but not t1 of the same transaction, after it was acknowledged.
    let mut torn = H::default();
    txn(&mut torn, 1, both.clone(), both);
    txn(
        &mut torn,
        3,
        vec![read_mop("l0", None), read_mop("l1", None)],
        vec![read_mop("l0", None), read_mop("l1", Some("t2;"))],
    );
    torn.read(2, "l0", Some("t1;"));
    let (code, lines) = verdict_of(&torn.0, &log_plan());
    assert_eq!(code, EXIT_VIOLATION, "{lines:#?}");
}
