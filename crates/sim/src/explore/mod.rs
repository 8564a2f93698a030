//! Bounded exhaustive exploration: every interleaving of a small cluster, not a random one.
//!
//! The seeded simulator samples schedules; a race whose window is one message wide (a view
//! change finishing inside one read-confirmation round, a quorum read overlapping a
//! half-finished write) is found only by luck. This explorer enumerates *every* schedule of a
//! small configuration up to a depth bound, over the same node types and the same per-step
//! safety checkers ([`Harness::invariants`]) the simulator uses, in the manner of stateright's
//! model checker and TLC. Every node with an applied store also runs the server's change feed,
//! caught up after every action and checked as the simulator checks it (agreement per
//! revision, contiguity, resuming watchers, and at the end of a schedule completeness against
//! the acknowledged writes; see `crate::feed`).
//!
//! ## The model
//!
//! A *world* is the nodes (up, or down with their durable records), the messages in flight,
//! the pending timers, the clients and the history they recorded. From a world, the enabled
//! *actions* are, in this order:
//!
//! 1. **Deliver** message `i` to its (up) destination. Channels of a
//!    [`Protocol::FIFO_CHANNELS`] protocol deliver only the oldest message of each link.
//! 2. **Drop** message `i` (at most `drops` per schedule), on FIFO channels only, where a
//!    drop breaks the link: every message in flight on it is lost, as a broken TCP connection
//!    loses a suffix. Elsewhere a message never delivered before the depth bound already is a
//!    lost one, so drops would only repeat schedules.
//! 3. **Fire** a pending timer of an up node. Time is one global clock (no drift). A timer set
//!    at `t` with range `after` fires within `t + after.min ..= t + after.max`: it may fire
//!    once its window opened and not after any other pending timer's window closed, and time
//!    jumps to its opening. So no timer fires early (a lease is never outlived by the election
//!    timer it relies on) and heartbeats come before election timeouts, while timers whose
//!    windows overlap (elections) fire in every order. Messages take no time.
//! 4. **Crash** an up node (at most `crashes` per schedule), or **restart** a down one from
//!    its durable records.
//! 5. **Send** a client's request to a node: to every up node that believes it leads (or, for
//!    leaderless protocols, every up replica), else to the first up node, which redirects.
//!    With [`ExploreConfig::any_node`], to every up node (CRAQ reads at every chain node).
//!    With [`ExploreConfig::sessions`] (ZooKeeper's clients), to every up node, followers
//!    included; and a client whose write succeeded then reads the key back in its session,
//!    with a plain (`Local`) read at the node that answered, which the history records as
//!    such (the ZAB promise judges plain reads by the ordered-reads check: a session's read
//!    must see its own acknowledged write). A write of a harness with
//!    [`Harness::sticky_writes`] (the leaderless ones, whose coordinators deduplicate a
//!    client's retries per node) retries only at the node it was first sent to, waiting
//!    while that node is down, as the simulator's clients do.
//! 6. **A torn step** ([`ExploreConfig::crash_points`], the default; within the crash
//!    budget): a delivery, timer firing or client request whose step persists a record
//!    after it sent a message to another node or answered a client is also offered with its
//!    node crashing at that persist: what it said is out, the record (and everything after
//!    it) is lost. Rule 1 of the driver contract holds every effect after a persist until
//!    it is durable, so a step that persists before it speaks has no such point and no extra
//!    branch. One that speaks first is explored with a crash in between: a Raft leader that
//!    sends a new entry before writing it (it does when its disk is idle, thesis §10.2.1),
//!    or a voter answering before its vote is on disk (the broken `vote-before-persist`).
//!    The simulator places the same crash points at random (`crash_points.rs`). Torn steps
//!    are listed after every other action, so the paths printed before they existed replay
//!    unchanged.
//! 7. **Send, losing the reply** (at most [`ExploreConfig::lost_replies`] per schedule,
//!    writes only): the request arrives and takes effect, its answer is lost (the connection
//!    broke after the request went out); the client times the attempt out and sends the same
//!    request again, as a real client does with `CLIENT RESUME`. The servers' session tables
//!    must recognise it: a retried increment applied twice is a lost update in the final
//!    reads (multi-primary's CRDT counters, `--resolve crdt`, whose clients add distinct
//!    amounts to a PN-Counter and read it).
//! 8. **Deliver late** ([`ExploreConfig::stale`] per schedule; the protocols without FIFO
//!    channels): a copy of a message sent earlier by a node that believed it led (any
//!    node, in the protocols without a leader), from the prefixes too, is delivered again,
//!    now. A copy is offered once. In the simulator the same fault (`stale`) brings a copy
//!    0.5 to 5 s later; here "later" is any point of the schedule, so a message of a
//!    leader's first reign can arrive after it was deposed and came back to lead again (an
//!    ABA that fencing by the sender's id, not by its term or view, lets through).
//!
//! Persists are durable at once, and a node's messages to itself, and the timers it sets to
//! fire at once (`0..=0`, a persist's completion), are handled within the same action (rule 6
//! of the driver contract): the explorer explores the network and crash
//! orders, not torn writes, which the simulator's disk faults cover. Client requests and
//! replies cross no network; a crash of the node a client waits on times the attempt out.
//! An action whose node keeps messaging itself (or setting timers due at once) past
//! `STEP_INPUTS_MAX` inputs never ends, since time never advances: that is a violation (the
//! simulator reports it as a seed whose step budget ran out).
//!
//! ## The warm-up prefix
//!
//! A leader-based protocol spends 6 to 10 actions electing its first leader (Raft: pre-vote and
//! vote rounds, then the no-op's append round), which leaves too little of an affordable depth
//! bound for a client operation to finish, let alone a failover after it. With
//! [`ExploreConfig::warm_up`] every schedule starts from one scripted prefix run by the same
//! nodes: deliver the oldest message in flight, else fire the timer whose window opens first,
//! until nothing is in flight, one node leads and every node follows it in its term with the
//! same commit index (node 1 wins: its election timer opens first). The exploration is then
//! exhaustive for every schedule that *begins* with that prefix; the schedules of the first
//! election are not explored (they are with `--no-warm-up`, to a smaller depth after the
//! election). The depth bound counts actions after the prefix.
//!
//! ## The failover prefix
//!
//! Some bugs need a second election while the first leader lives: a deposed leader that
//! still believes it leads serves a read, or talks a replica back into its old view. Reaching
//! that by search costs several rounds of timers behind the heartbeats. With
//! [`ExploreConfig::failover`] the scripted prefix goes on after the warm-up: the leader it
//! elected is *paused* (a process pause: nothing is delivered to it and none of its timers
//! fire, while the global clock runs on), and the others go on by the same script (the
//! oldest message not to the paused node, else the earliest timer of another node) until one
//! of them leads and the rest follow it in its term, everything in flight being addressed to
//! the paused node (if that script never settles, as when ZAB's two candidates end their
//! finalize waits in turn and each restarts the other's, it is run again with timers that
//! are due fired before messages). The search then starts with the deposed leader resumed: it still
//! believes it leads (clients send to it as to the new leader), what the others sent it is
//! in flight, and its timers are overdue, so they fire before any other (no timer fires
//! after another's window closed). The search is exhaustive for every schedule that begins
//! with both prefixes.
//!
//! With [`ExploreConfig::failover_node`] the prefix pauses that node instead, and the others
//! go on until a leader of a later term than the paused node's leads and they follow it. In a
//! chain the node that serves linearizable reads is the tail, not the head: pausing it (n3
//! of 3 after the warm-up) lets the head cut it out with a new view whose tail acknowledges
//! writes, and the search starts with the deposed tail resuming, still believing it is the
//! tail (clients reach it with [`ExploreConfig::any_node`], as a client connected to it
//! would).
//!
//! ## Variations of the failover prefix
//!
//! - [`ExploreConfig::pause_after_round`]: the leader is paused right after one more round
//!   (its earliest timer, a heartbeat, fires; the script delivers what it sent), so its
//!   followers' acknowledgements wait for it through the pause, as in a GC pause between a
//!   round and its answers. A lease must then run from the round, not from the answers.
//! - [`ExploreConfig::lagging`]: while the deposed leader is still paused, every client
//!   commits a write of a key of its own at the new leader (the writes of open sessions,
//!   made here instead). The search starts with the deposed leader resuming behind them,
//!   what would catch it up in flight (Raft's appends, a snapshot sent twice).
//! - [`ExploreConfig::rejoin`]: after the lagging writes, the deposed leader resumes and the
//!   script runs until every node follows the new leader with nothing in flight (whether
//!   the lagging node was also caught up is not asked: that is for the search to judge).
//!   The search starts after a synchronization (ZAB's DIFF, TRUNC or SNAP).
//!
//! ## Orphan writes
//!
//! With [`ExploreConfig::orphan_writes`] (two rounds), after the warm-up the scripted prefix
//! makes two deposed leaders that each hold a write no other node received: the leader
//! takes a write (of one of two extra clients), everything it sent for it is dropped, and it
//! is paused while the others settle on a new leader; then the new leader does the same, and
//! the first resumes and settles with the third node. The search starts with the second
//! deposed leader resuming, still believing it leads, its write the only copy. That is
//! Raft's Figure 8 (§5.4.2) on three nodes: the first leader's write of term `t` sits at
//! the index where the second wrote in `t + 1`; if the first, leading again in `t + 2`,
//! counted its old entry onto a majority and committed it, the second can still be
//! elected with the third node's vote (its last term `t + 1` is the later) and overwrite it.
//!
//! With one round the search starts with the first deposed leader resuming. In a CRAQ chain
//! `n1 -> n2 -> n3` that is the head n1 with a dirty write of view 1, while view 2 is
//! `n2 -> n3`: its old tail is still the tail, and has committed view 2's `ViewStart` at the
//! orphan's position. A read at n1 asks n3 which version is committed, across views (after
//! two rounds n3 heads the view `[n3, n1]`, and no tail is asked across views).
//!
//! ## Expiring writes
//!
//! With [`ExploreConfig::ttl_ms`] the clients' writes are `SET k v PX ttl`. The history
//! records them as the simulator does (`put_ttl`), with a clock error of one millisecond:
//! there is one clock and no drift, and the millisecond covers the nanoseconds by which the
//! events of one instant are ordered. A read after a timer firing moved the clock past the
//! deadline must find the key gone.
//!
//! With [`ExploreConfig::cas`] the clients' writes are CAS operations, each from the value
//! of the write before it (the first from the preload's `0`, below): writes that read the
//! current value. A CAS whose comparison failed is recorded `fail`, as the simulator's
//! clients record it (it did not happen; what it compared with is not judged).
//!
//! ## The preload prefix
//!
//! With [`ExploreConfig::preload`], after the warm-up one more client writes `k0` (a write
//! of the clients' kind, value `0`) by the same script, and the script runs until it is
//! committed and the cluster settled; the other prefixes come after it. The write costs the
//! search none of its depth, so what follows a committed write is reached a few actions
//! sooner: the leader's expiry of the key, replicated to and applied by its followers
//! (Raft's `follower-ignores-expiry` forks the change feed there); or, with a failover
//! prefix after it, a new leader whose clock is past the key's deadline before it proposed
//! the key's expiry, receiving a write that reads the key (`rmw-sees-expired`: a CAS from
//! the expired value that succeeds).
//!
//! ## Replacing a voter
//!
//! With [`ExploreConfig::replace_voter`] (Raft) one spare node, `n{nodes + 1}`, starts
//! outside the configuration. After the warm-up the spare boots, the leader is asked to add
//! it as a learner, and the script runs until it is caught up. The search may then send,
//! once, to a node that believes it leads, the admin request that replaces the last initial
//! voter with the spare (`ChangeMembership`: joint consensus, thesis §4.3). Its answer goes
//! to no client; the checks are the per-step invariants (election safety, leader
//! completeness, configuration safety) and the histories of any client operations. Raft's
//! `joint-new-majority-only`, which commits the joint configuration with a majority of the
//! new voters alone, is caught when the old majority, which never received it, elects a
//! leader without it.
//!
//! ## Open sessions
//!
//! With [`ExploreConfig::open_sessions`], after the warm-up every client commits a write of
//! a key of its own (`session1`, ...) by the same script, before its operation, which then
//! comes next in the same session: the servers know the clients, as they know those of a
//! running system (Raft reads a new session's linearizable read through the log, a known
//! session's by ReadIndex).
//!
//! ## Idle timer firings
//!
//! A timer may not fire after another's window closed, so a view-change timeout of 150 ms
//! behind 50 ms heartbeats opens only after every up node ticked three times, which a timer
//! budget of one never allows. With [`ExploreConfig::idle_timers`], a firing whose only
//! effects re-arm timers (the same timer names pending after it) costs neither the timer
//! budget nor depth, up to that many per schedule. The bounds change, the search within them
//! stays exhaustive.
//!
//! ## The search
//!
//! Depth-first to the depth bound, with state hashing: a world's digest covers every node's
//! state (its `Debug` form, which is canonical because protocol state lives in deterministic
//! containers), the durable records of down nodes, the in-flight messages as a multiset, the
//! timers, the clients and the history. A world already seen at the same or a smaller depth
//! (and with a sleep set no larger, below) is not expanded again. The checkers' ledgers are not
//! part of the digest (as in stateright, properties are judged on states, not on the paths to
//! them).
//!
//! **Sleep sets** (Godefroid's partial-order reduction, [`ExploreConfig::sleep_sets`]): two
//! deliveries to different nodes commute when neither answers or redirects a client. Each
//! steps its own node with its own message, at the same global time, and adds its own
//! messages to the network (on its own links, so FIFO order is kept): the two orders reach
//! the same world. After the search took delivery `a` from a world and comes back to take a
//! sibling `b` that commutes with it, `a` sleeps in `b`'s subtree: it is not taken again until
//! a step that does not commute with it (a delivery to `a`'s node, or any timer, crash,
//! restart, drop or client request) wakes it. Identical messages to one node are one action.
//! Every world reachable within the bound is still reached, and every schedule has an explored
//! equivalent that differs only in the order of commuting deliveries; what is saved is the
//! transitions that re-derive the same world. The order of commuting steps is seen only by the
//! checkers' ledgers, which get one representative order (they are outside the digest
//! already). A delivery that answered a client never commutes, so the order of client-visible
//! events is explored in full.
//!
//! After every step: the node's own invariants, the protocol's cluster-wide properties, and
//! the simulator's monotonicity check (a node's term, commit index and applied index never
//! go back within one incarnation), here on the node's status before and after each input.
//! At every leaf (depth bound, or nothing enabled): the history, with unfinished operations
//! as `info`, is judged by `quorate_check::judge` under [`Harness::promise`], the same judge as the simulator's, once per
//! distinct history. With [`ExploreConfig::final_reads`] (the protocols with
//! [`Harness::final_reads`]), the history first gets the simulator's final reads: every node
//! restarts, everything in flight is delivered (oldest first, no timers: the explorer's
//! network loses nothing, so that is what anti-entropy would bring), and every node reads
//! every key of the history (`Final` events), which the lost-write and agreement rules of the
//! leaderless promises judge.
//!
//! ## Replay
//!
//! A schedule is the list of action indices taken after the warm-up prefix (if any),
//! `0.3.1.2`; [`replay`] re-runs the prefix and the schedule and returns the trace. Indices are positions in the enabled-action list above, which is a
//! deterministic function of the world.

