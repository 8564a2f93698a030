//! ZAB's safety properties, named after ZooKeeper's TLA+ specification of Zab
//! (`zookeeper-specifications`), checked across the ensemble after every step of every
//! server. "Delivering" a transaction means committing and applying it.
//!
//! | property | what must hold | how it is checked |
//! |---|---|---|
//! | Leadership | at most one leader establishes each epoch | a ledger `epoch -> leader`, fed when a leader reaches synchronization (a quorum acknowledged its epoch) |
//! | Integrity | a delivered transaction was broadcast by some primary | a ledger of every proposal, fed from the leaders' own persisted proposals |
//! | Agreement | two servers never deliver different transactions with one zxid | a ledger `zxid -> digest` of delivered transactions |
//! | Total order | if some server delivers a before b, every server that delivers b delivers a before it | no delivered zxid may fall between two a server delivers consecutively |
//! | Local primary order | a primary's proposals are delivered in the order it made them, none skipped | within an epoch, counters are delivered as 1, 2, 3, ... |
//! | Global primary order | transactions of an earlier epoch are delivered before those of a later one | delivered epochs never go back |
//! | Primary integrity | a primary of epoch e delivers every transaction of an earlier epoch that anyone delivers before it broadcasts | the initial history of each epoch whose primary broadcast ends at or after every delivered transaction of an earlier epoch |
//! | Durable acknowledgement | a follower acknowledges a proposal (ACK), or its synchronized history (ACK of NEWLEADER), only once what it acknowledges is on its disk: the leader counts the ACK towards a quorum that must survive crashes | each running server's highest zxid persisted since it started (raised by its `Txns` and `Checkpoint` records, lowered by `Truncate`), compared with every ACK as it leaves |
//! | Prefix consistency | the delivered prefixes of any two servers agree | follows from the above per delivery: a newly delivered zxid either is in the ledger with the same digest, or is above everything in it |
//!
//! Every check looks only at what the stepping server delivered in this step, so the cost is
//! proportional to the step's own work. A server that installs a snapshot (SNAP, or its own
//! at restart) jumps to the snapshot's zxid; the transactions inside it were checked when
//! some server delivered them one by one.

use super::message::{LearnerMessage, Message, Record, Txn, Zxid};
use super::{PeerState, Zab, ZabCounters};
use quorate_core::digest::digest;
use quorate_core::{Effect, Invariants, NodeId, Violation};
use std::collections::BTreeMap;

/// The ensemble-wide ledgers behind ZAB's safety properties.
#[derive(Clone, Default, Debug)]
pub struct ZabSafety {
    /// `epoch -> the leader that established it`.
    established: BTreeMap<u64, NodeId>,
    /// `epoch -> the last zxid of its initial history`, for epochs whose primary broadcast.
    initial_last: BTreeMap<u64, Zxid>,
    /// `zxid -> digest` of every transaction a primary broadcast.
    proposed: BTreeMap<Zxid, u64>,
    /// `zxid -> digest` of every transaction some server delivered.
    delivered: BTreeMap<Zxid, u64>,
    /// Each server's last delivered zxid, when last observed.
    observed: BTreeMap<NodeId, Zxid>,
    /// Counters summed over the incarnations of every server.
    totals: BTreeMap<&'static str, u64>,
    /// Each running server's counters when last observed.
    seen_counters: BTreeMap<NodeId, ZabCounters>,
    /// Each running server's highest zxid on its disk, since it (re)started.
    durable: BTreeMap<NodeId, Zxid>,
}

impl ZabSafety {
    pub fn new() -> ZabSafety {
        ZabSafety::default()
    }

