#![no_main]
libfuzzer_sys::fuzz_target!(init: sheaf_fuzz::init("rollup_block"), |data: &[u8]| sheaf_fuzz::rollup_block(data));
