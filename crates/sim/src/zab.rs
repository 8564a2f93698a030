//! ZAB in the simulator: its harness, and how its histories are judged.
//!
//! ZAB promises different things for different reads (see `quorate_protocols::zab`):
//! writes and `Linearizable` reads go through the log and must be linearizable; `Local` and
//! `Sync` reads are answered from one server's state and are sequentially consistent. The
//! history is judged by the `zab` promise ([`quorate_check::promise`]): linearizability over
//! writes and linearizable reads, and the ordered-reads check
//! ([`quorate_check::ordered_reads`], which says why it is not the library's general
//! sequential checker) over everything. Each event records its read mode, so an exported
//! history is judged the same way.

use crate::config::ReadMix;
use crate::harness::{DiskCodec, Harness, MessageSize};
use quorate_check::Promise;
use quorate_core::{KvStore, NodeId};
use quorate_protocols::zab::{Zab, ZabConfig, ZabSafety};
use std::time::Duration;

/// ZAB, with a snapshot threshold low enough that compaction and SNAP happen in most runs.
#[derive(Clone, Debug)]
pub struct ZabHarness {
    pub config: ZabConfig,
}

impl ZabHarness {
    /// The read mix `quorate sim --protocol zab` uses unless told otherwise: mostly
    /// ZooKeeper's plain reads, some `sync` + read, some linearizable reads.
    pub const READS: ReadMix = ReadMix {
        linearizable: 1,
        local: 3,
        sync: 1,
    };
}

impl Default for ZabHarness {
    fn default() -> Self {
        ZabHarness {
            config: ZabConfig {
                tick: Duration::from_millis(50),
                init_limit: 10,
                sync_limit: 6,
                snapshot_threshold: 64,
                ..ZabConfig::default()
            },
        }
    }
}

impl Harness for ZabHarness {
    type Node = Zab;
    type Invariants = ZabSafety;

    fn message_size(&self) -> Option<MessageSize<Zab>> {
        Some(crate::harness::wire_size)
    }

    fn disk(&self) -> Option<DiskCodec<Zab>> {
        Some(DiskCodec::postcard())
    }

    fn name(&self) -> &'static str {
        "zab"
    }

    fn node(&self, id: NodeId, members: &[NodeId]) -> Zab {
        Zab::new(id, members, self.config.clone())
    }

    fn applied_store<'n>(&self, node: &'n Zab) -> Option<&'n KvStore> {
        Some(node.store())
    }

    fn invariants(&self) -> ZabSafety {
        ZabSafety::new()
    }

    fn promise(&self) -> Promise {
        Promise::Zab
    }
}