    /// Durable acknowledgement: walks the step's effects in order (a send leaves only after
    /// the persists before it, the driver's persist barrier) and checks every ACK against
    /// what the server's disk holds at that point. A server first seen (at its start) holds
    /// what it recovered.
    fn durable_acknowledgements(
        &mut self,
        id: NodeId,
        node: &Zab,
        effects: &[Effect<Zab>],
    ) -> Result<(), Violation> {
        let held = node.history.last_zxid();
        let durable = self.durable.entry(id).or_insert(held);
        for effect in effects {
            let acknowledged = match effect {
                Effect::Persist(Record::Txns(txns)) => {
                    let last = txns.iter().map(|t| t.zxid).max();
                    *durable = (*durable).max(last.unwrap_or(*durable));
                    continue;
                }
                Effect::Persist(Record::Checkpoint { .. }) => {
                    *durable = (*durable).max(held);
                    continue;
                }
                Effect::Persist(Record::Truncate { after }) => {
                    *durable = (*durable).min(*after);
                    continue;
                }
                Effect::Send {
                    msg: Message::ToLeader { msg, .. },
                    ..
                } => match msg {
                    LearnerMessage::Ack { zxid } => *zxid,
                    LearnerMessage::AckNewLeader => held,
                    _ => continue,
                },
                _ => continue,
            };
            if acknowledged > *durable {
                return Err(Violation {
                    property: "durable acknowledgement",
                    detail: format!(
                        "n{} acknowledged {acknowledged:?} with only {durable:?} on its disk",
                        id.0
                    ),
                });
            }
        }
        Ok(())
    }

    /// Transactions some server delivered, so far.
    pub fn delivered_len(&self) -> usize {
        self.delivered.len()
    }

    /// Epochs established, so far.
    pub fn epochs_established(&self) -> usize {
        self.established.len()
    }

    fn leadership(&mut self, id: NodeId, node: &Zab) -> Result<(), Violation> {
        let Some((epoch, _)) = node.established() else {
            return Ok(());
        };
        let leader = *self.established.entry(epoch).or_insert(id);
        if leader != id {
            return Err(Violation {
                property: "leadership",
                detail: format!("{leader} and {id} both established epoch {epoch}"),
            });
        }
        Ok(())
    }

    /// Primary integrity, when a primary starts broadcasting: its initial history holds
    /// everything of earlier epochs that anyone delivered so far. (An epoch whose leader
    /// never got that far delivers nothing, so it constrains nothing.)
    fn primary_integrity(&mut self, id: NodeId, node: &Zab) -> Result<(), Violation> {
        let Some((epoch, initial_last)) = node.primary() else {
            return Ok(());
        };
        if self.initial_last.insert(epoch, initial_last).is_some() {
            return Ok(()); // Checked when it started broadcasting.
        }
        let earlier = self.delivered.range(..Zxid::new(epoch, 0)).next_back();
        if let Some((&zxid, _)) = earlier.filter(|(z, _)| **z > initial_last) {
            return Err(Violation {
                property: "primary integrity",
                detail: format!(
                    "{id} became primary of epoch {epoch} with an initial history ending at \
                     {initial_last}, without {zxid}, which was delivered"
                ),
            });
        }
        Ok(())
    }

    /// Records the proposals a leader persisted in this step.
    fn broadcast(&mut self, id: NodeId, node: &Zab, txns: &[Txn]) -> Result<(), Violation> {
        let Some((epoch, _)) = node.established() else {
            return Ok(());
        };
        for txn in txns.iter().filter(|txn| txn.zxid.epoch == epoch) {
            let previous = self
                .proposed
                .range(Zxid::new(epoch, 0)..Zxid::new(epoch + 1, 0))
                .next_back()
                .map_or(0, |(zxid, _)| zxid.counter);
            if txn.zxid.counter != previous + 1 {
                return Err(Violation {
                    property: "local primary order",
                    detail: format!(
                        "{id} broadcast {} after {epoch}.{previous} in epoch {epoch}",
                        txn.zxid
                    ),
                });
            }
            self.proposed.insert(txn.zxid, digest(&txn.command));
        }
        Ok(())
    }

    /// Checks what `node` delivered since it was last observed.
    fn deliveries(&mut self, id: NodeId, node: &Zab) -> Result<(), Violation> {
        let snapshot = node.snapshot().last_zxid;
        let mut previous = *self.observed.entry(id).or_insert(snapshot);
        if snapshot > previous {
            previous = snapshot; // Installed a snapshot: jump over what it covers.
        }
        let committed = node.committed();
        if committed < previous {
            return Err(Violation {
                property: "prefix consistency",
                detail: format!("{id} went back from delivering {previous} to {committed}"),
            });
        }
        // The history is in zxid order: find what was delivered since by binary search.
        let txns = node.txns();
        let start = txns.partition_point(|t| t.zxid <= previous);
        let end = txns.partition_point(|t| t.zxid <= committed);
        for txn in &txns[start..end] {
            self.deliver(id, previous, txn)?;
            previous = txn.zxid;
        }
        self.observed.insert(id, committed);
        Ok(())
    }

