#![no_main]
//! Fuzz target: see udpix::fuzzing::decode.

libfuzzer_sys::fuzz_target!(|data: &[u8]| udpix::fuzzing::decode(data));