mod world;

use crate::harness::Harness;
use quorate_check::EventKind;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};
use world::{DeliveryKey, World};

/// The bounds of one exploration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExploreConfig {
    pub nodes: usize,
    /// Actions per schedule.
    pub depth: usize,
    /// Client operations, one client each (so they may run concurrently).
    pub ops: usize,
    /// Message drops per schedule.
    pub drops: usize,
    /// Crashes per schedule (restarts are not counted).
    pub crashes: usize,
    /// Timer firings per schedule after the warm-up prefix; `None`: as many as the depth
    /// allows.
    pub timers: Option<usize>,
    /// Stop after expanding this many worlds (the report then says the search was cut).
    pub states_max: u64,
    /// Attempts per client operation before it gives up (outcome unknown).
    pub attempts_max: u32,
    /// Start every schedule after the scripted warm-up prefix (a leader elected and
    /// followed by every node), instead of from the boot.
    pub warm_up: bool,
    /// Sleep sets over deliveries to different nodes (see the module header). Off: every
    /// order of every enabled action.
    pub sleep_sets: bool,
    /// ZooKeeper-style sessions: clients send to any up node (followers too, which forward
    /// writes), and a client whose write succeeded reads the key back in its session with a
    /// plain (`Local`) read at the node that answered (see the module header).
    pub sessions: bool,
    /// Idle timer firings per schedule that count against neither `timers` nor `depth`: a
    /// firing whose only effects re-arm timers, with the same timer names pending after it (a
    /// backup's heartbeat tick: nothing sent, persisted, answered or cancelled). They let a
    /// longer timeout (a view change) open behind a short periodic timer. Idleness decides
    /// only what a firing costs of the bounds, never whether it is explored.
    pub idle_timers: usize,
    /// The failover prefix, after the warm-up (which it implies): the leader the warm-up
    /// elected is paused (nothing delivered to it, none of its timers fire, its clock runs
    /// on) while the scripted prefix goes on among the others until they settle on a new
    /// leader. The search starts with the deposed leader resuming, still believing it leads,
    /// its overdue timers first (see the module header).
    pub failover: bool,
    /// The node (an index, `0` for n1) the failover prefix pauses instead of the leader; the
    /// others then settle on a leader of a later view than the paused node's. A chain's tail
    /// (n3 of 3 after the warm-up) is cut out by its head this way, and the search starts with
    /// it resuming, still believing it is the tail. `None`: the leader.
    pub failover_node: Option<usize>,
    /// Clients send to any up node, not only to those that believe they lead (as the
    /// simulator's clients do): CRAQ serves reads at every chain node, and a follower
    /// redirects or forwards. `sessions` implies it.
    pub any_node: bool,
    /// After the warm-up, every client opens its session with a write of a key of its own,
    /// committed in the scripted prefix: the clients have used the cluster before, so the
    /// servers know their sessions (Raft serves a known session's reads by ReadIndex, a new
    /// one's through the log).
    pub open_sessions: bool,
    /// At every leaf, the simulator's final reads for the protocols that have them
    /// ([`Harness::final_reads`]: multiprimary, quorum): every node restarts, every message
    /// in flight is delivered, and every node reads every key; the promise then judges the
    /// replicas' final state too (lost writes, agreement).
    pub final_reads: bool,
    /// The failover prefix (implied), and then, while the deposed leader is still paused,
    /// every client commits a write of a key of its own at the new leader (the writes
    /// [`ExploreConfig::open_sessions`] makes, made here instead of at the warm-up). The
    /// search starts with the deposed leader resuming behind those writes: what catches it
    /// up (Raft's probes, a snapshot) is in flight.
    pub lagging: bool,
    /// [`ExploreConfig::lagging`] (implied), and then the deposed leader resumes and the
    /// script runs until every node follows the new leader with nothing in flight: the
    /// lagging replica has rejoined (ZAB's synchronization, Raft's catch-up) before the
    /// search starts. Whether it was also caught up is the search's to judge.
    pub rejoin: bool,
    /// The failover prefix (implied), with the leader paused right after one more round:
    /// its earliest timer (a heartbeat) fires, and the script delivers what it sent, so the
    /// followers' acknowledgements wait for it, in flight, through the pause (a GC pause
    /// that catches a leader between a round and its answers).
    pub pause_after_round: bool,
    /// Client attempts per schedule whose answer is lost after the request took effect
    /// (writes only): the client times out and retries the same request, which the
    /// servers' session tables must recognise (a retried increment applied twice is a lost
    /// update in the final reads).
    pub lost_replies: usize,
    /// The orphan-writes prefix after the warm-up (which it implies; it replaces the
    /// failover prefix), this many rounds (0: none; 1 or 2): the leader takes a write of a
    /// client of its own and is cut off and paused before anything it sent for it arrives,
    /// and the others settle on a new leader; in a second round the first deposed leader
    /// resumes. One more client per round sends the write. The search starts with the last
    /// deposed leader resuming (see the module header).
    pub orphan_writes: usize,
    /// Crash points (on by default; within the `crashes` budget): a delivery, timer firing
    /// or client request whose step persists a record *after* it sent a message to another
    /// node or answered a client may also be taken with its node crashing right there, what
    /// it said out and the record lost (see the module header).
    pub crash_points: bool,
    /// The clients' writes expire after this many milliseconds (`SET k v PX ttl`; Raft and
    /// the KV protocols that keep deadlines), judged with the simulator's expiry window.
    pub ttl_ms: Option<u64>,
    /// The clients' writes are CAS operations, each from the value of the write before it
    /// (the first from the preloaded `0`, or from absent): writes that read the current
    /// value. A CAS whose comparison fails is recorded `fail`.
    pub cas: bool,
    /// The preload prefix, after the warm-up (which it implies) and before any other
    /// prefix: one more client writes `k0` (a write of the clients' kind, so with
    /// [`Self::ttl_ms`] it expires) and the script runs until it is committed and the
    /// cluster settled. The search starts with the key written; with a failover prefix
    /// after it, the key's deadline passed on a leader that never proposed its expiry.
    pub preload: bool,
    /// A membership change (Raft): one spare node beyond `nodes` starts outside the
    /// configuration; after the warm-up the leader adds it as a learner and the script
    /// catches it up. The search may then send, once, the admin request that replaces the
    /// last initial voter with the spare (`ChangeMembership`, joint consensus), to a node that
    /// believes it leads.
    pub replace_voter: bool,
    /// Every node runs the server's change feed, checked after every action and at the end
    /// of a schedule (on by default; off shows what the other checks catch on their own).
    pub change_feeds: bool,
    /// Late copies per schedule (the simulator's `stale` fault): every message a node sent
    /// while it believed it led (any node's, in the protocols without a leader), the
    /// prefixes' included, is kept, and the search may deliver a copy of one again at any
    /// later point, long after its sender was deposed or came back to lead again. Protocols
    /// with [`Protocol::FIFO_CHANNELS`](quorate_core::Protocol::FIFO_CHANNELS) keep none: a
    /// connection delivers nothing out of order.
    pub stale: usize,
}

