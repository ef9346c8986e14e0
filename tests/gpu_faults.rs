//! GPU faults become errors, never panics: a validation error (wgpu's default handler would
//! panic natively) and a lost device (`gpu_lost`), after which a new device loads the model
//! again. On lavapipe in CI; the browser side is in tests/browser/run.mjs (`gpu-lost`).

mod common;

use common::*;
use hearth::backend::LogitsFor;
use hearth::gpu::harness::{run_kernel, Binding};
use hearth::gpu::Kernel;
use hearth::Error;

fn tiny() -> std::path::PathBuf {
    golden_model_dir().join("synthetic/tiny32_q4_1.gguf")
}

#[test]
fn a_validation_error_is_an_error() {
    let Some(ctx) = gpu_context() else { return };
    // RmsNorm takes five bindings; two do not fit its layout.
    let err = run_kernel(&ctx, Kernel::Norm, None, &[Binding::Storage(vec![0; 64]), Binding::Storage(vec![0; 64])], 1).unwrap_err();
    assert!(matches!(err, Error::Gpu(_)), "{err:?}");
    eprintln!("{err}");
    // The device is still usable afterwards.
    let (model, mut session) = load_gpu(ctx, &tiny());
    assert_eq!(session.append(&[1, 2, 3], LogitsFor::Last).unwrap().len(), model.config().n_vocab);
}

#[test]
fn a_lost_device_ends_the_engine_with_gpu_lost_and_a_new_device_loads_again() {
    let Some(ctx) = gpu_context() else { return };
    let (model, mut session) = load_gpu(ctx.clone(), &tiny());
    let before = session.append(&[1, 2, 3], LogitsFor::Last).unwrap();
    ctx.destroy();
    for _ in 0..2 {
        match session.append(&[4], LogitsFor::Last) {
            Err(e @ Error::GpuLost(_)) => assert!(e.to_string().starts_with("gpu_lost:"), "{e}"),
            other => panic!("expected gpu_lost, got {other:?}"),
        }
    }
    assert!(matches!(session.append_greedy(&[5]), Err(Error::GpuLost(_))));
    // A new device, the same model: the same logits as before the loss.
    let (_, mut again) = load_gpu(gpu_context().unwrap(), &tiny());
    let after = again.append(&[1, 2, 3], LogitsFor::Last).unwrap();
    assert_eq!(after.len(), model.config().n_vocab);
    assert!(before.iter().zip(&after).all(|(a, b)| (a - b).abs() < 1e-4));
}
