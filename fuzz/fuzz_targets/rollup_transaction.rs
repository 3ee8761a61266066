#![no_main]
libfuzzer_sys::fuzz_target!(init: sheaf_fuzz::let_caught_panics_unwind(), |data: &[u8]| sheaf_fuzz::rollup_transaction(data));