impl Default for ExploreConfig {
    fn default() -> Self {
        ExploreConfig {
            nodes: 3,
            depth: 10,
            ops: 2,
            drops: 1,
            crashes: 1,
            timers: None,
            states_max: 5_000_000,
            attempts_max: 3,
            warm_up: false,
            sleep_sets: true,
            sessions: false,
            idle_timers: 0,
            failover: false,
            failover_node: None,
            any_node: false,
            open_sessions: false,
            final_reads: false,
            lagging: false,
            rejoin: false,
            pause_after_round: false,
            lost_replies: 0,
            orphan_writes: 0,
            crash_points: true,
            ttl_ms: None,
            cas: false,
            preload: false,
            replace_voter: false,
            change_feeds: true,
            stale: 0,
        }
    }
}

/// The depth `quorate explore` and CI use for `protocol` (its `--protocol` name): as deep as
/// finishes in seconds on one core in a release build, with the other defaults.
pub fn default_depth(protocol: &str) -> usize {
    match protocol {
        "raft" => 9,
        "multipaxos" | "multiprimary" => 7,
        "zab" => 8,
        "quorum" => 6,
        "paxos" | "paxos-livelock" => 8,
        "chain" | "craq" => 10,
        "primary-backup" => 12,
        _ => 6,
    }
}

