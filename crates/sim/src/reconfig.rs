//! The reconfiguration nemesis: membership changes and leadership transfers while every other
//! fault goes on.
//!
//! A reconfiguration run starts [`RECONFIG_SPARES`](crate::config::RECONFIG_SPARES) nodes
//! outside the cluster. Every so often during the fault phase (the mean interval is drawn per
//! seed), the nemesis asks the node that most recently claims leadership for one change, chosen
//! from that node's view of the configuration:
//!
//! - add a node outside the configuration as a learner, half the time with an address
//!   (`AddLearnerAt`, what `quorate member add` sends);
//! - promote a learner to voter (refused until it has caught up);
//! - remove a voter (sometimes the leader itself) or a learner;
//! - replace the voters wholesale by a random set of current voters and learners (joint
//!   consensus), mostly preferring learners so that most voters change; with partitions on, half
//!   of these requests also cut the leader and the new voters off from everyone else, the
//!   moment at which committing with one configuration's majority alone loses entries;
//! - transfer leadership to another voter.
//!
//! One request is outstanding at a time. Refusals are expected and counted: a change may be in
//! progress, a learner may lag, a transfer may be running. The nemesis keeps at least three
//! voters (or all of them, in smaller clusters), so the liveness phase can always elect.

use crate::harness::{Configuration, Harness};
use crate::simulation::{Event, Phase, Simulation};
use quorate_core::{AdminCommand, AdminRequest, ClientId, NodeId, Reply};

/// Admin sessions have the top bit set; client sessions never do.
pub(crate) const ADMIN_BIT: u64 = 1 << 63;

/// How long the nemesis waits for an answer before it moves on.
const PATIENCE: u64 = 1_000_000_000;

pub(crate) fn is_admin(client: ClientId) -> bool {
    client.0 & ADMIN_BIT != 0
}

/// The nemesis' own state.
#[derive(Clone, Debug, Default)]
pub(crate) struct Nemesis {
    /// Requests sent so far; the sequence number of the next.
    seq: u64,
    /// The request awaiting an answer, and the true time after which it is given up.
    pending: Option<(u64, u64)>,
    /// Addresses handed out with `AddLearnerAt`: each new one differs (a replaced machine).
    addresses: u64,
}

