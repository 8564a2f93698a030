//! Membership changes: joint consensus (paper §6), single-server changes (thesis §4.1),
//! learners (§4.2.1) and the removed leader (§4.2.2).

use super::*;
use std::collections::BTreeSet;

fn ids(list: &[u64]) -> BTreeSet<NodeId> {
    list.iter().copied().map(n).collect()
}

fn config_entry(index: u64, voters: &[u64], old: Option<&[u64]>, learners: &[u64]) -> Entry {
    Entry {
        index,
        term: 1,
        payload: Payload::Config(Membership {
            voters: ids(voters),
            old_voters: old.map(ids),
            learners: ids(learners),
            addresses: Default::default(),
        }),
    }
}

fn rejected(effects: &[Effect<Raft>]) -> String {
    match &replies(effects)[..] {
        [Reply {
            result: Err(ClientError::Rejected(why)),
            ..
        }] => why.clone(),
        other => panic!("expected one refusal, got {other:?}"),
    }
}

fn promptly() -> RaftConfig {
    RaftConfig {
        promotion_lag_max: 0,
        ..RaftConfig::default()
    }
}

/// A settled leader of {1, 2, 3} with learners 4 and 5 added and caught up through index 3.
fn leader_with_learners(config: RaftConfig) -> Raft {
    let mut raft = settled_leader_of(&[1, 2, 3], config);
    for (seq, learner) in [(1, 4), (2, 5)] {
        step(
            &mut raft,
            admin(7, seq, AdminCommand::AddLearner(n(learner))),
        );
        let effects = deliver(&mut raft, 2, ack(1, 0, seq + 1));
        assert_eq!(replies(&effects), vec![ok_reply(7, seq, Output::Done)]);
    }
    deliver(&mut raft, 4, ack(1, 0, 3));
    deliver(&mut raft, 5, ack(1, 0, 3));
    assert_eq!(raft.membership().learners, ids(&[4, 5]));
    raft
}

#[test]
fn s6_joint_consensus_needs_both_majorities_then_leaves_for_the_new_configuration() {
    let mut raft = leader_with_learners(promptly());
    let change = AdminCommand::ChangeMembership {
        voters: vec![n(1), n(4), n(5)],
    };
    let effects = step(&mut raft, admin(7, 3, change));
    let joint = config_entry(4, &[1, 4, 5], Some(&[1, 2, 3]), &[]);
    assert_eq!(
        persists(&effects),
        vec![Record::Entries(vec![joint.clone()])]
    );
    let to: Vec<NodeId> = sends(&effects).iter().map(|(to, _)| *to).collect();
    assert_eq!(to, vec![n(2), n(3), n(4), n(5)]);
    // A majority of C_new alone ({1, 4, 5}) does not commit C_old,new.
    deliver(&mut raft, 4, ack(1, 0, 4));
    deliver(&mut raft, 5, ack(1, 0, 4));
    assert_eq!(raft.commit_index(), 3);
    // With a majority of C_old ({1, 2}) too, it commits, and C_new is appended at once.
    let effects = deliver(&mut raft, 2, ack(1, 0, 4));
    assert_eq!(raft.commit_index(), 4);
    let leave = config_entry(5, &[1, 4, 5], None, &[]);
    assert_eq!(persists(&effects), vec![Record::Entries(vec![leave])]);
    assert!(
        replies(&effects).is_empty(),
        "the change completes when C_new commits"
    );
    // C_new commits with its own majority ({1, 4}); the operator hears back, and 2 and 3 are
    // no longer replicated to.
    let effects = deliver(&mut raft, 4, ack(1, 0, 5));
    assert_eq!(replies(&effects), vec![ok_reply(7, 3, Output::Done)]);
    assert_eq!(raft.followers(), vec![n(4), n(5)]);
}

#[cfg(feature = "bugs")]
#[test]
fn s6_the_broken_rule_commits_joint_consensus_with_the_new_majority_alone() {
    let config = RaftConfig {
        bug: Some(Bug::JointNewMajorityOnly),
        ..promptly()
    };
    let mut raft = leader_with_learners(config);
    let change = AdminCommand::ChangeMembership {
        voters: vec![n(1), n(4), n(5)],
    };
    step(&mut raft, admin(7, 3, change));
    deliver(&mut raft, 4, ack(1, 0, 4));
    assert_eq!(
        raft.commit_index(),
        4,
        "{{1, 4}} is a majority of C_new only"
    );
}