/// Whether `quorate explore` and CI start `protocol`'s schedules after the warm-up prefix:
/// the protocols with an elected leader (or primary, or chain head) whose election would
/// otherwise use up most of the depth bound.
pub fn default_warm_up(protocol: &str) -> bool {
    matches!(
        protocol,
        "raft" | "zab" | "primary-backup" | "chain" | "craq"
    )
}

/// The timer-firing budget `quorate explore` and CI use for `protocol` after its warm-up:
/// one timer (a heartbeat, an election timeout, a view change) per schedule for the
/// leader-based protocols, none bounded for the others.
pub fn default_timers(protocol: &str) -> Option<usize> {
    default_warm_up(protocol).then_some(1)
}

/// What an exploration found.
#[derive(Clone, Debug)]
pub struct ExploreReport {
    pub protocol: &'static str,
    /// Worlds expanded (a world reached again at a greater depth is not).
    pub states: u64,
    /// Distinct worlds seen (digests).
    pub distinct: u64,
    /// The deepest schedule explored.
    pub max_depth: usize,
    /// Schedules that ended (depth bound, or nothing enabled).
    pub leaves: u64,
    /// Distinct histories judged at leaves, and how many of them had a completed operation.
    pub histories: u64,
    pub histories_completed: u64,
    /// `states_max` stopped the search before it was exhaustive.
    pub cut: bool,
    pub elapsed: Duration,
    pub violation: Option<Counterexample>,
}