    fn deliver(&mut self, id: NodeId, previous: Zxid, txn: &Txn) -> Result<(), Violation> {
        let zxid = txn.zxid;
        let fail = |property, detail| Err(Violation { property, detail });
        if zxid.epoch < previous.epoch {
            let detail = format!("{id} delivered {zxid} after {previous}");
            return fail("global primary order", detail);
        }
        let expected = if zxid.epoch == previous.epoch {
            previous.counter + 1
        } else {
            1
        };
        if zxid.counter != expected {
            let detail = format!("{id} delivered {zxid} right after {previous}");
            return fail("local primary order", detail);
        }
        let mine = digest(&txn.command);
        if self.proposed.get(&zxid) != Some(&mine) {
            let detail = format!("{id} delivered {zxid}, which no primary broadcast");
            return fail("integrity", detail);
        }
        if let Some((&skipped, _)) = self
            .delivered
            .range(previous..zxid)
            .find(|(z, _)| **z > previous)
        {
            let detail =
                format!("{id} delivered {zxid} right after {previous}, skipping {skipped}");
            return fail("total order", detail);
        }
        match self.delivered.get(&zxid) {
            Some(&theirs) if theirs != mine => {
                let detail = format!("{id} delivered a different transaction {zxid} than others");
                return fail("agreement", detail);
            }
            Some(_) => {}
            None => {
                if let Some((&later, _)) = self.delivered.range(zxid..).next() {
                    let detail = format!("{id} delivered {zxid}, which others skipped ({later})");
                    return fail("prefix consistency", detail);
                }
                self.delivered.insert(zxid, mine);
            }
        }
        // Primary integrity: every later epoch established so far holds this transaction.
        let later = self.initial_last.range(zxid.epoch + 1..);
        if let Some((epoch, last)) = later.into_iter().find(|(_, last)| **last < zxid) {
            let detail = format!(
                "{id} delivered {zxid}, but epoch {epoch}'s primary broadcast with an initial \
                 history ending at {last}"
            );
            return fail("primary integrity", detail);
        }
        Ok(())
    }

    /// Adds what `id` counted since last observed to the totals.
    fn count(&mut self, id: NodeId, node: &Zab) {
        let now = *node.counters();
        let before = self.seen_counters.insert(id, now).unwrap_or_default();
        if now == before {
            return; // Most steps count nothing.
        }
        for ((name, after), (_, was)) in now.named().into_iter().zip(before.named()) {
            *self.totals.entry(name).or_default() += after - was;
        }
    }
}

impl Invariants<Zab> for ZabSafety {
    fn after_step(
        &mut self,
        id: NodeId,
        node: &Zab,
        effects: &[Effect<Zab>],
    ) -> Result<(), Violation> {
        self.count(id, node);
        self.durable_acknowledgements(id, node, effects)?;
        self.leadership(id, node)?;
        self.primary_integrity(id, node)?;
        if node.peer_state() == PeerState::Leading {
            for effect in effects {
                if let Effect::Persist(Record::Txns(txns)) = effect {
                    self.broadcast(id, node, txns)?;
                }
            }
        }
        self.deliveries(id, node)
    }

    fn on_crash(&mut self, id: NodeId) {
        self.durable.remove(&id);
        self.observed.remove(&id);
        self.seen_counters.remove(&id);
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let mut counters = vec![
            ("epochs_established", self.established.len() as u64),
            ("txns_delivered", self.delivered.len() as u64),
        ];
        counters.extend(
            self.totals
                .iter()
                .filter(|(name, _)| **name != "epochs_established")
                .map(|(name, value)| (*name, *value)),
        );
        counters
    }
}
