#![no_main]
libfuzzer_sys::fuzz_target!(init: sheaf_fuzz::init("chain_tx"), |data: &[u8]| sheaf_fuzz::chain_tx(data));
