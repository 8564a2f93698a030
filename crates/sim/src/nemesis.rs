//! Network partitions, as Jepsen's nemeses make them, and the deterministic leader crash
//! of protocol comparisons.

use crate::harness::Harness;
use crate::report::LeaderCrashed;
use crate::simulation::{Phase, Simulation};

/// The leader crash of `SimConfig::leader_crash`: the node claiming leadership with the
/// highest term (node 1 when none does) crashes now and restarts after the configured
/// downtime. Draws nothing from the run's random streams, so a run with it differs from one
/// without only from this point on.
pub(crate) fn crash_leader<H: Harness>(sim: &mut Simulation<'_, H>) {
    let Some(crash) = sim.config.leader_crash else {
        return;
    };
    if sim.phase != Phase::Faulty {
        return;
    }
    let leader = sim.leader();
    let victim = leader.unwrap_or(0);
    if !sim.slots[victim].is_up() {
        sim.trace_line(victim, || "leader crash: already down".into());
        return;
    }
    sim.trace_line(victim, || {
        let what = if leader.is_some() {
            "leader"
        } else {
            "node 1 (no leader)"
        };
        format!("nemesis: crash the {what}")
    });
    sim.crash_for(victim, Some(crash.downtime.as_nanos() as u64));
    sim.stats.leader_crash = Some(LeaderCrashed {
        at: sim.now,
        node: victim as u64 + 1,
        was_leader: leader.is_some(),
    });
}

/// A random partition of `n` nodes: the blocked-link matrix and a description for traces.
///
/// Kinds: isolate one node (often the leader); split into a minority and a majority; a one-way
/// link failure (the victim can send but not receive, or the reverse); a bridge, where two
/// halves cannot talk except through one node that sees both.
pub(crate) fn partition<H: Harness>(sim: &mut Simulation<'_, H>, n: usize) -> (Vec<bool>, String) {
    let mut blocked = vec![false; n * n];
    let cut = |blocked: &mut Vec<bool>, a: usize, b: usize| {
        blocked[a * n + b] = true;
    };
    match sim.rng.below(4) {
        0 => {
            let victim = sim.leader().filter(|_| sim.rng.chance(0.6));
            let victim = victim.unwrap_or_else(|| sim.rng.below(n as u64) as usize);
            for other in (0..n).filter(|o| *o != victim) {
                cut(&mut blocked, victim, other);
                cut(&mut blocked, other, victim);
            }
            (blocked, format!("isolate n{}", victim + 1))
        }
        1 => {
            let order = shuffled(sim, n);
            let minority = 1 + sim.rng.below((n as u64 - 1) / 2 + 1) as usize;
            let minority = minority.min(n - 1);
            let (small, large) = order.split_at(minority);
            for a in small {
                for b in large {
                    cut(&mut blocked, *a, *b);
                    cut(&mut blocked, *b, *a);
                }
            }
            (
                blocked,
                format!("split {} | {}", names(small), names(large)),
            )
        }
        2 => {
            let victim = sim.rng.below(n as u64) as usize;
            let inbound = sim.rng.chance(0.5);
            for other in (0..n).filter(|o| *o != victim) {
                if inbound {
                    cut(&mut blocked, other, victim);
                } else {
                    cut(&mut blocked, victim, other);
                }
            }
            let direction = if inbound {
                "receives nothing"
            } else {
                "sends nothing"
            };
            (blocked, format!("one-way: n{} {direction}", victim + 1))
        }
        _ => {
            let order = shuffled(sim, n);
            let bridge = order[0];
            let rest = &order[1..];
            let (left, right) = rest.split_at(rest.len() / 2);
            for a in left {
                for b in right {
                    cut(&mut blocked, *a, *b);
                    cut(&mut blocked, *b, *a);
                }
            }
            let description = format!(
                "bridge n{} between {} and {}",
                bridge + 1,
                names(left),
                names(right)
            );
            (blocked, description)
        }
    }
}

fn shuffled<H: Harness>(sim: &mut Simulation<'_, H>, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for k in (1..n).rev() {
        let j = sim.rng.below(k as u64 + 1) as usize;
        order.swap(k, j);
    }
    order
}

fn names(nodes: &[usize]) -> String {
    let names: Vec<String> = nodes.iter().map(|i| format!("n{}", i + 1)).collect();
    format!("{{{}}}", names.join(","))
}
