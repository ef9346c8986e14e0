// Per-forward values shared by every kernel, written once before the pass.
struct Step {
    n_tokens: u32,
    start_pos: u32,
    // The Philox counter of a draw after this step (shaders/draw.wgsl), low word first.
    draw_lo: u32,
    draw_hi: u32,
}

// Dispatches above 65,535 workgroups are folded into 2-D; this recovers the linear index.
fn linear_group(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

fn linear_thread(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 64u;
}

// The FFN activations: 0 SiLU, 1 GELU (tanh approximation), 2 ReLU. tanh's argument is clamped
// where tanh is ±1 in f32 anyway, so no backend's tanh overflows to NaN there.
fn activate(x: f32, act: u32) -> f32 {
    if (act == 1u) {
        let u = clamp(0.7978846 * (x + 0.044715 * x * x * x), -10.0, 10.0);
        return 0.5 * x * (1.0 + tanh(u));
    }
    if (act == 2u) {
        return max(x, 0.0);
    }
    return x / (1.0 + exp(-x));
}