/// A violated property and the schedule that reaches it.
#[derive(Clone, Debug)]
pub struct Counterexample {
    /// Action indices, replayable with [`replay`].
    pub path: Vec<usize>,
    pub violation: String,
}

impl Counterexample {
    /// The path as `--replay` takes it.
    pub fn path_text(&self) -> String {
        path_text(&self.path)
    }
}

/// `0.3.1.2`.
pub fn path_text(path: &[usize]) -> String {
    let parts: Vec<String> = path.iter().map(usize::to_string).collect();
    parts.join(".")
}

/// Parses `0.3.1.2` (an empty string is the empty schedule).
pub fn parse_path(text: &str) -> Result<Vec<usize>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split('.')
        .map(|part| {
            part.trim().parse().map_err(|_| {
                format!("bad step {part:?} in replay path {text:?}: expected numbers joined by dots, as `quorate explore` prints them")
            })
        })
        .collect()
}

/// Explores every schedule of `harness` within `config`; `progress` is called now and then
/// with the worlds expanded so far.
pub fn explore<H>(
    harness: &H,
    config: &ExploreConfig,
    progress: &mut dyn FnMut(u64),
) -> ExploreReport
where
    H: Harness,
    H::Node: Clone + std::fmt::Debug,
    H::Invariants: Clone,
{
    let started = Instant::now();
    let mut search = Search {
        harness,
        config,
        seen: HashMap::new(),
        judged: HashSet::new(),
        report: ExploreReport {
            protocol: harness.name(),
            states: 0,
            distinct: 0,
            max_depth: 0,
            leaves: 0,
            histories: 0,
            histories_completed: 0,
            cut: false,
            elapsed: Duration::ZERO,
            violation: None,
        },
        progress,
        path: Vec::new(),
    };
    match World::start(harness, config, None) {
        Ok(world) => {
            search.dfs(world, Vec::new());
        }
        Err(violation) => {
            search.report.violation = Some(Counterexample {
                path: Vec::new(),
                violation,
            })
        }
    }
    search.report.distinct = search.seen.len() as u64;
    search.report.elapsed = started.elapsed();
    search.report
}

