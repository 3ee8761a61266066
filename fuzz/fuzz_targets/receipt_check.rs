#![no_main]
libfuzzer_sys::fuzz_target!(init: sheaf_fuzz::init("receipt_check"), |data: &[u8]| sheaf_fuzz::receipt_check(data));
