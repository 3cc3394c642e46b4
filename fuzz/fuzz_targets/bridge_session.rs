#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ha_pbx::fuzzing::bridge_session(data));
