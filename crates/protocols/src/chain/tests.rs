//! Scenario tests for chain replication.
