//! Scenario tests for chain replication, in the order of the module docs' steps, on scripted
//! clusters whose messages move only when a test says so.

use super::*;
use crate::primary_backup::testkit::*;
use crate::primary_backup::{Message, PrepareResult, Timer};
use quorate_core::{ClientError, Input, Output, Protocol, ReadMode, Role};
use std::time::Duration;

/// A chain of `size` with n1 at its head, every member in it, in id order.
fn chain(size: u64, craq: bool) -> Cluster {
    let mut c = Cluster::new(size, config(craq));
    let all: Vec<u64> = (1..=size).collect();
    c.elect(1, &all);
    c.exchange(&all);
    c
}

#[test]
fn step1_the_chain_runs_from_the_winner_through_the_most_up_to_date_first() {
    let answers = BTreeMap::from([
        (n(1), (0, 0)),
        (n(2), (1, 5)),
        (n(3), (2, 1)),
        (n(4), (1, 5)),
    ]);
    assert_eq!(order_chain(n(2), &answers), vec![n(2), n(3), n(4), n(1)]);
}

#[test]
fn step1_a_chain_holds_everyone_who_answered_in_time() {
    let c = chain(3, false);
    assert_eq!(c.nodes[&1].group(), &[n(1), n(2), n(3)]);
    assert!(c.nodes[&3].is_tail());
    assert_eq!(
        c.nodes[&2].group(),
        c.nodes[&1].group(),
        "every member learned the chain"
    );
}

