#![no_main]
libfuzzer_sys::fuzz_target!(init: sheaf_fuzz::init("claims_query"), |data: &[u8]| sheaf_fuzz::claims_query(data));