/// Re-runs `path` and returns its trace, one line per action, and the violation it reaches
/// (checked after every step, and on the history at its end).
pub fn replay<H>(
    harness: &H,
    config: &ExploreConfig,
    path: &[usize],
) -> Result<(Vec<String>, Option<String>), String>
where
    H: Harness,
    H::Node: Clone + std::fmt::Debug,
    H::Invariants: Clone,
{
    let mut trace = Vec::new();
    let mut world = match World::start(harness, config, Some(&mut trace)) {
        Ok(world) => world,
        Err(violation) => return Ok((trace, Some(violation))),
    };
    for (depth, &index) in path.iter().enumerate() {
        let actions = world.actions(config);
        let Some(&action) = actions.get(index) else {
            return Err(format!(
                "step {depth} of the replay path takes action {index}, but only {} are enabled there: \
                 replay with the same --nodes, --ops, --drops, --crashes and --bug as the exploration",
                actions.len()
            ));
        };
        trace.push(format!(
            "{depth:>3} [{index}] t={}ms {}",
            world.now / 1_000_000,
            world.describe(action)
        ));
        if let Err(violation) = world.apply(harness, action, Some(&mut trace)) {
            return Ok((trace, Some(violation)));
        }
    }
    let history = match world.with_final_reads(harness, config) {
        Ok(Some(history)) => history,
        Ok(None) => world.final_history(),
        Err(violation) => return Ok((trace, Some(violation))),
    };
    let found = world.judge_history(harness, &history);
    for event in history {
        trace.push(format!("    history: {event:?}"));
    }
    // What the schedule could take next, to extend it by hand.
    for (index, action) in world.actions(config).into_iter().enumerate() {
        trace.push(format!("    next [{index}] {}", world.describe(action)));
    }
    Ok((trace, found.err()))
}

