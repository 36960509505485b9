#![no_main]
//! Fuzz target: see udpix::fuzzing::receiver.

libfuzzer_sys::fuzz_target!(|data: &[u8]| udpix::fuzzing::receiver(data));
