//! The `quorate` command.

mod check_cmd;
mod sim_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Consensus and replication protocols behind one replicated key-value interface, run in a
/// deterministic fault-injecting simulator and checked by a Jepsen-style history checker.
#[derive(Parser)]
#[command(name = "quorate", version, about, long_about = None)]
#[command(after_help = "Examples:\n  \
    quorate sim --protocol raft --nodes 5 --seeds 500 --faults all\n  \
    quorate sim --protocol raft --seed 42 --trace\n  \
    quorate sim --protocol raft --seed 42 --history h.jsonl && quorate check h.jsonl\n  \
    quorate sim --protocol quorum --nodes 5 --n 3 --r 2 --w 2 --seeds 500 --faults all\n  \
    quorate sim --protocol quorum --preset write --allow-partial --no-write-back\n  \
    quorate sim --protocol multiprimary --resolve vv --seeds 500 --faults all")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run seeded simulations of a protocol under faults, checking safety after every step
    /// and linearizability of the client history at the end.
    Sim(sim_cmd::SimArgs),
    /// Check a history file (JSON lines) for linearizability.
    Check(check_cmd::CheckArgs),
}

/// Exit status for bad input (usage errors, impossible options, unreadable files).
pub const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim(args) => sim_cmd::run(args),
        Command::Check(args) => check_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
