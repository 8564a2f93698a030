//! Serving clients as ZooKeeper does: any serving server accepts requests; writes and
//! linearizable reads go through the leader's log, plain reads are answered locally, and
//! `sync` catches the server up with the leader first. Also delivery (commit and apply) and
//! compaction, which every server does the same way.

use super::message::{LearnerMessage, Snapshot, Txn, Zxid};
use super::{State, Waiting, Zab};
use quorate_core::kv::expiry::refusal;
use quorate_core::{ClientError, ClientId, Effects, Output, ReadMode, Reply, Request, Time};
use std::sync::Arc;

impl Zab {
    pub(super) fn on_request(&mut self, now: Time, request: Request, out: &mut Effects<Self>) {
        if request.op.needs_leader_clock() {
            return answer(&request, Err(refusal("zab")), out);
        }
        if !self.is_serving() {
            // Like a ZooKeeper server without a quorum: it closes client connections.
            return answer(&request, Err(ClientError::NotLeader { leader: None }), out);
        }
        if request.op.is_read() {
            match request.read {
                ReadMode::Local => {
                    self.counters.reads_local += 1;
                    let output = self.kv.read(&request.op);
                    return answer(&request, Ok(output), out);
                }
                ReadMode::Sync => return self.start_sync(request, out),
                ReadMode::Linearizable => {}
            }
        }
        self.submit(now, request, out);
    }

    /// A write or a linearizable read: it goes through the log, and this server answers once
    /// it applies the transaction.
    fn submit(&mut self, now: Time, request: Request, out: &mut Effects<Self>) {
        if let Some(output) = self.kv.cached(request.client, request.seq) {
            return answer(&request, Ok(output.clone()), out);
        }
        if self.kv.already_applied(request.client, request.seq) {
            return; // A stale duplicate: its client has moved on.
        }
        let waiting = Waiting::Log { seq: request.seq };
        if let State::Following(follower) = &mut self.state {
            // Forward even a retry: the leader may have dropped the first copy, and it
            // proposes each request at most once.
            self.clients.insert(request.client, waiting);
            follower.send(out, LearnerMessage::Request(request));
            return;
        }
        // Leading.
        if self.is_proposed(request.client, request.seq) {
            self.clients.insert(request.client, waiting);
            return;
        }
        let outstanding = self.outstanding();
        if outstanding >= self.config.uncommitted_max {
            let why = format!("{outstanding} proposals await commitment; retry later");
            return answer(&request, Err(ClientError::Rejected(why)), out);
        }
        self.clients.insert(request.client, waiting);
        self.propose(now, request.command(), out);
    }

    /// `sync` then read: a follower asks the leader; the leader waits for what it proposed.
    fn start_sync(&mut self, request: Request, out: &mut Effects<Self>) {
        let (client, seq) = (request.client, request.seq);
        let waiting = Waiting::Sync {
            seq,
            op: request.op,
        };
        self.clients.insert(client, waiting);
        match &mut self.state {
            State::Following(follower) => follower.send(out, LearnerMessage::Sync { client, seq }),
            State::Leading(_) => self.queue_sync(None, client, seq, out),
            State::Looking(_) => unreachable!("checked by the caller"),
        }
    }

    /// The sync of `client`'s request `seq` completed: answer the read from local state.
    pub(super) fn finish_sync(&mut self, client: ClientId, seq: u64, out: &mut Effects<Self>) {
        let Some(Waiting::Sync { seq: waiting, op }) = self.clients.get(&client) else {
            return;
        };
        if *waiting != seq {
            return; // An answer to an earlier attempt.
        }
        let output = self.kv.read(op);
        self.clients.remove(&client);
        self.counters.reads_sync += 1;
        out.reply(Reply {
            client,
            seq,
            result: Ok(output),
        });
    }

    /// `Bug::ReplyBeforeApply`: answers the client waiting here for `txn` as soon as the
    /// proposal arrives, with the output it would have on the undelivered state.
    pub(super) fn reply_early(&mut self, txn: &Txn, out: &mut Effects<Self>) {
        let command = &txn.command;
        let waiting = Waiting::Log { seq: command.seq };
        if self.clients.get(&command.client) != Some(&waiting) {
            return;
        }
        let mut dirty = self.kv.clone();
        for earlier in self.history.after(self.committed) {
            let applied = dirty.apply(&earlier.command);
            if earlier.zxid == txn.zxid {
                self.clients.remove(&command.client);
                if let Some(result) = applied.reply() {
                    out.reply(Reply {
                        client: command.client,
                        seq: command.seq,
                        result,
                    });
                }
                return;
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Delivery.

    /// Delivers every held transaction up to `zxid`, in zxid order: applies it and answers the
    /// client waiting here for it. Compacts what was delivered before, first, so that what
    /// this step delivers stays visible to the safety checks for one step.
    pub(super) fn commit_to(&mut self, zxid: Zxid, out: &mut Effects<Self>) {
        assert!(
            zxid <= self.history.last_zxid(),
            "committing {zxid} beyond the history"
        );
        if zxid <= self.committed {
            return;
        }
        self.maybe_compact(out);
        let txns: Vec<Txn> = self
            .history
            .after(self.committed)
            .iter()
            .take_while(|txn| txn.zxid <= zxid)
            .cloned()
            .collect();
        for txn in txns {
            self.deliver(txn, out);
        }
    }

    fn deliver(&mut self, txn: Txn, out: &mut Effects<Self>) {
        let command = txn.command;
        let applied = self.kv.apply(&command);
        self.committed = txn.zxid;
        self.on_delivered(command.client, command.seq);
        let waiting = Waiting::Log { seq: command.seq };
        if self.clients.get(&command.client) != Some(&waiting) {
            return;
        }
        self.clients.remove(&command.client);
        if let Some(result) = applied.reply() {
            out.reply(Reply {
                client: command.client,
                seq: command.seq,
                result,
            });
        }
    }

    /// Replaces the delivered prefix by a snapshot once it is long enough.
    fn maybe_compact(&mut self, out: &mut Effects<Self>) {
        let delivered = self.history.count_through(self.committed) as u64;
        if delivered < self.config.snapshot_threshold {
            return;
        }
        let snapshot = Snapshot {
            last_zxid: self.committed,
            state: self.kv.clone(),
        };
        self.history.compact(Arc::new(snapshot));
        self.persist_checkpoint(out);
    }
}

fn answer(request: &Request, result: Result<Output, ClientError>, out: &mut Effects<Zab>) {
    out.reply(Reply {
        client: request.client,
        seq: request.seq,
        result,
    });
}
