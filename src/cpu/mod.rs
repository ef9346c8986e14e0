//! The CPU backend: executes the forward plan op by op with f32 activations and f32
//! accumulation, reading the quantized weights directly (they are never expanded to f32 whole).

mod attention;
mod kernels;
mod matmul;
mod par;
mod pool;

pub use par::threads;
pub use pool::{serve_as_wasm_worker, set_wasm_threads};

use std::sync::Arc;

use crate::backend::{Backend, LogitsFor};
use crate::model::{relative, Act, ForwardPlan, Model, Op, QTensor, WeightId};
use crate::{Error, Result};

/// A model's weights in host memory, indexed by [`WeightId`].
pub struct CpuWeights {
    tensors: Vec<Option<QTensor>>,
}

impl CpuWeights {
    pub fn new(plan: &ForwardPlan) -> Self {
        Self { tensors: (0..plan.weights.len()).map(|_| None).collect() }
    }

    /// Stores a tensor's bytes as they come from the GGUF stream: the whole tensor, or rows
    /// from byte `offset` on, appended to the rows before them.
    pub fn put(&mut self, plan: &ForwardPlan, id: WeightId, offset: usize, data: Vec<u8>) -> Result<()> {
        let spec = &plan.weights[id.0];
        let expected = spec.rows * (spec.cols / spec.ty.block_len() * spec.ty.block_bytes());
        let slot = &mut self.tensors[id.0];
        let have = slot.as_ref().map_or(0, |t| t.data.len());
        if offset != have || offset + data.len() > expected {
            return Err(Error::Model(format!("tensor {:?}: bytes {offset}..{} do not continue the {have} stored", spec.name, offset + data.len())));
        }
        match slot {
            Some(t) if offset > 0 => t.data.extend_from_slice(&data),
            _ => *slot = Some(QTensor { ty: spec.ty, rows: spec.rows, cols: spec.cols, data }),
        }
        Ok(())
    }

    fn get(&self, id: WeightId) -> &QTensor {
        self.tensors[id.0].as_ref().expect("every weight is loaded before the backend runs")
    }

    /// Loads a GGUF file into host memory, reporting progress.
    pub fn load_file(
        path: &std::path::Path,
        progress: impl FnMut(crate::model::LoadProgress),
    ) -> Result<(Model, CpuWeights)> {
        crate::model::load_model_file(path, Box::new(|plan| Ok(CpuWeights::new(plan))), Box::new(CpuWeights::put), None, progress)
    }
}

/// Per-layer key and value vectors for positions `0..len`, `kv_dim` floats each.
struct KvCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
    /// An encoder-decoder's cross-attention keys and values per decoder layer, from the last
    /// encoded input (empty before one).
    cross_k: Vec<Vec<f32>>,
    cross_v: Vec<Vec<f32>>,
}

pub struct CpuBackend {
    plan: Arc<ForwardPlan>,
    weights: Arc<CpuWeights>,
    cache: KvCache,
    max_context: usize,
    /// T5's relative position biases per (weight, bidirectional), expanded over every distance
    /// of the context ([`relative::bias_table`]), as the GPU has them.
    rel_tables: Vec<((WeightId, bool), Vec<f32>)>,
}

impl CpuBackend {
    pub fn new(plan: ForwardPlan, weights: Arc<CpuWeights>, max_context: usize) -> Self {
        let (slots, n_layer) = (plan.cache_slots(), plan.config.n_layer);
        // A learned position table ends the context.
        let max_context = max_context.min(plan.max_positions());
        let cross = if plan.config.encoder_decoder { n_layer } else { 0 };
        let cache = KvCache {
            k: vec![Vec::new(); slots],
            v: vec![Vec::new(); slots],
            len: 0,
            cross_k: vec![Vec::new(); cross],
            cross_v: vec![Vec::new(); cross],
        };
        let c = &plan.config;
        let rel_tables = plan
            .rel_biases()
            .into_iter()
            .map(|(w, bidirectional)| {
                let table = relative::bias_table(&weights.get(w).to_f32(), c.n_head, c.rel_buckets, bidirectional, max_context);
                ((w, bidirectional), table)
            })
            .collect();
        Self { plan: Arc::new(plan), weights, cache, max_context, rel_tables }
    }
}

/// One batch's activation buffers, `n` vectors each, in [`Act::ALL`] order.
struct Acts {
    bufs: Vec<Vec<f32>>,
}

impl Acts {
    fn new(plan: &ForwardPlan, n: usize) -> Self {
        Self { bufs: Act::ALL.iter().map(|&a| vec![0.0f32; n * plan.width(a)]).collect() }
    }

    fn idx(a: Act) -> usize {
        Act::ALL.iter().position(|&x| x == a).expect("every activation is in Act::ALL")
    }

    fn get(&self, a: Act) -> &[f32] {
        &self.bufs[Self::idx(a)]
    }

    fn get_mut(&mut self, a: Act) -> &mut [f32] {
        &mut self.bufs[Self::idx(a)]
    }

