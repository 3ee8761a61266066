#![no_main]
libfuzzer_sys::fuzz_target!(init: sheaf_fuzz::init("signed_request"), |data: &[u8]| sheaf_fuzz::signed_request(data));
