#![no_main]
libfuzzer_sys::fuzz_target!(init: sheaf_fuzz::init("chain_rpc"), |data: &[u8]| sheaf_fuzz::chain_rpc(data));
