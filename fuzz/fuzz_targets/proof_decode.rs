#![no_main]
libfuzzer_sys::fuzz_target!(init: sheaf_fuzz::init("proof_decode"), |data: &[u8]| sheaf_fuzz::proof_decode(data));
