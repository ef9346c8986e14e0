//! Building a model from pushed chunks (how the browser loads): the same model as reading the
//! file, a SHA-256 of exactly the bytes pushed, and clear errors for bad or cut-off input.

mod common;

use std::sync::Arc;

use common::*;
use hearth::backend::{Backend, LogitsFor};
use hearth::cpu::{CpuBackend, CpuWeights};
use hearth::model::ModelStream;

fn cpu_stream(total: Option<u64>) -> ModelStream<CpuWeights> {
    ModelStream::new(total, Box::new(|plan| Ok(CpuWeights::new(plan))), Box::new(CpuWeights::put))
}

#[test]
fn pushed_chunks_build_the_same_model_as_the_file() {
    let bytes = std::fs::read(model_path()).unwrap();
    let mut stream = cpu_stream(Some(bytes.len() as u64));
    // Uneven chunk sizes, like network reads.
    let mut pos = 0;
    for (i, size) in [1usize, 7, 65_536, 1 << 20, 3_000_001].iter().cycle().enumerate() {
        if pos >= bytes.len() {
            break;
        }
        let end = (pos + size + i).min(bytes.len());
        stream.push(&bytes[pos..end]).unwrap();
        pos = end;
        assert_eq!(stream.loaded(), pos as u64);
    }
    assert!(stream.is_done());
    let want_sha = std::fs::read_to_string("build.sh").unwrap();
    assert!(want_sha.contains(&format!("MODEL_SHA256={}", stream.sha256_hex())), "sha256 {}", stream.sha256_hex());
    let (model, weights) = stream.finish().unwrap();
    // Tensors handed over in pieces of whole rows build the same weights.
    let mut pieces = cpu_stream(None).in_pieces(100_000);
    for c in bytes.chunks(1 << 20) {
        pieces.push(c).unwrap();
    }
    let (_, piece_weights) = pieces.finish().unwrap();
    let (file_model, file_weights) = CpuWeights::load_file(&model_path(), |_| {}).unwrap();
    assert_eq!(model.config().n_vocab, file_model.config().n_vocab);
    let ids = [1u32, 504, 3458, 282];
    let mut a = CpuBackend::new(model.plan.clone(), Arc::new(weights), 16);
    let mut b = CpuBackend::new(file_model.plan.clone(), Arc::new(file_weights), 16);
    let mut c = CpuBackend::new(model.plan.clone(), Arc::new(piece_weights), 16);
    let want = b.forward(&ids, 0, LogitsFor::All).unwrap();
    assert_eq!(a.forward(&ids, 0, LogitsFor::All).unwrap(), want);
    assert_eq!(c.forward(&ids, 0, LogitsFor::All).unwrap(), want);
}

#[test]
fn cut_off_and_foreign_input_fail_clearly() {
    let bytes = std::fs::read(model_path()).unwrap();
    let mut cut = cpu_stream(Some(bytes.len() as u64));
    cut.push(&bytes[..10_000_000]).unwrap();
    assert!(cut.model().is_some(), "the header is in the first 10 MB");
    let err = cut.finish().err().expect("a cut-off file is an error").to_string();
    assert!(err.contains("file ends early at byte 10000000 while reading the data of tensor"), "{err}");

    let mut text = cpu_stream(None);
    let err = text.push(b"<!doctype html><html>not found</html>").unwrap_err().to_string();
    assert!(err.contains("not a GGUF file"), "{err}");
    // The stream stays failed rather than misreading later bytes.
    assert!(text.push(&bytes[..1024]).is_err());
    assert!(text.finish().is_err());
}
