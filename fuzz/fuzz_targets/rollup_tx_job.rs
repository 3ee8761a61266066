#![no_main]
libfuzzer_sys::fuzz_target!(init: sheaf_fuzz::init("rollup_tx_job"), |data: &[u8]| sheaf_fuzz::rollup_tx_job(data));
