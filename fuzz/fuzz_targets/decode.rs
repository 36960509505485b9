#![no_main]
//! Fuzz target: see udpix::fuzzing::decode (it asserts the invariants; the report it returns
//! is for the corpus replay in `cargo test`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    udpix::fuzzing::decode(data);
});
