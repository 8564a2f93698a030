#![no_main]
//! See `quorate_server::fuzzing::peer`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| quorate_server::fuzzing::peer(data));
