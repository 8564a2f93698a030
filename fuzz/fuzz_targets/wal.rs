#![no_main]
//! See `quorate_storage::fuzzing::recover`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| quorate_storage::fuzzing::recover(data));