impl<H: Harness> Simulation<'_, H> {
    pub(crate) fn schedule_reconfig(&mut self) {
        if let Some(every) = self.plan.reconfig_every {
            let at = self.rng.between(every / 2, 2 * every);
            self.queue.push(at, Event::Reconfig);
        }
    }

    pub(crate) fn on_reconfig_tick(&mut self) {
        if self.phase != Phase::Faulty {
            return;
        }
        let every = self.plan.reconfig_every.expect("the nemesis runs");
        let next = self.now + self.rng.between(every / 2, 2 * every);
        self.queue.push(next, Event::Reconfig);
        if let Some((_, deadline)) = self.nemesis.pending {
            if self.now < deadline {
                return;
            }
            self.nemesis.pending = None; // Given up on: its outcome stays unknown.
        }
        let Some(leader) = self.leader() else {
            return;
        };
        let node = self.slots[leader].node.as_ref().expect("leaders are up");
        let Some(view) = self.harness.configuration(node) else {
            return;
        };
        let Some(command) = self.choose_change(&view, self.ids[leader]) else {
            return;
        };
        self.nemesis.seq += 1;
        let seq = self.nemesis.seq;
        self.nemesis.pending = Some((seq, self.now + PATIENCE));
        self.stats.admin_requests += 1;
        self.trace_line(usize::MAX, || {
            format!("nemesis: ask n{} to {command:?}", leader + 1)
        });
        if let AdminCommand::ChangeMembership { voters } = &command {
            if self.config.faults.partition && self.rng.chance(0.5) {
                self.split_old_from_new(leader, voters);
            }
        }
        let request = AdminRequest {
            client: ClientId(ADMIN_BIT),
            seq,
            command,
        };
        if !self.rng.chance(self.plan.loss) {
            let at = self.now + self.delay();
            self.queue.push(
                at,
                Event::Admin {
                    to: leader,
                    request,
                },
            );
        }
    }

    /// One change, drawn from what `view` allows.
    fn choose_change(&mut self, view: &Configuration, leader: NodeId) -> Option<AdminCommand> {
        let outside: Vec<NodeId> = self
            .ids
            .iter()
            .copied()
            .filter(|id| !view.voters.contains(id) && !view.learners.contains(id))
            .collect();
        let voters_min = self.config.nodes.min(3);
        let mut options: Vec<(u64, u8)> = Vec::new();
        let mut offer = |weight: u64, kind: u8, allowed: bool| {
            if allowed {
                options.push((weight, kind));
            }
        };
        offer(3, 0, !outside.is_empty());
        offer(4, 1, !view.learners.is_empty());
        offer(2, 2, view.voters.len() > voters_min);
        offer(1, 3, !view.learners.is_empty());
        offer(3, 4, view.voters.len() + view.learners.len() >= voters_min);
        offer(4, 5, view.voters.len() > 1);
        let total: u64 = options.iter().map(|(w, _)| w).sum();
        let mut roll = self.rng.below(total.max(1));
        let kind = options.iter().find_map(|(weight, kind)| {
            let hit = roll < *weight;
            roll = roll.saturating_sub(*weight);
            hit.then_some(*kind)
        })?;
        let others: Vec<NodeId> = view
            .voters
            .iter()
            .copied()
            .filter(|v| *v != leader)
            .collect();
        Some(match kind {
            0 => {
                // Half the additions name the new member's address, as `quorate member add`
                // does: it travels in the configuration entry.
                let id = self.pick(&outside);
                if self.rng.chance(0.5) {
                    self.nemesis.addresses += 1;
                    let n = self.nemesis.addresses;
                    AdminCommand::AddLearnerAt {
                        id,
                        address: format!("10.0.{}.{}:7000", n % 256, id.0),
                    }
                } else {
                    AdminCommand::AddLearner(id)
                }
            }
            1 => AdminCommand::AddVoter(self.pick(&view.learners)),
            2 if self.rng.chance(0.4) => AdminCommand::RemoveNode(leader),
            2 => AdminCommand::RemoveNode(self.pick(&view.voters)),
            3 => AdminCommand::RemoveNode(self.pick(&view.learners)),
            4 => AdminCommand::ChangeMembership {
                voters: self.some_members(view, leader, voters_min),
            },
            _ => AdminCommand::TransferLeadership(self.pick(&others)),
        })
    }

    fn pick(&mut self, from: &[NodeId]) -> NodeId {
        from[self.rng.below(from.len() as u64) as usize]
    }

    /// A random set of `voters_min..=5` current voters and learners. Three times in four it
    /// replaces as many voters as it can: learners first, then the leader, then other voters.
    fn some_members(
        &mut self,
        view: &Configuration,
        leader: NodeId,
        voters_min: usize,
    ) -> Vec<NodeId> {
        let mut voters: Vec<NodeId> = view
            .voters
            .iter()
            .copied()
            .filter(|v| *v != leader)
            .collect();
        let mut learners = view.learners.clone();
        self.shuffle(&mut voters);
        self.shuffle(&mut learners);
        let mut pool = if self.rng.chance(0.75) {
            let mut pool = learners;
            if view.voters.contains(&leader) {
                pool.push(leader);
            }
            pool.extend(voters);
            pool
        } else {
            let mut pool = voters;
            pool.extend(learners);
            if view.voters.contains(&leader) {
                pool.push(leader);
            }
            self.shuffle(&mut pool);
            pool
        };
        let most = pool.len().min(5).max(voters_min);
        let size = voters_min + self.rng.below((most - voters_min) as u64 + 1) as usize;
        pool.truncate(size);
        pool.sort();
        pool
    }

    fn shuffle(&mut self, list: &mut [NodeId]) {
        for k in (1..list.len()).rev() {
            let j = self.rng.below(k as u64 + 1) as usize;
            list.swap(k, j);
        }
    }

    /// Cuts the leader and the voters it was asked to move to off from every other node.
    fn split_old_from_new(&mut self, leader: usize, voters: &[NodeId]) {
        let n = self.ids.len();
        let mut inside = vec![false; n];
        inside[leader] = true;
        for id in voters {
            inside[self.node_index(*id)] = true;
        }
        let mut blocked = vec![false; n * n];
        for a in 0..n {
            for b in 0..n {
                blocked[a * n + b] = inside[a] != inside[b];
            }
        }
        self.set_blocked(blocked);
        self.stats.partitions += 1;
        self.trace_line(usize::MAX, || {
            let names: Vec<String> = (0..n)
                .filter(|i| inside[*i])
                .map(|i| format!("n{}", i + 1))
                .collect();
            format!("nemesis: split {{{}}} from the rest", names.join(","))
        });
    }

    pub(crate) fn on_admin_reply(&mut self, from: usize, reply: Reply) {
        let Some((seq, _)) = self.nemesis.pending else {
            return;
        };
        if reply.seq != seq {
            return; // Late, about a request given up on.
        }
        self.nemesis.pending = None;
        self.hash_event(from, 7, quorate_core::digest::digest(&reply));
        match &reply.result {
            Ok(_) => self.stats.admin_ok += 1,
            // Refused, or sent to a node that no longer leads: certainly not done.
            Err(error) if error.is_definite() => self.stats.admin_refused += 1,
            Err(_) => {} // Unknown outcome: the leader was deposed meanwhile, or gave up.
        }
        self.trace_line(from, || format!("nemesis: answered {:?}", reply.result));
    }
}
