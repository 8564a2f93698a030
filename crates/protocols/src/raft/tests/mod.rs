//! Scenario tests: feed one node exact inputs and assert the exact effects, in files named
//! after where the behaviour is described: `paper.rs` (the 2014 paper, Figure 2 Raft),
//! `election.rs` (pre-vote and check-quorum, thesis §9.6, §6.2, §4.2.3), `membership.rs`
//! (paper §6, thesis §4), `read.rs` (thesis §6.4), `transfer.rs` (thesis §3.10) and
//! `flow.rs` (flow control and chunked snapshots, §7).

use super::*;
pub(super) use crate::effects::{persists, replies, sends};
use quorate_core::{AdminCommand, AdminRequest, ClientId, Effect, Invariants, Op, Output, Reply};

mod election;
mod flow;
mod membership;
mod paper;
mod read;
mod transfer;

pub(super) fn n(id: u64) -> NodeId {
    NodeId(id)
}

pub(super) fn ms(millis: u64) -> Time {
    Time::from_nanos(millis * 1_000_000)
}

/// A started node of the bootstrap configuration `voters`, at time 0.
pub(super) fn node_with(id: u64, voters: &[u64], config: RaftConfig) -> Raft {
    let voters: Vec<NodeId> = voters.iter().copied().map(n).collect();
    let mut raft = Raft::new(n(id), &voters, config);
    let mut out = Effects::new();
    raft.step(Time::ZERO, Input::Start { recovered: vec![] }, &mut out);
    raft
}

/// Feeds `input` at time `now` and returns the effects, checking the node's invariants.
///
/// The test plays a driver whose disk is instant: a `Durable` message the node sends itself
/// (rule 6 of the protocol contract) is delivered back at once, and the effects that delivery
/// produces are appended in its place.
pub(super) fn step_at(raft: &mut Raft, now: Time, input: Input<Raft>) -> Vec<Effect<Raft>> {
    let effects = step_raw(raft, now, input);
    deliver_durable(raft, now, effects)
}

/// Feeds `input` without delivering the node's messages to itself (so that `events()` still
/// describes this step); pass the effects to [`deliver_durable`] afterwards.
pub(super) fn step_raw(raft: &mut Raft, now: Time, input: Input<Raft>) -> Vec<Effect<Raft>> {
    let mut out = Effects::new();
    raft.step(now, input, &mut out);
    raft.check_invariants();
    out.drain().collect()
}

/// Delivers the messages among `effects` that the node sent itself; returns the other effects
/// followed by what those deliveries produced.
pub(super) fn deliver_durable(
    raft: &mut Raft,
    now: Time,
    produced: Vec<Effect<Raft>>,
) -> Vec<Effect<Raft>> {
    let mut effects = Vec::new();
    for effect in produced {
        match effect {
            Effect::Send { to, msg } if to == raft.id() => {
                let from = raft.id();
                effects.extend(step_at(raft, now, Input::Message { from, msg }));
            }
            other => effects.push(other),
        }
    }
    effects
}

/// Feeds `input` at the node's current time.
pub(super) fn step(raft: &mut Raft, input: Input<Raft>) -> Vec<Effect<Raft>> {
    let now = raft.now;
    step_at(raft, now, input)
}

pub(super) fn deliver(raft: &mut Raft, from: u64, msg: Message) -> Vec<Effect<Raft>> {
    step(raft, Input::Message { from: n(from), msg })
}

pub(super) fn deliver_at(raft: &mut Raft, now: Time, from: u64, msg: Message) -> Vec<Effect<Raft>> {
    step_at(raft, now, Input::Message { from: n(from), msg })
}

pub(super) fn put(client: u64, seq: u64, key: &str, value: &str) -> Request {
    Request {
        client: ClientId(client),
        seq,
        op: Op::Put {
            key: key.as_bytes().to_vec().into(),
            value: value.as_bytes().to_vec().into(),
        },
        read: ReadMode::Linearizable,
        quorum: None,
    }
}

pub(super) fn get(client: u64, seq: u64, key: &str) -> Request {
    Request {
        client: ClientId(client),
        seq,
        op: Op::Get {
            key: key.as_bytes().to_vec().into(),
        },
        read: ReadMode::Linearizable,
        quorum: None,
    }
}

pub(super) fn admin(client: u64, seq: u64, command: AdminCommand) -> Input<Raft> {
    Input::Admin(AdminRequest {
        client: ClientId(client),
        seq,
        command,
    })
}

pub(super) fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        payload: Payload::Noop,
    }
}

/// An AppendEntries of round 0.
pub(super) fn append(term: u64, prev: (u64, u64), entries: Vec<Entry>, commit: u64) -> Message {
    Message::AppendEntries {
        term,
        prev_log_index: prev.0,
        prev_log_term: prev.1,
        entries,
        leader_commit: commit,
        round: 0,
    }
}

pub(super) fn ack(term: u64, round: u64, match_index: u64) -> Message {
    Message::AppendEntriesResponse {
        term,
        round,
        result: AppendResult::Success { match_index },
    }
}

