//! libFuzzer entry for `targets::gguf_reader` (see targets.rs and fuzz/README.md).
#![no_main]

#[path = "targets.rs"]
#[allow(dead_code)]
mod targets;

libfuzzer_sys::fuzz_target!(init: targets::init(), |data: &[u8]| targets::gguf_reader(data));