struct Search<'a, H: Harness> {
    harness: &'a H,
    config: &'a ExploreConfig,
    /// World digest -> the depth it was expanded at and the sleep set it was expanded with
    /// (the smallest depth, or the last expansion at it).
    seen: HashMap<u64, (usize, Vec<DeliveryKey>)>,
    /// Digests of the histories judged (a violation stops the search, so every one passed).
    judged: HashSet<u64>,
    report: ExploreReport,
    progress: &'a mut dyn FnMut(u64),
    path: Vec<usize>,
}

impl<H> Search<'_, H>
where
    H: Harness,
    H::Node: Clone + std::fmt::Debug,
    H::Invariants: Clone,
{
    /// Returns false to stop the search (a violation, or `states_max`). `sleep`: deliveries
    /// that need not be taken here, because a sibling schedule took them first and nothing
    /// taken since depends on them.
    fn dfs(&mut self, world: World<H>, sleep: Vec<DeliveryKey>) -> bool {
        let depth = self.path.len() - world.idle_taken;
        if !self.first_visit(world.digest(), depth, &sleep) {
            return true;
        }
        self.report.states += 1;
        self.report.max_depth = self.report.max_depth.max(depth);
        if self.report.states.is_multiple_of(4096) {
            (self.progress)(self.report.states);
        }
        if self.report.states >= self.config.states_max {
            self.report.cut = true;
            return false;
        }
        let actions = if depth < self.config.depth {
            world.actions(self.config)
        } else {
            Vec::new()
        };
        if actions.is_empty() {
            return self.leaf(&world);
        }
        let keys: Vec<Option<DeliveryKey>> =
            actions.iter().map(|a| world.delivery_key(*a)).collect();
        let mut world = Some(world);
        // Deliveries taken from here: identical ones are not taken twice, and those that
        // touched no client sleep in the later siblings' schedules.
        let mut taken: Vec<DeliveryKey> = Vec::new();
        let mut asleep: Vec<DeliveryKey> = sleep;
        for (index, action) in actions.iter().enumerate() {
            let key = keys[index];
            let skip = |k: &DeliveryKey| asleep.contains(k) || taken.contains(k);
            if self.config.sleep_sets && key.as_ref().is_some_and(skip) {
                continue;
            }
            // The last action that may be taken gets the world itself rather than a copy.
            let later = (index + 1..actions.len()).any(|j| {
                let skipped = keys[j].is_some_and(|k| skip(&k) || Some(k) == key);
                !self.config.sleep_sets || !skipped
            });
            let mut next = if later {
                world.as_ref().expect("kept for later actions").clone()
            } else {
                world.take().expect("the world is kept for the last action")
            };
            self.path.push(index);
            let outcome = next.apply(self.harness, *action, None);
            let commutes = key.filter(|_| self.config.sleep_sets && !next.touched_clients);
            let child_sleep: Vec<DeliveryKey> = match commutes {
                Some(k) => asleep.iter().copied().filter(|s| s.to != k.to).collect(),
                None => Vec::new(),
            };
            let go_on = match outcome {
                Ok(()) => self.dfs(next, child_sleep),
                Err(violation) => {
                    self.report.violation = Some(Counterexample {
                        path: self.path.clone(),
                        violation,
                    });
                    false
                }
            };
            self.path.pop();
            if !go_on {
                return false;
            }
            if let Some(k) = key {
                taken.push(k);
                if commutes.is_some() {
                    asleep.push(k);
                }
            }
        }
        true
    }

    /// Records a visit; false if an earlier expansion already covered this one (reached at
    /// the same or a smaller depth, with a sleep set no larger).
    fn first_visit(&mut self, digest: u64, depth: usize, sleep: &[DeliveryKey]) -> bool {
        if let Some((at, slept)) = self.seen.get(&digest) {
            let covered = slept.iter().all(|k| sleep.contains(k));
            if *at <= depth && covered {
                return false;
            }
            if *at < depth {
                return true; // Keep the record of the shallower expansion.
            }
        }
        self.seen.insert(digest, (depth, sleep.to_vec()));
        true
    }

    fn leaf(&mut self, world: &World<H>) -> bool {
        self.report.leaves += 1;
        let history = match world.with_final_reads(self.harness, self.config) {
            Ok(Some(history)) => history,
            Ok(None) => world.final_history(),
            Err(violation) => {
                self.report.violation = Some(Counterexample {
                    path: self.path.clone(),
                    violation,
                });
                return false;
            }
        };
        let mut hasher = DefaultHasher::new();
        history.hash(&mut hasher);
        if !self.judged.insert(hasher.finish()) {
            return true;
        }
        self.report.histories += 1;
        if history.iter().any(|e| e.kind == EventKind::Ok) {
            self.report.histories_completed += 1;
        }
        match world.judge_history(self.harness, &history) {
            Ok(()) => true,
            Err(violation) => {
                self.report.violation = Some(Counterexample {
                    path: self.path.clone(),
                    violation,
                });
                false
            }
        }
    }
}