/// Once C_old,new commits, the operator's change completes with C_new: a second change is
/// refused naming C_new's entry, the one still to commit.
#[test]
fn s6_a_change_while_leaving_joint_consensus_is_refused_naming_the_new_configurations_entry() {
    let mut raft = leader_with_learners(promptly());
    let change = AdminCommand::ChangeMembership {
        voters: vec![n(1), n(4), n(5)],
    };
    step(&mut raft, admin(7, 3, change));
    deliver(&mut raft, 4, ack(1, 0, 4));
    deliver(&mut raft, 2, ack(1, 0, 4));
    assert_eq!((raft.commit_index(), raft.log.last_index()), (4, 5));
    let why = rejected(&step(
        &mut raft,
        admin(8, 1, AdminCommand::AddLearner(n(6))),
    ));
    assert_eq!(
        why,
        "another membership change (configuration entry 5) is in progress"
    );
}

#[test]
fn t4_1_single_server_changes_go_one_at_a_time() {
    let mut raft = settled_leader_of(&[1, 2, 3], promptly());
    let effects = step(&mut raft, admin(7, 1, AdminCommand::AddLearner(n(4))));
    let learner = config_entry(2, &[1, 2, 3], None, &[4]);
    assert_eq!(persists(&effects), vec![Record::Entries(vec![learner])]);
    let why = rejected(&step(
        &mut raft,
        admin(8, 1, AdminCommand::AddLearner(n(5))),
    ));
    assert_eq!(
        why,
        "another membership change (configuration entry 2) is in progress"
    );
    deliver(&mut raft, 2, ack(1, 0, 2));
    // The learner has nothing yet: it may not vote before it catches up.
    let why = rejected(&step(&mut raft, admin(7, 2, AdminCommand::AddVoter(n(4)))));
    assert_eq!(
        why,
        "learner n4 has not caught up: 2 entries behind (it holds the log through index 0 of \
         2); retry once it is within 0 entries"
    );
    deliver(&mut raft, 4, ack(1, 0, 2));
    let effects = step(&mut raft, admin(7, 3, AdminCommand::AddVoter(n(4))));
    let voter = config_entry(3, &[1, 2, 3, 4], None, &[]);
    assert_eq!(persists(&effects), vec![Record::Entries(vec![voter])]);
    // The configuration is in force at once: a majority of four is three.
    deliver(&mut raft, 2, ack(1, 0, 3));
    assert_eq!(raft.commit_index(), 2);
    let effects = deliver(&mut raft, 4, ack(1, 0, 3));
    assert_eq!(raft.commit_index(), 3);
    assert_eq!(replies(&effects), vec![ok_reply(7, 3, Output::Done)]);
}

#[test]
fn t4_1_unsafe_or_premature_changes_are_refused_with_a_reason() {
    let mut raft = leader_of(&[1, 2, 3], promptly());
    let why = rejected(&step(
        &mut raft,
        admin(7, 1, AdminCommand::AddLearner(n(4))),
    ));
    assert_eq!(
        why,
        "this leader has not committed an entry of term 1 yet; retry shortly"
    );
    deliver(&mut raft, 2, ack(1, 0, 1));
    let why = rejected(&step(&mut raft, admin(7, 2, AdminCommand::AddVoter(n(6)))));
    assert_eq!(
        why,
        "n6 is not a learner; add it with AddLearner first so that it catches up before it votes"
    );
    let why = rejected(&step(
        &mut raft,
        admin(7, 3, AdminCommand::AddLearner(n(2))),
    ));
    assert_eq!(
        why,
        "n2 is a voter; remove it before adding it as a learner"
    );
    let empty = AdminCommand::ChangeMembership { voters: vec![] };
    assert_eq!(
        rejected(&step(&mut raft, admin(7, 4, empty))),
        "the new configuration has no voters"
    );
    assert_eq!(raft.events(), &[Event::MembershipChangeRefused]);
    // Changes that change nothing succeed at once, without a log entry.
    let effects = step(&mut raft, admin(7, 5, AdminCommand::RemoveNode(n(9))));
    assert_eq!(effects.len(), 1);
    assert_eq!(replies(&effects), vec![ok_reply(7, 5, Output::Done)]);

    let mut alone = settled_leader_of(&[1], promptly());
    let why = rejected(&step(
        &mut alone,
        admin(7, 1, AdminCommand::RemoveNode(n(1))),
    ));
    assert_eq!(why, "n1 is the only voter; a cluster needs at least one");
}

#[test]
fn t4_2_2_a_removed_leader_leads_without_counting_itself_then_steps_down() {
    let mut raft = settled_leader_of(&[1, 2, 3], RaftConfig::default());
    let effects = step(&mut raft, admin(7, 1, AdminCommand::RemoveNode(n(1))));
    let without_me = config_entry(2, &[2, 3], None, &[]);
    assert_eq!(persists(&effects), vec![Record::Entries(vec![without_me])]);
    // {1, 2} would be a majority of {1, 2, 3}, but the leader no longer counts.
    deliver(&mut raft, 2, ack(1, 0, 2));
    assert_eq!(raft.commit_index(), 1);
    assert!(raft.is_leader());
    let effects = deliver(&mut raft, 3, ack(1, 0, 2));
    assert_eq!(raft.commit_index(), 2);
    assert_eq!(replies(&effects), vec![ok_reply(7, 1, Output::Done)]);
    assert!(!raft.is_leader());
    assert_eq!(raft.events(), &[Event::RemovedLeaderSteppedDown]);
    // Outside the configuration, it never campaigns again.
    let effects = step(&mut raft, Input::Timer(Timer::Election));
    assert!(sends(&effects).is_empty() && persists(&effects).is_empty());
}

