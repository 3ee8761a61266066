#![no_main]
libfuzzer_sys::fuzz_target!(init: sheaf_fuzz::init("rollup_local_transaction"), |data: &[u8]| sheaf_fuzz::rollup_local_transaction(data));
