//! libFuzzer entry for `targets::tokenizer` (see targets.rs and fuzz/README.md).
#![no_main]

#[path = "targets.rs"]
#[allow(dead_code)]
mod targets;

libfuzzer_sys::fuzz_target!(init: targets::init(), |data: &[u8]| targets::tokenizer(data));
