#![no_main]
libfuzzer_sys::fuzz_target!(init: sheaf_fuzz::init("api_bodies"), |data: &[u8]| sheaf_fuzz::api_bodies(data));
