#![no_main]
//! See `quorate_check::fuzzing::history`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| quorate_check::fuzzing::history(data));
