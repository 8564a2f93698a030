//! The simulator's integration tests, one binary: each module was its own test binary, and
//! linking 25 of them took a large share of CI's cold build.

mod budgets;
mod change_feed;
mod client_identity;
mod clock_beyond_bound;
mod cost;
mod crash_points;
mod defences;
mod explore;
mod fifo_channels;
mod leader_crash;
mod leases;
mod monotonicity;
mod multipaxos_simulation;
mod multiprimary_simulation;
mod one_verdict;
mod pauses;
mod paxos_simulation;
mod primary_backup_failover;
mod primary_backup_simulation;
mod quorum_simulation;
mod quorum_write_back;
mod raft_figure8;
mod raft_reconfig;
mod raft_scripted;
mod raft_simulation;
mod stale_messages;
mod storage_recovery;
mod support;
mod transactions;
mod zab_simulation;
mod zab_sync;
