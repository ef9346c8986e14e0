//! Split GGUF sets (llama.cpp's `gguf-split` layout): the default model split into parts loads
//! from its first part and matches the float64 reference; a missing part, a part of another
//! set, a part out of order and a later part loaded alone each fail with one clear error.

mod common;
#[path = "common/gguf_writer.rs"]
#[allow(dead_code)]
mod gguf_writer;

use std::path::{Path, PathBuf};

use common::*;
use gguf_writer::GgufFile;
use hearth::cpu::CpuWeights;

/// Writes the parts as `dir/smol-0000k-of-0000n.gguf` and returns the first's path.
fn write_parts(dir: &Path, parts: &[GgufFile]) -> PathBuf {
    let n = parts.len();
    for (i, p) in parts.iter().enumerate() {
        std::fs::write(dir.join(format!("smol-{:05}-of-{n:05}.gguf", i + 1)), p.bytes()).unwrap();
    }
    dir.join(format!("smol-00001-of-{n:05}.gguf"))
}

fn default_model() -> GgufFile {
    GgufFile::parse(&std::fs::read(model_path()).unwrap())
}

fn load_error(first: &Path) -> String {
    match CpuWeights::load_file(first, |_| {}) {
        Ok(_) => panic!("{} should not load", first.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_split_model_loads_from_its_first_part_and_matches_float64() {
    let model = default_model();
    // gguf-split's default (128 tensors a part: 3 parts here), and its metadata-only first part.
    for (max_tensors, metadata_only_first, n_parts) in [(128, false, 3), (100, true, 4)] {
        let dir = tempfile::tempdir().unwrap();
        let parts = model.split(max_tensors, metadata_only_first);
        assert_eq!(parts.len(), n_parts);
        let first = write_parts(dir.path(), &parts);
        let mut seen = Vec::new();
        let (model, mut session) = {
            let (m, w) = CpuWeights::load_file(&first, |p| seen.push((p.loaded, p.total))).expect("the split model loads");
            let backend = hearth::cpu::CpuBackend::new(m.plan.clone(), std::sync::Arc::new(w), 4096);
            let n_vocab = m.config().n_vocab;
            (m, hearth::session::Session::new(Box::new(backend), n_vocab))
        };
        let total: u64 = (1..=n_parts).map(|i| std::fs::metadata(dir.path().join(format!("smol-{i:05}-of-{n_parts:05}.gguf"))).unwrap().len()).sum();
        assert_eq!(seen.last(), Some(&(total, Some(total))), "progress counts every part's bytes");
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "progress never goes back");
        golden::teacher_forced(&mut session, model.config().n_vocab, 0.03);
        // The whole set's header: every tensor, once.
        let header = hearth::model::read_model_header(&first).unwrap();
        assert_eq!(header.tensors.len(), default_model().tensors.len());
    }
}

#[test]
fn bad_split_sets_fail_with_one_clear_error() {
    let model = default_model();
    let dir = tempfile::tempdir().unwrap();
    let parts = model.split(128, false);
    let first = write_parts(dir.path(), &parts);
    let part = |i: usize| dir.path().join(format!("smol-{i:05}-of-00003.gguf"));

    // A later part alone.
    let err = load_error(&part(2));
    assert!(err.contains("part 2 of a model split into 3 files") && err.contains("-00001-of-00003.gguf"), "{err}");

    // A missing part, named.
    std::fs::rename(part(3), dir.path().join("aside.gguf")).unwrap();
    let err = load_error(&first);
    assert!(err.contains("part 3 of 3") && err.contains("smol-00003-of-00003.gguf") && err.contains("missing"), "{err}");
    std::fs::rename(dir.path().join("aside.gguf"), part(3)).unwrap();

    // Parts swapped: each is numbered inside.
    std::fs::write(part(2), parts[2].bytes()).unwrap();
    let err = load_error(&first);
    assert!(err.contains("smol-00002-of-00003.gguf") && err.contains("part 2 of 3 is numbered part 3 inside"), "{err}");

    // A part of another set with as many parts (split elsewhere): its tensors do not complete
    // this set.
    let other = model.split(100, false);
    assert_eq!(other.len(), 3);
    std::fs::write(part(2), other[1].bytes()).unwrap();
    let err = load_error(&first);
    assert!(err.contains("the parts hold 244 tensors, but the set announces 272"), "{err}");

    // A part of a set of another size.
    let four = model.split(90, false);
    assert_eq!(four.len(), 4);
    std::fs::write(part(2), four[1].bytes()).unwrap();
    let err = load_error(&first);
    assert!(err.contains("smol-00002-of-00003.gguf") && err.contains("belongs to another set"), "{err}");

    // A file named as a first part that is not one (no split metadata) is refused, not run
    // as the first part alone.
    std::fs::write(part(2), parts[1].bytes()).unwrap();
    std::fs::copy(model_path(), &first).unwrap();
    let err = load_error(&first);
    assert!(err.contains("no split.* metadata"), "{err}");
}

#[test]
fn the_cli_reads_a_split_model_by_its_first_part() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_parts(dir.path(), &default_model().split(128, false));
    let hearth = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_hearth")).args(args).output().unwrap();
    let first = first.to_str().unwrap();
    let out = hearth(&["inspect", first, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["parts"].as_u64(), v["n_tensors"].as_u64()), (Some(3), Some(272)));
    std::fs::remove_file(dir.path().join("smol-00002-of-00003.gguf")).unwrap();
    let out = hearth(&["inspect", first]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.lines().count() == 1 && stderr.contains("part 2 of 3 of the split model is missing"), "{stderr}");
}