pub(super) fn vote_granted(term: u64) -> Message {
    Message::RequestVoteResponse {
        term,
        granted: true,
    }
}

/// Node 1 of a cluster of `voters`, elected leader of term 1 with the votes of every other
/// voter, at time 0, without pre-vote. Its no-op (index 1) is not yet acknowledged.
pub(super) fn leader_of(voters: &[u64], config: RaftConfig) -> Raft {
    let config = RaftConfig {
        pre_vote: false,
        ..config
    };
    let mut raft = node_with(1, voters, config);
    step(&mut raft, Input::Timer(Timer::Election));
    for voter in voters.iter().filter(|v| **v != 1) {
        deliver(&mut raft, *voter, vote_granted(1));
    }
    assert!(raft.is_leader());
    raft
}

/// Like [`leader_of`], with the no-op acknowledged by every follower: the leader has
/// committed an entry of its term.
pub(super) fn settled_leader_of(voters: &[u64], config: RaftConfig) -> Raft {
    let mut raft = leader_of(voters, config);
    for voter in voters.iter().filter(|v| **v != 1) {
        deliver(&mut raft, *voter, ack(1, 0, 1));
    }
    assert_eq!(raft.commit_index(), 1);
    raft
}

pub(super) fn ok_reply(client: u64, seq: u64, output: Output) -> Reply {
    Reply {
        client: ClientId(client),
        seq,
        result: Ok(output),
    }
}

pub(super) fn err_reply(client: u64, seq: u64, error: ClientError) -> Reply {
    Reply {
        client: ClientId(client),
        seq,
        result: Err(error),
    }
}

/// Each of the node's own invariants (`check_invariants`, `check_leader_invariants`) fires on
/// a copy of a settled leader put into the state it forbids, with its own message; the
/// uncorrupted leader passes.
#[test]
fn each_invariant_of_the_node_fires_on_the_state_it_forbids() {
    use crate::effects::invariant_fired as fired;
    let leader = settled_leader_of(&[1, 2, 3], RaftConfig::default());
    leader.check_invariants();
    assert_eq!((leader.last_applied, leader.commit_index), (1, 1));
    assert_eq!(
        fired(&leader, |node| node.last_applied = 2),
        "applied beyond commit"
    );
    assert_eq!(
        fired(&leader, |node| node.commit_index = 2),
        "committed beyond the log"
    );
    let snapshot_ahead = |node: &mut Raft| {
        let mut snapshot = (**node.log.snapshot()).clone();
        snapshot.last_index = 1;
        snapshot.last_term = 1;
        node.log.install(Arc::new(snapshot));
        node.last_applied = 0;
    };
    assert_eq!(
        fired(&leader, snapshot_ahead),
        "snapshot ahead of the state machine"
    );
    // Index 1 holds the leader's no-op, not a configuration.
    assert_eq!(
        fired(&leader, |node| node.membership_index = 1),
        "the configuration in force is in the log"
    );
    let candidate = |node: &mut Raft| {
        node.role = RoleState::Candidate {
            votes: BTreeSet::new(),
            transfer: false,
        };
        node.vote = Some(n(2));
    };
    assert!(fired(&leader, candidate).contains("a candidate voted for itself"));
    let pre_candidate = |node: &mut Raft| {
        node.role = RoleState::PreCandidate {
            votes: BTreeSet::from([n(2)]),
        };
    };
    assert_eq!(
        fired(&leader, pre_candidate),
        "a pre-candidate counts itself"
    );
    assert!(fired(&leader, |node| node.vote = Some(n(2))).contains("a leader voted for itself"));
    assert!(fired(&leader, |node| node.leader = Some(n(2))).contains("a leader knows it leads"));
    fn progress(node: &mut Raft) -> &mut progress::Progress {
        let RoleState::Leader(leader) = &mut node.role else {
            panic!("a leader");
        };
        leader.progress.get_mut(&n(2)).expect("tracked")
    }
    let untracked = |node: &mut Raft| {
        let RoleState::Leader(leader) = &mut node.role else {
            panic!("a leader");
        };
        leader.progress.remove(&n(3));
    };
    assert_eq!(fired(&leader, untracked), "the leader tracks every member");
    let next_at_match = |node: &mut Raft| {
        let p = progress(node);
        p.match_index = p.next_index;
    };
    assert_eq!(
        fired(&leader, next_at_match),
        "next_index is past match_index"
    );
    let over_bound = |node: &mut Raft| {
        let inflight_max = node.config.inflight_max as u64;
        let p = progress(node);
        p.inflight = (1..=inflight_max + 1).map(|index| (index, 0)).collect();
        p.inflight_bytes = 0;
    };
    assert_eq!(fired(&leader, over_bound), "inflight over its bound");
    assert!(
        fired(&leader, |node| progress(node).inflight_bytes += 1).contains("inflight bytes add up")
    );
}

