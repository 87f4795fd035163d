#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| presence_store_fuzz::router::run(data));
