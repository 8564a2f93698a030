//! Scenario tests (filled below).