/// Node `id` of {1, 2, 3, 4} after it stored `entries` from leader 1 of term 2, and the
/// effects of that step.
fn follower_that_stored(id: u64, entries: Vec<Entry>) -> (Raft, Vec<Effect<Raft>>) {
    let mut node = node_with(id, &[1, 2, 3, 4], RaftConfig::default());
    let effects = deliver(&mut node, 1, append(2, (0, 0), entries, 0));
    (node, effects)
}

/// The checker's Log Matching (Figure 3), fed the effects of real steps: a second node that
/// persists the same entries passes; one that persists another command at the same (index,
/// term), or the same no-op after an entry of another term, is reported.
#[test]
fn the_checker_reports_two_nodes_holding_different_entries_at_one_index_and_term() {
    let mut safety = RaftSafety::new();
    let mut check = |id: u64, entries: Vec<Entry>| {
        let (node, effects) = follower_that_stored(id, entries);
        safety.after_step(n(id), &node, &effects)
    };
    check(2, vec![entry(1, 1), entry(2, 2)]).expect("the first copy");
    check(3, vec![entry(1, 1), entry(2, 2)]).expect("the same entries again");
    let put_at_1 = Entry {
        index: 1,
        term: 1,
        payload: Payload::Command(put(9, 1, "k", "v").command()),
    };
    let violation = check(4, vec![put_at_1]).expect_err("another command at (1, term 1)");
    assert_eq!(violation.property, "log matching");
    assert!(
        violation
            .detail
            .starts_with("n4 holds entry (1, term 1) with previous term 0 and digest"),
        "{violation:?}"
    );
    // The no-op at (2, term 2) is the same entry, but the entry before it is of term 2 here
    // and of term 1 at nodes 2 and 3.
    let violation = check(4, vec![entry(1, 2), entry(2, 2)]).expect_err("another entry before");
    assert_eq!(violation.property, "log matching");
    assert!(
        violation
            .detail
            .starts_with("n4 holds entry (2, term 2) with previous term 2 and digest"),
        "{violation:?}"
    );
    assert!(
        violation.detail.contains("another node holds (term 1,"),
        "{violation:?}"
    );
}

/// The checker's Leader Completeness (Figure 3): a leader of a later term must hold every
/// committed entry with its term, not merely an entry with the same payload. Node 1's no-op of
/// term 1 is committed; node 2, elected in term 2 without it, holds its own no-op (the same
/// payload) at index 1, and is reported.
#[test]
fn the_checker_reports_a_new_leader_holding_another_terms_noop_at_a_committed_index() {
    let mut safety = RaftSafety::new();
    let leader = settled_leader_of(&[1, 2, 3], RaftConfig::default());
    safety
        .after_step(n(1), &leader, &[])
        .expect("leader 1 of term 1");
    assert_eq!(safety.committed_len(), 1);
    let config = RaftConfig {
        pre_vote: false,
        ..RaftConfig::default()
    };
    let mut node = node_with(2, &[1, 2, 3], config);
    step(&mut node, Input::Timer(Timer::Election));
    step(&mut node, Input::Timer(Timer::Election));
    let effects = deliver(&mut node, 3, vote_granted(2));
    assert!(node.is_leader());
    assert_eq!(node.log.entry(1), Some(&entry(1, 2)));
    let violation = safety
        .after_step(n(2), &node, &effects)
        .expect_err("a leader without the committed entry (1, term 1)");
    assert_eq!(violation.property, "leader completeness");
    assert_eq!(
        violation.detail,
        "n2 became leader of term 2 without committed entry (1, term 1); it holds Some(2)"
    );
}

/// The broken variant `FollowerIgnoresExpiry` is the followers' alone: a follower applying a
/// committed `Expired` entry keeps the key, where a correct one removes it.
#[cfg(feature = "bugs")]
#[test]
fn a_follower_that_ignores_expiry_keeps_a_key_whose_expired_entry_committed() {
    let key: quorate_core::Key = "k".as_bytes().to_vec().into();
    let deadline = ms(5);
    let command = |index: u64, op: Op| Entry {
        index,
        term: 1,
        payload: Payload::Command(quorate_core::Command {
            client: ClientId(9),
            seq: 0,
            op,
        }),
    };
    let entries = vec![
        command(
            1,
            Op::PutExpiring {
                key: key.clone(),
                value: "v".as_bytes().to_vec().into(),
                expiry: quorate_core::Expiry::At { deadline },
            },
        ),
        command(
            2,
            Op::Expired {
                key: key.clone(),
                deadline,
            },
        ),
    ];
    for (bug, kept) in [(None, false), (Some(Bug::FollowerIgnoresExpiry), true)] {
        let mut node = node_with(
            2,
            &[1, 2, 3],
            RaftConfig {
                bug,
                ..RaftConfig::default()
            },
        );
        deliver(&mut node, 1, append(1, (0, 0), entries.clone(), 2));
        assert_eq!(node.commit_index(), 2);
        assert_eq!(node.state_machine().get(b"k").is_some(), kept, "{bug:?}");
    }
}
