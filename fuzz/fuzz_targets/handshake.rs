#![no_main]
//! Fuzz target: see udpix::fuzzing::handshake.

libfuzzer_sys::fuzz_target!(|data: &[u8]| udpix::fuzzing::handshake(data));
