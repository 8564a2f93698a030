//! The proposer (steps 1, 2, 4 and 7): ballots, phase 1, the choice of value, phase 2, and
//! what happens when a round fails.

use super::message::{AcceptedValue, Ballot, Message, Record};
use super::{reply, Paxos, Phase, Retry, Round, Timer, Waiter};
use crate::paxos::Bug;
use quorate_core::{Effects, Key, NodeId, Output, TimerRange};
use std::collections::BTreeMap;
use std::time::Duration;

impl Paxos {
    // ---------------------------------------------------------------------------------------
    // Proposer.

    /// Step 1 and 2: a fresh ballot, persisted, then Prepare to every acceptor.
    pub(super) fn start_round(&mut self, key: &Key, out: &mut Effects<Self>) {
        self.round = self.round.max(self.round_seen) + 1;
        let ballot = Ballot::new(self.round, self.id);
        out.persist(Record::Round(self.round));
        let round_timeout = TimerRange::fixed(self.config.round_timeout);
        let instance = self.instances.get_mut(key).expect("a round of a known key");
        for waiter in &mut instance.waiters {
            waiter.counted = true;
        }
        instance.backing_off = false;
        instance.round = Some(Round {
            ballot,
            phase: Phase::Prepare {
                promises: BTreeMap::new(),
            },
        });
        out.set_timer(Timer::Retry(instance.timer), round_timeout);
        let prepare = Message::Prepare {
            key: key.clone(),
            ballot,
        };
        for member in &self.members {
            out.send(*member, prepare.clone());
        }
    }

    pub(super) fn on_promise(
        &mut self,
        from: NodeId,
        key: Key,
        ballot: Ballot,
        accepted: Option<AcceptedValue>,
        out: &mut Effects<Self>,
    ) {
        let quorum = self.quorum();
        let Some(instance) = self.instances.get_mut(&key) else {
            return;
        };
        let Some(Round {
            ballot: current,
            phase: Phase::Prepare { promises },
        }) = &mut instance.round
        else {
            return; // Not in phase 1 any more: a late or duplicate promise.
        };
        if *current != ballot {
            return;
        }
        promises.insert(from, accepted);
        if promises.len() >= quorum {
            self.begin_accept(&key, out);
        }
    }

    /// Step 4: a majority promised; pick the value and send Accept.
    pub(super) fn begin_accept(&mut self, key: &Key, out: &mut Effects<Self>) {
        let ignore_accepted = self.config.has_bug(Bug::ProposerIgnoresAccepted);
        let instance = self.instances.get_mut(key).expect("a round of a known key");
        let Some(Round {
            ballot,
            phase: Phase::Prepare { promises },
        }) = instance.round.take()
        else {
            unreachable!("called in phase 1")
        };
        let heard = promises
            .into_values()
            .flatten()
            .max_by_key(|(accepted_in, _)| *accepted_in)
            .map(|(_, value)| value);
        let own = instance.waiters.iter().find_map(|w| w.proposal.clone());
        let value = if ignore_accepted {
            own.or(heard)
        } else {
            heard.or(own)
        };
        let Some(value) = value else {
            return self.answer_absent(key, out);
        };
        instance.round = Some(Round {
            ballot,
            phase: Phase::Accept {
                value: value.clone(),
            },
        });
        let accept = Message::Accept {
            key: key.clone(),
            ballot,
            value,
        };
        for member in &self.members {
            out.send(*member, accept.clone());
        }
    }

    /// Only readers wait, and no acceptor of the promise majority had accepted anything: no
    /// value was chosen when the first of those promises was made, which was after every
    /// counted reader's invocation. Answer them "absent"; later readers need a round of their
    /// own.
    pub(super) fn answer_absent(&mut self, key: &Key, out: &mut Effects<Self>) {
        let instance = self.instances.get_mut(key).expect("known key");
        instance.failures = 0;
        let (counted, later): (Vec<Waiter>, Vec<Waiter>) =
            instance.waiters.drain(..).partition(|w| w.counted);
        instance.waiters = later;
        for waiter in counted {
            debug_assert!(waiter.proposal.is_none(), "only readers get here");
            reply(waiter.client, waiter.seq, Ok(Output::Value(None)), out);
        }
        if instance.waiters.is_empty() {
            out.cancel_timer(Timer::Retry(instance.timer));
        } else {
            self.start_round(key, out);
        }
    }

    pub(super) fn on_nack(
        &mut self,
        key: Key,
        ballot: Ballot,
        promised: Ballot,
        out: &mut Effects<Self>,
    ) {
        self.observe(promised);
        let Some(instance) = self.instances.get(&key) else {
            return;
        };
        if instance.round.as_ref().map(|r| r.ballot) == Some(ballot) {
            self.round_failed(&key, out);
        }
    }

    /// The round was pre-empted or timed out: try again, at once or after a random back-off.
    pub(super) fn round_failed(&mut self, key: &Key, out: &mut Effects<Self>) {
        let retry = self.config.retry;
        let instance = self.instances.get_mut(key).expect("known key");
        instance.round = None;
        instance.failures = instance.failures.saturating_add(1);
        if instance.waiters.is_empty() {
            out.cancel_timer(Timer::Retry(instance.timer));
            return;
        }
        match retry {
            Retry::Immediately => self.start_round(key, out),
            Retry::RandomizedBackoff { base, max } => {
                let exponent = instance.failures.min(16);
                let ceiling = base.saturating_mul(1 << exponent).min(max);
                instance.backing_off = true;
                let after = TimerRange::between(Duration::ZERO..ceiling);
                out.set_timer(Timer::Retry(instance.timer), after);
            }
        }
    }

    pub(super) fn on_timer(&mut self, timer: Timer, out: &mut Effects<Self>) {
        let Timer::Retry(name) = timer;
        let Some(key) = self.timers.get(&name).cloned() else {
            return;
        };
        let instance = self
            .instances
            .get_mut(&key)
            .expect("timers name known keys");
        if instance.chosen.is_some() {
            return;
        }
        if instance.round.is_some() {
            return self.round_failed(&key, out); // The round timed out.
        }
        instance.backing_off = false;
        if !instance.waiters.is_empty() {
            self.start_round(&key, out);
        }
    }
}
