#![no_main]
//! See `quorate_server::fuzzing::resp`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| quorate_server::fuzzing::resp(data));