#[test]
fn step1_members_that_do_not_answer_before_the_gather_timeout_are_left_out() {
    let mut c = Cluster::new(5, config(false));
    c.crash(5);
    c.elect(1, &[1, 2, 3, 4]);
    assert_eq!(c.nodes[&1].group().len(), 4, "n5 is down: a chain of four");
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[test]
fn steps2_3_a_write_flows_down_and_the_tail_commits_and_answers_it() {
    let mut c = chain(3, false);
    c.request(1, put(7, 1, "k", "v"));
    // Head to middle only: nothing is committed, nobody answers.
    c.deliver_while(|from, to, m| from == 1 && to == 2 && matches!(m, Message::Prepare { .. }));
    assert!(c.replies_to(7, 1).is_empty());
    assert_eq!(
        c.nodes[&2].commit_number(),
        1,
        "only the ViewStart entry is committed"
    );
    // The middle forwards to the tail, which commits and answers once its copy is on disk.
    c.deliver_while(|from, to, m| from == 2 && to == 3 && matches!(m, Message::Prepare { .. }));
    assert_eq!(
        c.replies_to(7, 1),
        vec![(
            3,
            quorate_core::Reply {
                client: quorate_core::ClientId(7),
                seq: 1,
                result: Ok(Output::Done),
            }
        )]
    );
    assert_eq!(c.nodes[&3].commit_number(), 2);
    // The commit number flows back; the head answers too, and everyone applied.
    c.exchange(&[1, 2, 3]);
    assert_eq!(c.replies_to(7, 1).len(), 2);
    for id in 1..=3 {
        assert_eq!(c.nodes[&id].commit_number(), 2, "n{id}");
    }
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[test]
fn step3_the_tail_commits_only_what_is_on_its_disk() {
    use crate::primary_backup::{Entry, Payload, Record};
    use quorate_core::Effect;
    let mut r = replica(3, 3, config(false));
    let prepare = Message::Prepare {
        view: 1,
        group: vec![n(1), n(2), n(3)].into(),
        prev_op: 0,
        prev_view: 0,
        entries: vec![Entry {
            op: 1,
            view: 1,
            payload: Payload::ViewStart,
        }],
        commit: 0,
    };
    let effects = deliver(&mut r, 2, prepare);
    assert_eq!(r.commit_number(), 0, "not before the entry is on disk");
    let persist = effects
        .iter()
        .position(|e| matches!(e, Effect::Persist(Record::Entries(_))))
        .expect("persisted");
    let durable = Timer::Durable { op: 1, view: 1 };
    let notification = effects
        .iter()
        .position(|e| matches!(e, Effect::SetTimer { timer, .. } if *timer == durable))
        .expect("asks to be told when it is on disk");
    assert!(
        persist < notification,
        "the notification waits behind the persist"
    );
    step(&mut r, Input::Timer(durable));
    assert_eq!(r.commit_number(), 1);
}

#[test]
fn step2_a_node_forwards_only_what_it_has_verified() {
    use crate::primary_backup::{Entry, Payload};
    let mut r = replica(2, 3, config(false));
    let group: crate::primary_backup::Group = vec![n(1), n(2), n(3)].into();
    let entry = |op| Entry {
        op,
        view: 1,
        payload: Payload::ViewStart,
    };
    // View 1: n2 holds ops 1 to 3 of n1.
    let prepare = Message::Prepare {
        view: 1,
        group: group.clone(),
        prev_op: 0,
        prev_view: 0,
        entries: vec![entry(1), entry(2), entry(3)],
        commit: 0,
    };
    deliver(&mut r, 1, prepare);
    // View 2 begins; its head kept only op 1 of view 1 and vouches for nothing after it yet.
    deliver(
        &mut r,
        1,
        Message::StartViewChange {
            view: 2,
            last_op: 3,
            last_view: 1,
        },
    );
    let heartbeat = Message::Prepare {
        view: 2,
        group,
        prev_op: 1,
        prev_view: 1,
        entries: vec![],
        commit: 0,
    };
    let effects = deliver(&mut r, 1, heartbeat);
    assert_eq!(
        r.last_op(),
        3,
        "ops 2 and 3 are still in the log, unverified"
    );
    for (to, msg) in sends(&effects) {
        if let Message::Prepare {
            entries, prev_op, ..
        } = msg
        {
            assert_eq!(to, n(3));
            let ops: Vec<u64> = entries.iter().map(|e| e.op).collect();
            assert!(
                prev_op <= 1 && ops.iter().all(|op| *op <= 1),
                "forwarded {ops:?}"
            );
        }
    }
}

#[test]
fn step4_the_head_cuts_out_a_silent_member_with_a_new_view() {
    let mut c = chain(3, false);
    c.crash(2);
    // The head notices only once the member was silent for longer than member_timeout.
    c.now = c.now + Duration::from_millis(200);
    c.tick(1);
    assert_eq!(c.nodes[&1].view(), 1, "not yet");
    c.now = c.now + Duration::from_millis(200);
    c.tick(1);
    assert_eq!(
        c.nodes[&1].status().role,
        Role::Candidate,
        "the head asks for view 2"
    );
    c.exchange(&[1, 3]);
    c.step(1, Input::Timer(Timer::Gather));
    c.exchange(&[1, 3]);
    assert!(c.nodes[&1].is_primary());
    assert_eq!(c.nodes[&1].group(), &[n(1), n(3)], "n2 is out");
    assert_eq!(c.nodes[&1].stats().chain_repairs, 1);
    // Writes flow again, through the repaired chain.
    c.request(1, put(7, 1, "k", "v"));
    c.exchange(&[1, 3]);
    assert!(c
        .replies_to(7, 1)
        .iter()
        .any(|(id, r)| *id == 3 && r.result == Ok(Output::Done)));
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[test]
fn step4_a_member_silent_for_exactly_member_timeout_is_not_yet_cut_out() {
    let mut c = chain(3, false);
    let timeout = c.nodes[&1].config.member_timeout;
    c.crash(2);
    // n2 was last heard at `now`; "silent" means silent for longer than member_timeout.
    c.now = c.now + timeout;
    c.tick(1);
    assert_eq!(
        c.nodes[&1].view(),
        1,
        "silent for exactly member_timeout: not yet"
    );
    assert_eq!(c.nodes[&1].stats().chain_repairs, 0);
    c.now = c.now + Duration::from_millis(1);
    c.tick(1);
    assert_eq!(c.nodes[&1].stats().chain_repairs, 1, "a moment later it is");
    assert_eq!(c.nodes[&1].status().role, Role::Candidate);
}

#[test]
fn step4_a_failed_tail_is_cut_out_and_its_predecessor_becomes_the_tail() {
    let mut c = chain(3, false);
    c.crash(3);
    c.now = c.now + Duration::from_millis(400);
    c.tick(1);
    c.exchange(&[1, 2]);
    c.step(1, Input::Timer(Timer::Gather));
    c.exchange(&[1, 2]);
    assert_eq!(c.nodes[&1].group(), &[n(1), n(2)]);
    assert!(c.nodes[&2].is_tail());
    c.request(1, put(7, 1, "k", "v"));
    c.exchange(&[1, 2]);
    assert!(c
        .replies_to(7, 1)
        .iter()
        .any(|(id, r)| *id == 2 && r.result == Ok(Output::Done)));
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[test]
fn step4_a_failed_head_is_replaced_by_an_election_among_the_rest() {
    let mut c = chain(3, false);
    c.request(1, put(7, 1, "k", "v"));
    c.exchange(&[1, 2, 3]);
    c.crash(1);
    // Without pings from the head, n2's view-change timer fires; n3 votes for it.
    c.elect(2, &[2, 3]);
    assert_eq!(c.nodes[&2].group(), &[n(2), n(3)]);
    c.request(2, put(7, 2, "k", "w"));
    c.exchange(&[2, 3]);
    assert!(c
        .replies_to(7, 2)
        .iter()
        .any(|(id, r)| *id == 3 && r.result == Ok(Output::Done)));
    c.request(3, get(8, "k", ReadMode::Linearizable));
    c.exchange(&[2, 3]);
    assert_eq!(
        c.replies.last().map(|(_, r)| r.result.clone()),
        Some(Ok(value("w")))
    );
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[test]
fn step4_a_standby_that_answers_pings_is_taken_back() {
    let mut c = Cluster::new(3, config(false));
    c.crash(3);
    c.elect(1, &[1, 2]);
    assert_eq!(c.nodes[&1].group(), &[n(1), n(2)]);
    c.restart(3);
    c.tick(1);
    c.exchange(&[1, 2, 3]);
    assert_eq!(
        c.nodes[&3].primary(),
        Some(n(1)),
        "the standby knows the head"
    );
    assert!(!c.nodes[&3].group().is_empty() && !c.nodes[&3].is_tail());
    c.now = c.now + Duration::from_millis(600);
    c.tick(1);
    c.exchange(&[1, 2, 3]);
    c.step(1, Input::Timer(Timer::Gather));
    c.exchange(&[1, 2, 3]);
    assert_eq!(c.nodes[&1].view(), 2);
    assert_eq!(c.nodes[&1].group().len(), 3, "n3 is back");
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[test]
fn step5_reads_go_to_the_tail_which_answers_after_a_confirmation_round() {
    let mut c = chain(3, false);
    c.request(1, put(7, 1, "k", "v"));
    c.exchange(&[1, 2, 3]);
    c.request(2, get(8, "k", ReadMode::Linearizable));
    assert_eq!(
        c.replies.last().map(|(_, r)| r.result.clone()),
        Some(Err(ClientError::NotLeader { leader: Some(n(3)) })),
        "a middle node sends reads to the tail"
    );
    c.request(3, get(8, "k", ReadMode::Linearizable));
    let answered = |c: &Cluster| c.replies.iter().filter(|(_, r)| r.client.0 == 8).count();
    assert_eq!(answered(&c), 1, "the tail waits for its round");
    c.exchange(&[1, 2, 3]);
    assert_eq!(answered(&c), 2);
    assert_eq!(
        c.replies.last().map(|(_, r)| r.result.clone()),
        Some(Ok(value("v")))
    );
}

#[test]
fn step6_craq_answers_a_clean_key_at_any_node_without_the_tail() {
    let mut c = chain(3, true);
    c.request(1, put(7, 1, "k", "v"));
    c.exchange(&[1, 2, 3]);
    c.request(2, get(8, "k", ReadMode::Linearizable));
    // Only the confirmation round moves: no version query to the tail.
    assert!(!c
        .network
        .iter()
        .any(|(_, _, m)| matches!(m, Message::VersionQuery { .. })));
    c.exchange(&[1, 2, 3]);
    assert_eq!(
        c.replies.last(),
        Some(&(
            2,
            quorate_core::Reply {
                client: quorate_core::ClientId(8),
                seq: 0,
                result: Ok(value("v")),
            }
        ))
    );
    assert_eq!(c.nodes[&2].stats().craq_clean_reads, 1);
}

/// A CRAQ chain of 3 where a write of "k" reached the middle node but not the tail ("k" is
/// dirty at n2), and a linearizable read of "k" at n2 has sent its version query to the tail.
fn dirty_read_at_the_middle() -> Cluster {
    let mut c = chain(3, true);
    c.request(1, put(7, 1, "k", "v"));
    c.deliver_while(|from, to, m| from == 1 && to == 2 && matches!(m, Message::Prepare { .. }));
    c.network.retain(|(from, to, _)| !(*from == 2 && *to == 3));
    c.request(2, get(8, "k", ReadMode::Linearizable));
    assert_eq!(c.nodes[&2].stats().craq_dirty_reads, 1);
    c
}

#[test]
fn step6_craq_asks_the_tail_about_a_dirty_key() {
    let mut c = dirty_read_at_the_middle();
    let query = c
        .network
        .iter()
        .find(|(_, to, m)| *to == 3 && matches!(m, Message::VersionQuery { .. }))
        .cloned()
        .expect("the tail is asked");
    // The tail has not seen the write: its committed version is the one before it.
    c.network
        .retain(|(_, _, m)| !matches!(m, Message::Prepare { .. }));
    let (from, to, msg) = query;
    c.network
        .retain(|(_, _, m)| !matches!(m, Message::VersionQuery { .. }));
    c.step(to, Input::Message { from: n(from), msg });
    c.exchange(&[2, 3]);
    assert_eq!(
        c.replies.last().map(|(_, r)| r.result.clone()),
        Some(Ok(Output::Value(None))),
        "the read sees the committed state, not the dirty write"
    );
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[test]
fn the_tail_refuses_an_older_view_and_names_the_newer_one() {
    let mut r = replica(3, 3, config(false));
    hear_view_change(&mut r, 2, 2);
    let stale = Message::Prepare {
        view: 1,
        group: vec![n(1), n(2), n(3)].into(),
        prev_op: 0,
        prev_view: 0,
        entries: vec![],
        commit: 0,
    };
    let effects = deliver(&mut r, 2, stale);
    assert_eq!(
        sends(&effects),
        vec![(
            n(2),
            Message::PrepareOk {
                view: 2,
                result: PrepareResult::StaleView,
                commit: 0
            }
        )]
    );
}

#[test]
fn a_ping_of_an_older_view_is_refused_with_the_newer_one_and_counted() {
    let mut r = replica(3, 3, config(false));
    hear_view_change(&mut r, 2, 2);
    let stale = Message::Ping {
        view: 1,
        group: vec![n(1), n(2), n(3)].into(),
        commit: 0,
    };
    let effects = deliver(&mut r, 1, stale);
    assert_eq!(sends(&effects), vec![(n(1), Message::PingOk { view: 2 })]);
    assert_eq!(r.stats().stale_refused, 1);
}

/// A chain of three whose tail `n3` has compacted its log into a snapshot of view 1 (op 2,
/// `k = old`) and then committed and answered `k = new` (op 3), but whose report of it up the
/// chain was lost: the head still believes op 2 is the last committed. Then `n3` crashes and
/// restarts, still in view 1, with op 3 on its disk.
fn tail_restarted_after_answering(config: ReplicaConfig) -> Cluster {
    let mut c = Cluster::new(3, config);
    c.elect(1, &[1, 2, 3]);
    c.exchange(&[1, 2, 3]);
    c.request(1, put(7, 1, "k", "old"));
    c.exchange(&[1, 2, 3]);
    c.tick(3);
    assert_eq!(c.nodes[&3].first_op(), 3, "n3 compacted through op 2");
    c.request(1, put(7, 2, "k", "new"));
    c.deliver_while(|from, to, m| to == from + 1 && matches!(m, Message::Prepare { .. }));
    assert!(
        c.replies_to(7, 2)
            .iter()
            .any(|(id, r)| *id == 3 && r.result == Ok(Output::Done)),
        "the tail answered the write"
    );
    assert_eq!(c.nodes[&1].commit_number(), 2, "the head has not heard");
    c.crash(3);
    c.restart(3);
    assert_eq!(c.nodes[&3].last_op(), 3, "op 3 was on n3's disk");
    c
}

/// The head's heartbeat makes the restarted `n3` the tail of view 1 again (with the head's
/// commit number, 2); then `n3` serves a linearizable read of `k`. Returns what it answered.
fn read_at_restarted_tail(c: &mut Cluster) -> Vec<Result<Output, ClientError>> {
    c.tick(1);
    c.deliver_while(|from, to, m| from == 1 && to == 3 && matches!(m, Message::Ping { .. }));
    assert!(c.nodes[&3].is_tail());
    c.request(3, get(8, "k", ReadMode::Linearizable));
    c.exchange(&[1, 3]);
    c.replies_to(8, 0)
        .into_iter()
        .map(|(_, r)| r.result)
        .collect()
}

/// Issue 22 (seed 100212 of the hot-key sweep `--nodes 3 --clients 12 --keys 1 --duration
/// 20s`): a tail that restarts rejoins its own view as its tail when the head's next Ping
/// arrives. Its committed state went back to its snapshot, and that snapshot is of the current
/// view, so "an entry of my view is committed" held at once: it answered a read from the
/// snapshot after acknowledging a newer write. The fix (step 5 of the module docs): a restarted
/// replica's log is verified through its last entry of its view, and a tail that learns its
/// chain commits what it holds before serving.
#[test]
fn step5_a_tail_restarted_in_its_view_reads_at_least_what_it_acknowledged() {
    let mut config = config(false);
    config.snapshot_threshold = 2;
    let mut c = tail_restarted_after_answering(config);
    assert_eq!(
        read_at_restarted_tail(&mut c),
        vec![Ok(value("new"))],
        "a read after the acknowledged write sees it"
    );
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

/// The broken variant of issue 22 (the code before the fix) fails the scenario above: the
/// restarted tail answers from its snapshot.
#[cfg(feature = "bugs")]
#[test]
fn step5_a_restarted_tail_that_forgets_what_it_acknowledged_reads_the_snapshot() {
    let mut config = config(false);
    config.snapshot_threshold = 2;
    config.bug = Some(Bug::RestartForgetsAcknowledged);
    let mut c = tail_restarted_after_answering(config);
    assert_eq!(
        read_at_restarted_tail(&mut c),
        vec![Ok(value("old"))],
        "a stale read"
    );
}

#[test]
fn step6_craq_the_tail_answers_a_version_query_of_its_view_and_refuses_an_older_one() {
    let mut c = chain(3, true);
    c.request(1, put(7, 1, "k", "v"));
    c.exchange(&[1, 2, 3]);
    let commit = c.nodes[&3].commit_number();
    assert_eq!(commit, 2, "the ViewStart entry and the put");
    let query = Message::VersionQuery { view: 1, id: 9 };
    c.step(
        3,
        Input::Message {
            from: n(2),
            msg: query,
        },
    );
    let reply = Message::VersionReply {
        view: 1,
        id: 9,
        commit,
    };
    assert_eq!(c.network, vec![(3, 2, reply)]);
    assert_eq!(c.nodes[&3].stats().stale_refused, 0);
    // A query of an older view is refused with the newer view and no commit number: the
    // asker was deposed, and a commit number of a view it is not in must not reach it (it
    // would accept an answer stamped with its own view).
    let mut r = replica(3, 3, config(true));
    hear_view_change(&mut r, 2, 2);
    let effects = deliver(&mut r, 1, Message::VersionQuery { view: 1, id: 10 });
    let refusal = Message::VersionReply {
        view: 2,
        id: 10,
        commit: 0,
    };
    assert_eq!(sends(&effects), vec![(n(1), refusal)]);
    assert_eq!(r.stats().stale_refused, 1);
}

/// The case the fencing above exists for: a CRAQ middle node cut off with an entry of view 1
/// that the tail never got (op 2, `k = a`), while three of five form view 2 without it and
/// commit ops 2 (their ViewStart) and 3 (`k = b`). A dirty read of `k` at the deposed node
/// asks its old tail, now view 2's tail: the refusal names view 2, the read is refused, and
/// the node commits nothing. Answered instead with its own view and the tail's commit number,
/// it would commit its op 2 of view 1, a write that view 2 discarded ("committed prefix
/// agreement").
#[test]
fn step6_craq_a_deposed_nodes_version_query_does_not_commit_what_the_newer_view_discarded() {
    let mut c = chain(5, true);
    c.request(1, put(7, 1, "k", "a"));
    c.deliver_while(|from, to, m| from == 1 && to == 2 && matches!(m, Message::Prepare { .. }));
    c.network
        .retain(|(from, to, _)| ![1, 2].contains(from) && ![1, 2].contains(to));
    c.elect(3, &[3, 4, 5]);
    assert_eq!(c.nodes[&3].group(), &[n(3), n(4), n(5)]);
    c.request(3, put(9, 1, "k", "b"));
    c.exchange(&[3, 4, 5]);
    assert_eq!(c.nodes[&5].commit_number(), 3);
    assert_eq!(
        c.nodes[&2].commit_number(),
        1,
        "op 2 of view 1 is not committed"
    );
    c.request(2, get(8, "k", ReadMode::Linearizable));
    let query = c
        .network
        .iter()
        .find(|(from, to, m)| *from == 2 && *to == 5 && matches!(m, Message::VersionQuery { .. }))
        .cloned()
        .expect("the dirty read asks n2's tail, n5");
    c.network.clear();
    let (_, _, msg) = query;
    c.step(5, Input::Message { from: n(2), msg });
    c.deliver_while(|from, to, _| from == 5 && to == 2);
    assert_eq!(c.nodes[&2].commit_number(), 1);
    let refused = Err(ClientError::NotLeader { leader: None });
    assert_eq!(
        c.replies_to(8, 0).last().map(|(_, r)| r.result.clone()),
        Some(refused)
    );
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[test]
fn step4_a_live_standby_is_taken_back_only_once_the_chain_settled_even_with_a_shorter_rejoin_after()
{
    // rejoin_after below member_timeout: the head still gives its new chain member_timeout
    // to settle before any repair, a standby's return included.
    let config = ReplicaConfig {
        rejoin_after: Duration::from_millis(100),
        ..config(false)
    };
    let timeout = config.member_timeout;
    let mut c = Cluster::new(3, config);
    c.crash(3);
    c.elect(1, &[1, 2]);
    let began = c.nodes[&1].view_began;
    c.restart(3);
    c.tick(1);
    c.exchange(&[1, 2, 3]);
    assert_eq!(
        c.nodes[&3].primary(),
        Some(n(1)),
        "the standby answers the head"
    );
    c.now = began + Duration::from_millis(200);
    c.tick(1);
    c.exchange(&[1, 2, 3]);
    assert_eq!(c.nodes[&1].view(), 1, "settling: no repair yet");
    assert_eq!(c.nodes[&1].stats().chain_repairs, 0);
    c.now = began + timeout;
    c.tick(1);
    assert_eq!(
        c.nodes[&1].stats().chain_repairs,
        1,
        "settled: n3 is taken back"
    );
    assert_eq!(c.nodes[&1].status().role, Role::Candidate);
}

#[test]
fn step6_craq_asks_the_tail_again_at_the_next_tick_when_a_version_query_is_lost() {
    // n2's query about its dirty "k" to the tail is lost.
    let mut c = dirty_read_at_the_middle();
    let queries = |c: &Cluster| -> Vec<(u64, u64, Message)> {
        c.network
            .iter()
            .filter(|(_, _, m)| matches!(m, Message::VersionQuery { .. }))
            .cloned()
            .collect()
    };
    let lost = queries(&c);
    assert_eq!(lost.len(), 1, "{lost:?}");
    c.network.clear();
    c.tick(2);
    assert_eq!(queries(&c), lost, "the same query, to the tail, again");
    // The tail has not seen the write: the read sees the committed state.
    c.network
        .retain(|(_, _, m)| !matches!(m, Message::Prepare { .. }));
    c.exchange(&[2, 3]);
    assert_eq!(
        c.replies.last().map(|(_, r)| r.result.clone()),
        Some(Ok(Output::Value(None)))
    );
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}
