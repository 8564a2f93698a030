//! The acceptor (steps 3 and 5) and the learner (step 6).

use super::message::{Ballot, Message, Record};
use super::{outcome, reply, Paxos, Timer};
use quorate_core::{Effects, Key, NodeId, Value};
use std::collections::BTreeSet;

impl Paxos {
    // ---------------------------------------------------------------------------------------
    // Acceptor.

    /// Step 3: promise (persisting first) or refuse.
    pub(super) fn on_prepare(
        &mut self,
        from: NodeId,
        key: Key,
        ballot: Ballot,
        out: &mut Effects<Self>,
    ) {
        self.observe(ballot);
        let Some(instance) = self.instance(&key) else {
            return; // Out of room: this acceptor does not take part.
        };
        if let Some(value) = &instance.chosen {
            let chosen = Message::Chosen {
                key,
                value: value.clone(),
            };
            return out.send(from, chosen);
        }
        if ballot < instance.promised {
            let promised = instance.promised;
            return out.send(
                from,
                Message::Nack {
                    key,
                    ballot,
                    promised,
                },
            );
        }
        if ballot > instance.promised {
            instance.promised = ballot;
            instance.persist(&key, out);
        }
        let accepted = instance.accepted.clone();
        out.send(
            from,
            Message::Promise {
                key,
                ballot,
                accepted,
            },
        );
    }

    /// Step 5: accept (persisting first) and tell every learner, or refuse.
    pub(super) fn on_accept(
        &mut self,
        from: NodeId,
        key: Key,
        ballot: Ballot,
        value: Value,
        out: &mut Effects<Self>,
    ) {
        self.observe(ballot);
        let Some(instance) = self.instance(&key) else {
            return;
        };
        if let Some(chosen) = &instance.chosen {
            let chosen = Message::Chosen {
                key,
                value: chosen.clone(),
            };
            return out.send(from, chosen);
        }
        if ballot < instance.promised {
            let promised = instance.promised;
            return out.send(
                from,
                Message::Nack {
                    key,
                    ballot,
                    promised,
                },
            );
        }
        let accepted = Some((ballot, value.clone()));
        if instance.promised != ballot || instance.accepted != accepted {
            instance.promised = ballot;
            instance.accepted = accepted;
            instance.persist(&key, out);
        }
        let message = Message::Accepted { key, ballot, value };
        for member in &self.members {
            out.send(*member, message.clone());
        }
    }

    // ---------------------------------------------------------------------------------------
    // Learner.

    /// Step 6: count Accepted messages per ballot; a majority for one ballot decides.
    pub(super) fn on_accepted(
        &mut self,
        from: NodeId,
        key: Key,
        ballot: Ballot,
        value: Value,
        out: &mut Effects<Self>,
    ) {
        let quorum = self.quorum();
        let Some(instance) = self.instance(&key) else {
            return;
        };
        if instance.chosen.is_some() {
            return;
        }
        let (voted, voters) = instance
            .votes
            .entry(ballot)
            .or_insert_with(|| (value.clone(), BTreeSet::new()));
        if *voted != value {
            return; // Impossible unless a proposer reused a ballot; the checker reports it.
        }
        voters.insert(from);
        if voters.len() >= quorum {
            self.learn(&key, value, out);
        }
    }

    pub(super) fn on_chosen(&mut self, key: Key, value: Value, out: &mut Effects<Self>) {
        let Some(instance) = self.instance(&key) else {
            return;
        };
        if instance.chosen.is_none() {
            self.learn(&key, value, out);
        }
    }

    /// Records the decision durably, then answers everyone waiting on it.
    pub(super) fn learn(&mut self, key: &Key, value: Value, out: &mut Effects<Self>) {
        let instance = self.instances.get_mut(key).expect("known key");
        assert!(instance.chosen.is_none(), "a learner decides once");
        out.persist(Record::Chosen {
            key: key.clone(),
            value: value.clone(),
        });
        out.cancel_timer(Timer::Retry(instance.timer));
        for waiter in instance.waiters.drain(..) {
            let result = Ok(outcome(&value, waiter.proposal.as_ref()));
            reply(waiter.client, waiter.seq, result, out);
        }
        instance.chosen = Some(value);
        self.decided += 1;
        instance.votes.clear();
        instance.round = None;
        instance.failures = 0;
        instance.backing_off = false;
    }
}
