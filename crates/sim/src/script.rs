//! Scripted fault schedules: faults placed by a script instead of drawn at random.
//!
//! Random faults find bugs; they rarely tell a story. Some runs worth seeing need faults at
//! precise moments of the protocol's life — Raft's Figure 8 needs a leader to crash right after
//! its entry reached one follower, and another to win an election with a particular set of
//! votes. A [`Script`] is a list of steps run in order during the fault phase; each waits for
//! its [`Trigger`] (a delay after the previous step, or a node becoming leader of a term),
//! then acts ([`Action`]: set which links work, crash a node, restart one) and leaves its
//! sentence on the run's record, so the `--trace` and the `--html` page say why it happened.
//!
//! Which node wins an election is steered by the topology, not by timers: with pre-vote, a
//! node that can reach a majority only through one node (a *star* around it) cannot even
//! start an election, so the centre of the star is the only possible leader. Everything else
//! (timers, delays, fsync latencies) is still drawn from the seed, so a script is robust to
//! the seed rather than tuned to one.
//!
//! A script draws nothing from the run's random streams itself. Random faults still run if
//! `SimConfig::faults` asks for them; scenarios use `Faults::none()` so that only the script
//! acts.

use std::time::Duration;

/// A scripted fault schedule: steps run in order during the fault phase.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    pub steps: Vec<Step>,
}

/// One step: when it fires, what it does, and the sentence it leaves on the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub when: Trigger,
    pub action: Action,
    pub note: String,
}

/// When a step fires (armed once the step before it fired, or at the start of the run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// This long after the previous step fired (after the start, for the first step).
    After(Duration),
    /// As soon as node `node` (numbered from 1) is leader of term `term` — at the end of the
    /// step that made it leader, before anything it sent behind its persists has left.
    Leader { node: u64, term: u64 },
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Exactly these links work, in both directions; every other link between two different
    /// nodes drops everything (nodes numbered from 1).
    Links(Vec<(u64, u64)>),
    /// Every link works again.
    HealLinks,
    /// The node crashes (losing what it had not fsynced) and stays down until a later
    /// [`Action::Restart`] or the end of the fault phase.
    Crash(u64),
    /// The node restarts from what its disk kept (if it is down).
    Restart(u64),
    /// Nothing: the step only marks a moment with its sentence.
    Note,
}

impl Step {
    pub fn new(when: Trigger, action: Action, note: impl Into<String>) -> Step {
        Step {
            when,
            action,
            note: note.into(),
        }
    }
}

impl Action {
    /// The blocked-link matrix of [`Action::Links`] for `n` nodes (`blocked[from * n + to]`).
    pub fn blocked(links: &[(u64, u64)], n: usize) -> Vec<bool> {
        let mut blocked = vec![true; n * n];
        for i in 0..n {
            blocked[i * n + i] = false;
        }
        for &(a, b) in links {
            let (a, b) = (a as usize - 1, b as usize - 1);
            if a < n && b < n {
                blocked[a * n + b] = false;
                blocked[b * n + a] = false;
            }
        }
        blocked
    }
}

/// Links of a star around `centre` among `nodes`: the centre reaches every other node, no two
/// others reach each other (so only the centre can be elected, with pre-vote).
pub fn star(centre: u64, nodes: &[u64]) -> Vec<(u64, u64)> {
    nodes
        .iter()
        .filter(|n| **n != centre)
        .map(|n| (centre, *n))
        .collect()
}

/// Raft's Figure 8 (§5.4.2) on five nodes, step by step as the paper draws it:
///
/// - (a) n1 leads term 1 (its no-op at index 1 reaches everyone), crashes, and leads term 2;
///   its no-op at index 2 (term 2) reaches n2 only.
/// - (b) n1 crashes; n5 is elected for term 3 with the votes of n3, n4 and itself and appends
///   its no-op at index 2 (term 3), which reaches no one; n5 crashes.
/// - (c) n1 restarts and is elected for term 4 (by n2, n3, n4; its first try, term 3, fails:
///   n3 and n4 voted for n5 in term 3). It replicates its term-2 entry to n3 and n4: index 2 is
///   then on a majority, and n1 must not commit it by counting replicas — n5 could still be
///   elected (its last term, 3, beats theirs) and overwrite it. It commits index 2 only with
///   its own term-4 entry at index 3.
/// - (e) n5 comes back at the end of the fault phase; n1's log replaces its index 2.
///
/// The Raft configuration must carry one entry per AppendEntries (`entries_per_append_max =
/// 1`): otherwise n1 sends its term-2 entry and its term-4 no-op in one message, they reach a
/// majority together, and the moment of (c) never exists.
pub fn raft_figure8() -> Script {
    use Action::*;
    use Trigger::*;
    let all = [1, 2, 3, 4, 5];
    let ms = Duration::from_millis;
    Script {
        steps: vec![
            Step::new(
                After(ms(0)),
                Links(star(1, &all)),
                "script: a star around n1 (only n1 reaches a majority, so only n1 can be \
                 elected)",
            ),
            Step::new(
                Leader { node: 1, term: 1 },
                Note,
                "script: n1 leads term 1; its no-op (index 1, term 1) goes to everyone",
            ),
            Step::new(
                After(ms(100)),
                Crash(1),
                "script: n1 crashes (index 1 is committed everywhere)",
            ),
            Step::new(After(ms(400)), Restart(1), "script: n1 restarts"),
            Step::new(
                Leader { node: 1, term: 2 },
                Links(vec![(1, 2), (5, 3), (5, 4)]),
                "script: n1 leads term 2; cut it off from all but n2, so its no-op (index 2, \
                 term 2) reaches n2 only (Figure 8a); n3 and n4 now reach only n5",
            ),
            Step::new(
                After(ms(30)),
                Crash(1),
                "script: n1 crashes; index 2 (term 2) is on n1 and n2",
            ),
            Step::new(
                Leader { node: 5, term: 3 },
                Links(vec![(3, 4)]),
                "script: n5 leads term 3 (votes of n3, n4, n5); cut it off, so its no-op \
                 (index 2, term 3) stays on n5 (Figure 8b)",
            ),
            Step::new(
                After(ms(30)),
                Crash(5),
                "script: n5 crashes with index 2 of term 3 on its disk",
            ),
            Step::new(
                After(ms(50)),
                Links(star(1, &all)),
                "script: a star around n1 again",
            ),
            Step::new(After(ms(0)), Restart(1), "script: n1 restarts"),
            Step::new(
                Leader { node: 1, term: 4 },
                Note,
                "script: n1 leads term 4 (Figure 8c); watch it replicate index 2 (term 2) to \
                 n3 and n4 and withhold the commit until its term-4 no-op at index 3 is on a \
                 majority too",
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_block_everything_else_in_both_directions() {
        let blocked = Action::blocked(&[(1, 2)], 3);
        let at = |a: usize, b: usize| blocked[(a - 1) * 3 + (b - 1)];
        assert!(!at(1, 2) && !at(2, 1));
        assert!(at(1, 3) && at(3, 1) && at(2, 3) && at(3, 2));
        assert!(!at(1, 1) && !at(3, 3));
        assert_eq!(star(2, &[1, 2, 3]), vec![(2, 1), (2, 3)]);
    }
}