    /// An input and a distinct output buffer at once.
    fn pair(&mut self, input: Act, out: Act) -> (&[f32], &mut [f32]) {
        let (i, o) = (Self::idx(input), Self::idx(out));
        assert_ne!(i, o, "an op reads and writes the same buffer");
        if i < o {
            let (a, b) = self.bufs.split_at_mut(o);
            (&a[i], &mut b[0])
        } else {
            let (a, b) = self.bufs.split_at_mut(i);
            (&b[0], &mut a[o])
        }
    }
}

impl Backend for CpuBackend {
    fn config(&self) -> &crate::model::ModelConfig {
        &self.plan.config
    }

    fn describe(&self) -> String {
        format!("cpu ({} threads)", par::threads())
    }

    fn max_context(&self) -> usize {
        self.max_context
    }

    fn shift(&mut self, keep: usize, drop: usize) -> Result<()> {
        crate::backend::check_shift(keep, drop, self.cache.len)?;
        crate::backend::check_shift_positions(&self.plan.config)?;
        let c = &self.plan.config;
        let kv_dim = c.kv_dim();
        let moved = self.cache.len - keep - drop;
        for l in 0..c.n_layer {
            let spec = c.layer_rope(l);
            let table = kernels::RopeTable::from_rows(spec, spec.unshift_rows(drop, moved));
            let (k, v) = (&mut self.cache.k[l], &mut self.cache.v[l]);
            k.drain(keep * kv_dim..(keep + drop) * kv_dim);
            v.drain(keep * kv_dim..(keep + drop) * kv_dim);
            kernels::rope(&mut k[keep * kv_dim..], c.n_head_kv, c.head_dim, &table);
        }
        self.cache.len -= drop;
        Ok(())
    }

    fn truncate(&mut self, len: usize) {
        if len < self.cache.len {
            let kv_dim = self.plan.config.kv_dim();
            for (k, v) in self.cache.k.iter_mut().zip(&mut self.cache.v) {
                k.truncate(len * kv_dim);
                v.truncate(len * kv_dim);
            }
            self.cache.len = len;
        }
    }

    fn forward(&mut self, tokens: &[u32], start: usize, which: LogitsFor) -> Result<Vec<f32>> {
        let c = &self.plan.config;
        crate::backend::check_batch(tokens, start, self.cache.len, self.max_context, usize::MAX, c.n_vocab)?;
        crate::backend::check_encoder(c, start, which)?;
        if c.encoder_decoder && self.cache.cross_k.first().is_none_or(Vec::is_empty) {
            return Err(crate::backend::not_encoded(c));
        }
        let logits = self.run(false, tokens, start, which)?;
        self.cache.len = start + tokens.len();
        Ok(logits)
    }

    fn encode(&mut self, tokens: &[u32]) -> Result<()> {
        let c = &self.plan.config;
        crate::backend::check_encode(c, tokens, self.max_context)?;
        // The decoder starts over on the new input.
        self.truncate(0);
        self.cache.cross_k.iter_mut().chain(&mut self.cache.cross_v).for_each(Vec::clear);
        let result = self.run(true, tokens, 0, LogitsFor::None);
        // The encoder's own keys and values were only for this pass.
        self.truncate(0);
        self.cache.k.iter_mut().chain(&mut self.cache.v).for_each(Vec::clear);
        if result.is_err() {
            self.cache.cross_k.iter_mut().chain(&mut self.cache.cross_v).for_each(Vec::clear);
        }
        result.map(|_| ())
    }
}

