//! The `quorate` command.

mod certs_cmd;
mod check_cmd;
mod cluster_cmd;
mod compare;
mod explore_cmd;
mod member_cmd;
mod serve_cmd;
mod sim_cmd;
mod snapshot_cmd;
mod torture_cmd;
mod view;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// mimalloc rather than glibc's malloc: a node allocates and frees about fifteen small objects
/// per request, often on another worker thread than the one that allocated them. glibc's
/// malloc took about a seventh of a loaded leader's CPU samples, mimalloc about a twentieth
/// (BENCHMARKS.md, "What a request costs the leader").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Consensus and replication protocols behind one replicated key-value interface, run in a
/// deterministic fault-injecting simulator and checked by a Jepsen-style history checker.
#[derive(Parser)]
#[command(name = "quorate", version, about, long_about = None)]
#[command(after_help = "Examples:\n  \
    quorate sim --protocol raft --nodes 5 --seeds 500 --faults all\n  \
    quorate sim --protocol multipaxos --nodes 5 --seeds 500 --faults all\n  \
    quorate sim --protocol raft --seed 42 --trace\n  \
    quorate compare --protocols all --faults leader-crash --seeds 20 --html compare.html\n  \
    quorate explore --protocol raft --nodes 3 --ops 2 --drops 1 --crashes 1\n  \
    quorate sim --protocol raft --seed 42 --history h.jsonl && quorate check h.jsonl\n  \
    quorate sim --protocol quorum --nodes 5 --n 3 --r 2 --w 2 --seeds 500 --faults all\n  \
    quorate sim --protocol quorum --preset write --allow-partial --no-write-back\n  \
    quorate sim --protocol multiprimary --resolve vv --seeds 500 --faults all\n  \
    quorate check knossos-history.edn --model sequential --svg why.svg\n  \
    quorate cluster --protocol raft --nodes 3        # then: redis-cli -p 6381 SET k v\n  \
    quorate cluster --tls certs/   # TLS; then: redis-cli --tls --cacert certs/ca.pem -p 6381\n  \
    quorate snapshot save backup.snap --addr 127.0.0.1:6381 && quorate snapshot status backup.snap\n  \
    quorate member add 4 --peer-addr 127.0.0.1:7104 --client-addr 127.0.0.1:6384 --endpoints 127.0.0.1:6381\n  \
    quorate snapshot restore backup.snap --data-dir new --nodes 3 && quorate cluster --data-dir new\n  \
    quorate serve --protocol raft --id 1 --peers 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103 \\\n        \
    --client-addr 127.0.0.1:6381 --data-dir /var/lib/quorate/n1")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run seeded simulations of a protocol under faults, checking safety after every step
    /// and linearizability of the client history at the end.
    Sim(sim_cmd::SimArgs),
    /// Run the same workload and fault schedule (the same seeds) over every protocol and
    /// compare throughput, latency, messages, fsyncs, unavailability after a leader crash,
    /// stale reads, consistency and lost writes side by side (tables, JSON, plots, HTML).
    Compare(compare::CompareArgs),
    /// Check a history file (JSON lines, or Jepsen/Knossos EDN) against a consistency model:
    /// linearizable, sequential, causal, session guarantees or convergence.
    Check(check_cmd::CheckArgs),
    /// Explore every schedule of a small cluster (deliveries, drops, timeouts, crashes,
    /// client requests) to a depth bound, checking safety after every step and the client
    /// history at every leaf.
    Explore(explore_cmd::ExploreArgs),
    /// Run one node of a cluster: peers over TCP, a write-ahead log on disk, Redis-protocol
    /// clients (redis-cli, redis-benchmark, any Redis library).
    Serve(serve_cmd::ServeArgs),
    /// Start a local cluster of node processes on loopback, print their addresses, and stop
    /// them all on Ctrl-C.
    Cluster(cluster_cmd::ClusterArgs),
    /// Jepsen in a box: a cluster of real node processes under a nemesis (kill -9, pauses,
    /// partitions, disk damage), concurrent clients, and their history checked.
    Torture(torture_cmd::TortureArgs),
    /// Write a development CA and a certificate per node (for `serve --tls DIR` and
    /// `cluster --tls DIR`).
    Certs(certs_cmd::CertsArgs),
    /// Online membership of a running Raft cluster: list, add (as a learner, then promoted
    /// once caught up), promote, remove, transfer-leader (as `etcdctl member` and
    /// `etcdctl move-leader` do).
    Member(member_cmd::MemberArgs),
    /// Backups: save a consistent snapshot of a running cluster, check a snapshot file, or
    /// seed a new cluster's data directories from one (as `etcdctl snapshot` does).
    Snapshot(snapshot_cmd::SnapshotArgs),
}

/// Exit status for bad input (usage errors, impossible options, unreadable files).
pub const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Sim(_) | Command::Compare(_) | Command::Check(_) | Command::Explore(_)
    ) {
        quiet_broken_pipe();
    }
    let result = match cli.command {
        Command::Sim(args) => sim_cmd::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Check(args) => check_cmd::run(args),
        Command::Explore(args) => explore_cmd::run(args),
        Command::Serve(args) => serve_cmd::run(args),
        Command::Cluster(args) => cluster_cmd::run(args),
        Command::Torture(args) => torture_cmd::run(args),
        Command::Certs(args) => certs_cmd::run(args),
        Command::Snapshot(args) => snapshot_cmd::run(args),
        Command::Member(args) => member_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// `quorate sim --trace | head` ends as other Unix filters do when the reader goes away:
/// quietly, by SIGPIPE, instead of panicking in `println!` (Rust ignores SIGPIPE by
/// default). Only for the commands that print streams; servers keep ignoring it and see
/// EPIPE on their sockets instead.
fn quiet_broken_pipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: restores the default disposition before any other thread exists; no handler
    // function is installed.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
