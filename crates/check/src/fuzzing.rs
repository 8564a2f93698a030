//! Entry point for fuzzing the history readers (`fuzz/`, `cargo +nightly fuzz run history`)
//! and for replaying the checked-in corpus on stable (`tests/fuzz_corpus.rs`): any bytes given
//! to `quorate check` must parse or be refused with a line number, never panic.

use crate::history::{parse, Format};

/// Parses `data` as JSON lines, as EDN and by sniffing, and pairs what parses.
pub fn history(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for format in [Format::Auto, Format::Jsonl, Format::Edn] {
        if let Ok(history) = parse(&text, format) {
            let _ = history.pair();
        }
    }
}