impl CpuBackend {
    /// Runs the plan's ops (the encoder's with `encoder`) on `tokens` at positions from `start`.
    fn run(&mut self, encoder: bool, tokens: &[u32], start: usize, which: LogitsFor) -> Result<Vec<f32>> {
        let plan = self.plan.clone();
        let c = &plan.config;
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let n = tokens.len();
        let mut acts = Acts::new(&plan, n);
        let ropes: Vec<kernels::RopeTable> = c.ropes().iter().map(|r| kernels::RopeTable::new(r, start, n)).collect();
        let mut logits = Vec::new();
        for op in if encoder { &plan.encoder_ops } else { &plan.ops } {
            match *op {
                Op::Embed { table, out, scale } => {
                    let table = self.weights.get(table);
                    for (t, dst) in acts.get_mut(out).chunks_mut(table.cols).enumerate() {
                        crate::quant::dequantize_row(table.ty, table.row(tokens[t] as usize), dst);
                        if scale != 1.0 {
                            dst.iter_mut().for_each(|x| *x *= scale);
                        }
                    }
                }
                Op::PosEmbed { table, out } => {
                    let table = self.weights.get(table);
                    let mut row = vec![0.0f32; table.cols];
                    for (t, dst) in acts.get_mut(out).chunks_mut(table.cols).enumerate() {
                        crate::quant::dequantize_row(table.ty, table.row(start + t), &mut row);
                        dst.iter_mut().zip(&row).for_each(|(d, r)| *d += r);
                    }
                }
                Op::LayerNorm { input, weight, bias, out } => {
                    let (w, b) = (self.weights.get(weight), bias.map(|b| self.weights.get(b)));
                    let (x, y) = acts.pair(input, out);
                    kernels::layer_norm(x, w, b, c.rms_eps, y);
                }
                Op::Activate { target, act } => kernels::activate(acts.get_mut(target), act),
                Op::HeadNorm { target, weight, .. } => {
                    kernels::head_norm(acts.get_mut(target), self.weights.get(weight), c.rms_eps);
                }
                Op::AddBias { target, bias } => kernels::add_bias(acts.get_mut(target), self.weights.get(bias)),
                Op::Add { input, out } => {
                    let (x, y) = acts.pair(input, out);
                    kernels::add(x, y);
                }
                Op::RmsNorm { input, weight, out } => {
                    let w = self.weights.get(weight);
                    let (x, y) = acts.pair(input, out);
                    kernels::rms_norm(x, w, c.rms_eps, y);
                }
                Op::MatMul { weight, input, out, accumulate } => {
                    let (x, y) = acts.pair(input, out);
                    matmul::matmul(self.weights.get(weight), x, n, y, accumulate);
                }
                Op::Rope { target, n_heads, rope } => {
                    kernels::rope(acts.get_mut(target), n_heads, c.head_dim, &ropes[rope]);
                }
                Op::Attention { layer, q, k, v, out, window, bidirectional, rel_bias } => {
                    let kv_dim = c.kv_dim();
                    self.cache.k[layer].extend_from_slice(&acts.get(k)[..n * kv_dim]);
                    self.cache.v[layer].extend_from_slice(&acts.get(v)[..n * kv_dim]);
                    let rel = rel_bias.and_then(|w| self.rel_tables.iter().find(|(key, _)| *key == (w, bidirectional)));
                    let rel = rel.map(|(_, table)| (table.as_slice(), self.max_context));
                    let (qs, o) = acts.pair(q, out);
                    let (kc, vc) = (&self.cache.k[layer], &self.cache.v[layer]);
                    attention::attend(c, qs, kc, vc, start, window, bidirectional, rel, o);
                }
                Op::StoreCross { layer, k, v } => {
                    let kv_dim = c.kv_dim();
                    self.cache.cross_k[layer] = acts.get(k)[..n * kv_dim].to_vec();
                    self.cache.cross_v[layer] = acts.get(v)[..n * kv_dim].to_vec();
                }
                Op::CrossAttention { layer, q, out } => {
                    let (qs, o) = acts.pair(q, out);
                    let (kc, vc) = (&self.cache.cross_k[layer], &self.cache.cross_v[layer]);
                    attention::attend(c, qs, kc, vc, start, 0, true, None, o);
                }
                Op::Glu { gate, up, act } => {
                    let (u, g) = acts.pair(up, gate);
                    kernels::glu(g, u, act);
                }
                Op::States { input } => logits = acts.get(input)[..n * c.n_embd].to_vec(),
                Op::Logits { weight, input, bias } => {
                    let w = self.weights.get(weight);
                    let x = acts.get(input);
                    let d = c.n_embd;
                    let (rows, xs) = match which {
                        LogitsFor::None => (0, &x[..0]),
                        LogitsFor::Last => (1, &x[(n - 1) * d..n * d]),
                        LogitsFor::All => (n, x),
                        LogitsFor::Hidden => {
                            logits = x[..n * d].to_vec();
                            continue;
                        }
                    };
                    logits = vec![0.0f32; rows * c.n_vocab];
                    matmul::matmul(w, xs, rows, &mut logits, false);
                    if let Some(b) = bias {
                        kernels::add_bias(&mut logits, self.weights.get(b));
                    }
                }
            }
        }
        Ok(logits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Layer-0 keys and values depend on their own token only, so after a shift the moved
    /// positions' layer-0 cache must equal a fresh evaluation of the kept tokens: an exact
    /// check of the move and of the RoPE re-rotation. (Deeper layers saw the dropped tokens,
    /// which is the approximation every context shift makes.)
    #[test]
    fn shift_moves_and_rerotates_the_cache() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
        let (model, weights) = CpuWeights::load_file(&path, |_| {}).expect("the default model (./build.sh model)");
        let weights = Arc::new(weights);
        let tokens: Vec<u32> = (0..20u32).map(|i| 300 + i * 37).collect();
        let mut shifted = CpuBackend::new(model.plan.clone(), weights.clone(), 32);
        shifted.forward(&tokens, 0, LogitsFor::None).unwrap();
        shifted.shift(4, 6).unwrap();
        let kept: Vec<u32> = tokens[..4].iter().chain(&tokens[10..]).copied().collect();
        let mut fresh = CpuBackend::new(model.plan.clone(), weights, 32);
        fresh.forward(&kept, 0, LogitsFor::None).unwrap();
        assert_eq!(shifted.cache.len, fresh.cache.len);
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-4 * (1.0 + y.abs()));
        assert!(close(&shifted.cache.k[0], &fresh.cache.k[0]), "layer-0 keys");
        assert_eq!(shifted.cache.v[0], fresh.cache.v[0], "layer-0 values move unchanged");
        assert!(!close(&shifted.cache.k[1], &fresh.cache.k[1]), "deeper layers remember the dropped tokens");
    }
}