#[test]
fn t4_2_1_learners_get_the_log_but_neither_count_nor_campaign() {
    let mut raft = settled_leader_of(&[1, 2, 3], RaftConfig::default());
    step(&mut raft, admin(7, 1, AdminCommand::AddLearner(n(4))));
    deliver(&mut raft, 4, ack(1, 0, 2));
    assert_eq!(raft.commit_index(), 1, "a learner's copy does not count");

    let mut learner = node_with(4, &[1, 2, 3], RaftConfig::default());
    let entries = vec![entry(1, 1), config_entry(2, &[1, 2, 3], None, &[4])];
    deliver(&mut learner, 1, append(1, (0, 0), entries, 1));
    assert_eq!(learner.status().role, Role::Learner);
    let effects = step_at(&mut learner, ms(500), Input::Timer(Timer::Election));
    assert!(sends(&effects).is_empty());
}

#[test]
fn s6_a_truncated_configuration_entry_stops_being_in_force() {
    let mut raft = node_with(3, &[1, 2, 3], RaftConfig::figure2());
    let entries = vec![entry(1, 1), config_entry(2, &[1, 2, 3], None, &[4])];
    deliver(&mut raft, 1, append(1, (0, 0), entries, 1));
    assert_eq!(raft.membership().learners, ids(&[4]));
    // A leader of term 2 replaces index 2: the configuration reverts to the bootstrap one.
    deliver(&mut raft, 2, append(2, (1, 1), vec![entry(2, 2)], 1));
    assert_eq!(raft.membership(), &Membership::new([n(1), n(2), n(3)]));
}

/// The address given with `AddLearnerAt` travels in the configuration entry (so followers and
/// the learner itself learn it), stays through promotion, and goes with a removal; re-adding a
/// member at another address is refused.
#[test]
fn t4_1_a_learner_added_at_an_address_carries_it_in_the_configuration() {
    let mut raft = settled_leader_of(&[1, 2, 3], promptly());
    let add = |address: &str| AdminCommand::AddLearnerAt {
        id: n(4),
        address: address.into(),
    };
    let effects = step(&mut raft, admin(7, 1, add("peer=a client=b")));
    let [Record::Entries(entries)] = &persists(&effects)[..] else {
        panic!("expected one appended entry: {effects:?}");
    };
    let Payload::Config(config) = &entries[0].payload else {
        panic!("not a configuration: {entries:?}");
    };
    assert_eq!(config.learners, ids(&[4]));
    assert_eq!(
        config.addresses.get(&n(4)).map(String::as_str),
        Some("peer=a client=b")
    );
    let effects = deliver(&mut raft, 2, ack(1, 0, 2));
    assert_eq!(replies(&effects), vec![ok_reply(7, 1, Output::Done)]);
    // A retry with the same address changes nothing; another address is refused.
    let effects = step(&mut raft, admin(7, 2, add("peer=a client=b")));
    assert_eq!(replies(&effects), vec![ok_reply(7, 2, Output::Done)]);
    let why = rejected(&step(&mut raft, admin(7, 3, add("peer=c client=d"))));
    assert_eq!(
        why,
        "n4 is already a member (at peer=a client=b); remove it before adding it at peer=c client=d"
    );
    let why = rejected(&step(
        &mut raft,
        admin(
            7,
            4,
            AdminCommand::AddLearnerAt {
                id: n(2),
                address: "x".into(),
            },
        ),
    ));
    assert_eq!(
        why,
        "n2 is already a member; remove it before adding it at x"
    );
    // Promotion keeps the address; removal drops it.
    deliver(&mut raft, 4, ack(1, 0, 2));
    step(&mut raft, admin(7, 5, AdminCommand::AddVoter(n(4))));
    deliver(&mut raft, 2, ack(1, 0, 3));
    deliver(&mut raft, 4, ack(1, 0, 3));
    assert!(raft.membership().voters.contains(&n(4)));
    assert!(raft.membership().addresses.contains_key(&n(4)));
    step(&mut raft, admin(7, 6, AdminCommand::RemoveNode(n(4))));
    assert!(raft.membership().addresses.is_empty());
    assert_eq!(raft.match_index(n(2)), Some(3));
}
