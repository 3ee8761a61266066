#![no_main]
libfuzzer_sys::fuzz_target!(init: sheaf_fuzz::init("clock_skew"), |data: &[u8]| sheaf_fuzz::clock_skew(data));
