//! The GPU backend's buffers and its forward call: write the token ids and the step record,
//! record the lowered plan's dispatches in one compute pass, submit once, read back.

use std::sync::Arc;

use super::context::GpuContext;
use super::lower::{bind_group, lower, uniform, Buffers, Dispatch, Role};
use super::params;
use super::shaders::Pipelines;
use super::top_k::{self, TopK, MAX_TOP_K};
use super::weights::GpuWeights;
use crate::backend::{block_on, Backend, BoxFuture, KernelTime, LogitsFor, Traffic};
use crate::model::{Act, ForwardPlan};
use crate::sampler::DeviceDraw;
use crate::{Error, Result};

/// WebGPU's per-dimension dispatch limit; larger grids fold into 2-D.
const MAX_GROUPS: u32 = 65_535;

/// Decoding steps recorded into one submission ([`Backend::decode_run`]): each step's argmax
/// or device draw is copied to where the next step's embedding reads its token, so the host
/// waits once per run instead of once per token. A reply that stops mid-run discards the rest
/// (at most 7 wasted steps, against 7 saved round trips per 8 tokens).
pub const DECODE_RUN: usize = 8;

pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    plan: ForwardPlan,
    _weights: Arc<GpuWeights>,
    dispatches: Vec<Dispatch>,
    /// An encoder-decoder's encoder pass, and the parameters of the decoder's cross-attention
    /// dispatches (their key count is the encoded input's length).
    encoder_dispatches: Vec<Dispatch>,
    cross_params: Vec<wgpu::Buffer>,
    /// Positions of the encoded input (0: none yet).
    encoded: usize,
    /// The most tokens an encoder-decoder's encoder reads (in one batch).
    encoder_batch: usize,
    tokens: wgpu::Buffer,
    step: wgpu::Buffer,
    logits: wgpu::Buffer,
    staging: wgpu::Buffer,
    argmax: wgpu::Buffer,
    argmax_staging: wgpu::Buffer,
    /// A decoding run's step records (one per step, copied into `step` before its pass), its
    /// ids, and their readback.
    run_steps: wgpu::Buffer,
    run_ids: wgpu::Buffer,
    run_staging: wgpu::Buffer,
    top_k: TopK,
    k_cache: Vec<wgpu::Buffer>,
    v_cache: Vec<wgpu::Buffer>,
    max_batch: usize,
    max_context: usize,
    len: usize,
    /// How the plan's fusions applied (for profiles).
    fusion: Vec<String>,
    traffic: Traffic,
}

pub(super) fn storage(ctx: &GpuContext, label: &str, bytes: u64) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

impl GpuBackend {
    /// Builds every buffer, bind group and pipeline the plan needs, for batches of up to
    /// `max_batch` tokens and a cache of `max_context` positions.
    pub fn new(plan: ForwardPlan, weights: Arc<GpuWeights>, max_batch: usize, max_context: usize) -> Result<Self> {
        let ctx = weights.ctx.clone();
        let c = plan.config.clone();
        // Tokens of the widest activation (the MLP's) that fit one binding.
        let widest = Act::ALL.iter().map(|&a| plan.width(a)).max().unwrap_or(1) as u64;
        let act_rows = (ctx.max_binding() / (widest * 4)) as usize;
        // A learned position table ends the context; so does an encoder's one batch.
        let max_context = max_context.min(plan.max_positions());
        let max_context = if c.encoder { max_context.min(act_rows) } else { max_context };
        // In u64: a context size from JS must not wrap a 32-bit usize (wasm32).
        let kv_bytes = max_context as u64 * c.kv_dim() as u64 * 4;
        if kv_bytes > ctx.max_binding() {
            return Err(Error::InvalidArgument(format!(
                "a context of {max_context} tokens needs {kv_bytes} bytes of KV cache per layer, over this GPU's \
                 binding limit of {}",
                ctx.max_binding()
            )));
        }
        // Batches are capped so that their logits and activations fit one binding (e.g. 220
        // tokens of Qwen2's 151,936 logits under a 128 MiB limit); longer prompts are evaluated
        // in several calls. An encoder reads its whole input at once and gives states, not
        // logits; an encoder-decoder's encoder too, in activations only.
        let (max_batch, out_width) = if c.encoder { (max_context, c.n_embd) } else { (max_batch, c.n_vocab) };
        let max_batch = max_batch.min((ctx.max_binding() / (out_width as u64 * 4)) as usize).min(act_rows);
        if max_batch == 0 {
            return Err(Error::InvalidArgument(format!("{out_width} logits do not fit this GPU's binding limit")));
        }
        let encoder_batch = if c.encoder_decoder { max_context.min(act_rows) } else { 0 };
        let rows = max_batch.max(encoder_batch);
        // (At least one row of logits: the top-k selection binds that much.)
        let logits_bytes = ((max_batch * out_width).max(c.n_vocab) * 4) as u64;
        let acts: Vec<(Act, wgpu::Buffer)> = Act::ALL
            .into_iter()
            .map(|a| (a, storage(&ctx, &format!("{a:?}"), (rows * plan.width(a) * 4) as u64)))
            .collect();
        let tokens = storage(&ctx, "tokens", (rows * 4) as u64);
        let step = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("step"),
            size: std::mem::size_of::<params::Step>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let logits = storage(&ctx, "logits", logits_bytes);
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("logits readback"),
            size: logits_bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        // The argmax or drawn id, then (after a draw) its Philox words.
        let argmax = storage(&ctx, "argmax", 20);
        let run_steps = storage(&ctx, "decode run steps", (DECODE_RUN * std::mem::size_of::<params::Step>()) as u64);
        let run_ids = storage(&ctx, "decode run ids", (DECODE_RUN * 4) as u64);
        let run_staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("decode run readback"),
            size: (DECODE_RUN * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let argmax_staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("argmax readback"),
            size: 4,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let rope_tables = c
            .ropes()
            .iter()
            .map(|r| {
                let table = r.cos_sin(0, max_context);
                let buf = storage(&ctx, "rope table", std::mem::size_of_val(table.as_slice()) as u64);
                ctx.queue.write_buffer(&buf, 0, bytemuck::cast_slice(&table));
                buf
            })
            .collect();
        let slots = plan.cache_slots();
        let k_cache: Vec<wgpu::Buffer> = (0..slots).map(|l| storage(&ctx, &format!("k cache {l}"), kv_bytes)).collect();
        let v_cache: Vec<wgpu::Buffer> = (0..slots).map(|l| storage(&ctx, &format!("v cache {l}"), kv_bytes)).collect();
        let cross = if c.encoder_decoder { c.n_layer } else { 0 };
        let cross_k = (0..cross).map(|l| storage(&ctx, &format!("cross keys {l}"), kv_bytes)).collect();
        let cross_v = (0..cross).map(|l| storage(&ctx, &format!("cross values {l}"), kv_bytes)).collect();

        let buffers = Buffers { acts, tokens, step, logits, argmax, rope_tables, k_cache, v_cache, cross_k, cross_v, context: max_context };
        let lowered = lower(&ctx, &plan, &weights, &buffers);
        // The encoder's ops lowered as a plan of their own (the same weights and buffers).
        let encoder_dispatches = if plan.encoder_ops.is_empty() {
            Vec::new()
        } else {
            let encoder_plan = ForwardPlan { ops: plan.encoder_ops.clone(), encoder_ops: Vec::new(), ..plan.clone() };
            lower(&ctx, &encoder_plan, &weights, &buffers).dispatches
        };
        let fusion = super::lower::fusion_notes(&plan, &weights);
        let Buffers { tokens, step, logits, argmax, k_cache, v_cache, .. } = buffers;
        let top_k = TopK::new(&ctx, &mut Pipelines::default(), &logits, c.n_vocab, &argmax, &step);
        // Out of memory while building the buffers, or a pipeline the device refused.
        ctx.check()?;
        Ok(Self {
            ctx,
            plan,
            _weights: weights,
            dispatches: lowered.dispatches,
            encoder_dispatches,
            cross_params: lowered.cross_params,
            encoded: 0,
            encoder_batch,
            tokens,
            step,
            logits,
            staging,
            argmax,
            argmax_staging,
            run_steps,
            run_ids,
            run_staging,
            top_k,
            k_cache,
            v_cache,
            max_batch,
            max_context,
            len: 0,
            fusion,
            traffic: Traffic::default(),
        })
    }

    /// Number of compute dispatches one greedy decoding step records.
    pub fn dispatches_per_token(&self) -> usize {
        self.dispatches.iter().filter(|d| !matches!(d.role, Role::LogitsAll | Role::Hidden) && d.for_tokens(1).is_some()).count()
    }

    /// The per-forward inputs: token ids and the step record.
    fn write_inputs(&self, tokens: &[u32], start: usize) {
        let q = &self.ctx.queue;
        q.write_buffer(&self.tokens, 0, bytemuck::cast_slice(tokens));
        q.write_buffer(&self.step, 0, bytemuck::bytes_of(&step_record(tokens.len(), start, 0)));
    }

    /// The checks before a forward call that returns `which` (`Last` for the argmax and
    /// top-k forms).
    fn check(&self, tokens: &[u32], start: usize, which: LogitsFor) -> Result<()> {
        self.ctx.check()?;
        crate::backend::check_batch(tokens, start, self.len, self.max_context, self.max_batch, self.plan.config.n_vocab)?;
        crate::backend::check_encoder(&self.plan.config, start, which)?;
        if self.plan.config.encoder_decoder && self.encoded == 0 {
            return Err(crate::backend::not_encoded(&self.plan.config));
        }
        Ok(())
    }

    /// [`Backend::encode`]: the encoder's pass over `tokens` (one submission, nothing read
    /// back), then the key count of every cross-attention dispatch.
    fn encode_impl(&mut self, tokens: &[u32]) -> Result<()> {
        self.ctx.check()?;
        crate::backend::check_encode(&self.plan.config, tokens, self.max_context)?;
        if tokens.len() > self.encoder_batch {
            return Err(Error::InvalidArgument(format!(
                "an encoder input of {} tokens: this GPU's binding limit holds {} in the one batch the encoder reads",
                tokens.len(),
                self.encoder_batch
            )));
        }
        self.encoded = 0;
        let t0 = web_time::Instant::now();
        let n = tokens.len() as u32;
        self.write_inputs(tokens, 0);
        let mut encoder = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("encode") });
        let mut dispatched = 0;
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("encode"), timestamp_writes: None });
            for d in self.encoder_dispatches.iter().filter(|d| d.role == Role::Always).filter_map(|d| d.for_tokens(n)) {
                record(&mut pass, &d.pipeline, &d.bind_group, d.grid.groups(n));
                dispatched += 1;
            }
        }
        for p in &self.cross_params {
            self.ctx.queue.write_buffer(p, std::mem::offset_of!(params::Attention, keys) as u64, bytemuck::bytes_of(&n));
        }
        // The decoder starts over on the new input.
        self.submitted(encoder, dispatched, t0, 0);
        self.encoded = tokens.len();
        self.ctx.check()
    }

    /// Records one compute pass over the dispatches `wanted` selects (then, with `top_k`, the
    /// selection of that many candidates), plus `copies`, and submits it: the whole forward
    /// pass is one submission.
    fn submit(
        &mut self,
        tokens: &[u32],
        start: usize,
        wanted: impl Fn(Role) -> bool,
        top_k: Option<usize>,
        copies: &[(&wgpu::Buffer, &wgpu::Buffer, u64)],
    ) {
        let t0 = web_time::Instant::now();
        let n = tokens.len() as u32;
        let q = &self.ctx.queue;
        self.write_inputs(tokens, start);
        let mut dispatched = 0;
        let mut encoder = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("forward") });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("forward"), timestamp_writes: None });
            dispatched += self.record_forward(&mut pass, n, &wanted);
            if let Some(k) = top_k {
                dispatched += self.top_k.record(q, &mut pass, k);
            }
        }
        for &(src, dst, bytes) in copies {
            encoder.copy_buffer_to_buffer(src, 0, dst, 0, bytes);
        }
        self.submitted(encoder, dispatched, t0, start + tokens.len());
    }

    /// Submits a recorded forward pass (or run) that leaves `len` positions cached, and counts
    /// its dispatches, the submission and the host time since `t0`.
    fn submitted(&mut self, encoder: wgpu::CommandEncoder, dispatched: usize, t0: web_time::Instant, len: usize) {
        self.ctx.queue.submit([encoder.finish()]);
        self.len = len;
        self.traffic.dispatches += dispatched as f64;
        self.traffic.submits += 1.0;
        self.traffic.encode_us += t0.elapsed().as_secs_f64() * 1e6;
    }

    /// Records the dispatches `wanted` selects for a batch of `n` tokens; returns how many.
    fn record_forward(&self, pass: &mut wgpu::ComputePass, n: u32, wanted: &impl Fn(Role) -> bool) -> usize {
        let mut dispatched = 0;
        for d in self.dispatches.iter().filter(|d| wanted(d.role)).filter_map(|d| d.for_tokens(n)) {
            record(pass, &d.pipeline, &d.bind_group, d.grid.groups(n));
            dispatched += 1;
        }
        dispatched
    }

    /// [`Backend::decode_run`]: `steps` forward passes in one submission, each ending in the
    /// argmax (greedy) or the top-k selection and the draw (`draw`). Between two passes the
    /// encoder copies the id into the token buffer and the next step record (with the draw's
    /// counter) into the step uniform (copies, not dispatches: the plan stays as it is); each
    /// id is also copied into `run_ids`, which is read back once at the end.
    async fn decode_run_impl(&mut self, token: u32, start: usize, steps: usize, draw: Option<DeviceDraw>) -> Result<Vec<u32>> {
        self.check(&[token], start, LogitsFor::Last)?;
        if !(1..=DECODE_RUN).contains(&steps) {
            return Err(Error::InvalidArgument(format!("a decoding run has 1 to {DECODE_RUN} steps, not {steps}")));
        }
        if start + steps > self.max_context {
            return Err(Error::ContextLengthExceeded { needed: start + steps, limit: self.max_context });
        }
        if let Some(d) = &draw {
            if !(1..=MAX_TOP_K).contains(&d.top_k) || !(d.temperature > 0.0) {
                return Err(Error::InvalidArgument(format!("the GPU draws from 1 to {MAX_TOP_K} candidates at a positive temperature, not {d:?}")));
            }
        }
        let t0 = web_time::Instant::now();
        let q = &self.ctx.queue;
        let counter = |i: usize| draw.map_or(0, |d| d.counter + i as u64);
        let records: Vec<params::Step> = (0..steps).map(|i| step_record(1, start + i, counter(i))).collect();
        q.write_buffer(&self.tokens, 0, bytemuck::bytes_of(&token));
        q.write_buffer(&self.run_steps, 0, bytemuck::cast_slice(&records));
        if let Some(d) = &draw {
            self.top_k.set_k(q, d.top_k);
            self.top_k.set_draw(q, d);
        }
        let record_bytes = std::mem::size_of::<params::Step>() as u64;
        let wanted = |r: Role| matches!(r, Role::Always | Role::LogitsLast) || (r == Role::Argmax && draw.is_none());
        let mut dispatched = 0;
        let mut encoder = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("decode run") });
        for i in 0..steps as u64 {
            encoder.copy_buffer_to_buffer(&self.run_steps, i * record_bytes, &self.step, 0, record_bytes);
            if i > 0 {
                encoder.copy_buffer_to_buffer(&self.argmax, 0, &self.tokens, 0, 4);
            }
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("decode step"), timestamp_writes: None });
                dispatched += self.record_forward(&mut pass, 1, &wanted);
                if let Some(d) = &draw {
                    dispatched += self.top_k.record_levels(&mut pass, d.top_k);
                    self.top_k.record_draw(&mut pass, d);
                    dispatched += 1;
                }
            }
            encoder.copy_buffer_to_buffer(&self.argmax, 0, &self.run_ids, i * 4, 4);
        }
        encoder.copy_buffer_to_buffer(&self.run_ids, 0, &self.run_staging, 0, steps as u64 * 4);
        self.submitted(encoder, dispatched, t0, start + steps);
        self.count_readback(steps * 4);
        let bytes = read_back_async(&self.ctx, &self.run_staging, steps * 4).await?;
        Ok(bytemuck::pod_collect_to_vec::<u8, u32>(&bytes))
    }

    fn count_readback(&mut self, bytes: usize) {
        self.traffic.readbacks += 1.0;
        self.traffic.readback_bytes += bytes as f64;
    }

    async fn forward_impl(&mut self, tokens: &[u32], start: usize, which: LogitsFor) -> Result<Vec<f32>> {
        self.check(tokens, start, which)?;
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let c = &self.plan.config;
        let floats = match which {
            LogitsFor::None => 0,
            LogitsFor::Last => c.n_vocab,
            LogitsFor::All => tokens.len() * c.n_vocab,
            LogitsFor::Hidden => tokens.len() * c.n_embd,
        };
        if which == LogitsFor::Hidden && !self.dispatches.iter().any(|d| d.role == Role::Hidden) {
            return Err(Error::Unsupported("embeddings on the GPU: this model's final norm does not feed only the output projection".into()));
        }
        let wanted = |r: Role| match r {
            Role::Always => true,
            Role::LogitsLast => which == LogitsFor::Last,
            Role::LogitsAll => which == LogitsFor::All,
            Role::Hidden => which == LogitsFor::Hidden,
            Role::Argmax => false,
        };
        let (logits, staging) = (self.logits.clone(), self.staging.clone());
        let copies: &[_] = if floats > 0 { &[(&logits, &staging, (floats * 4) as u64)] } else { &[] };
        self.submit(tokens, start, wanted, None, copies);
        if floats == 0 {
            return Ok(Vec::new());
        }
        self.count_readback(floats * 4);
        let bytes = read_back_async(&self.ctx, &self.staging, floats * 4).await?;
        Ok(bytemuck::pod_collect_to_vec::<u8, f32>(&bytes))
    }

    async fn forward_argmax_impl(&mut self, tokens: &[u32], start: usize) -> Result<u32> {
        self.check(tokens, start, LogitsFor::Last)?;
        if tokens.is_empty() {
            return Err(Error::InvalidArgument("no tokens to evaluate".into()));
        }
        let wanted = |r: Role| matches!(r, Role::Always | Role::LogitsLast | Role::Argmax);
        let (argmax, staging) = (self.argmax.clone(), self.argmax_staging.clone());
        self.submit(tokens, start, wanted, None, &[(&argmax, &staging, 4)]);
        self.count_readback(4);
        let bytes = read_back_async(&self.ctx, &self.argmax_staging, 4).await?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    async fn forward_top_k_impl(&mut self, tokens: &[u32], start: usize, k: usize) -> Result<Vec<(u32, f32)>> {
        self.check(tokens, start, LogitsFor::Last)?;
        if tokens.is_empty() {
            return Err(Error::InvalidArgument("no tokens to evaluate".into()));
        }
        if !(1..=MAX_TOP_K).contains(&k) {
            return Err(Error::InvalidArgument(format!("the GPU selects from 1 to {MAX_TOP_K} candidates, not {k}")));
        }
        let wanted = |r: Role| matches!(r, Role::Always | Role::LogitsLast);
        let (result, staging) = (self.top_k.result(k).clone(), self.top_k.staging.clone());
        self.submit(tokens, start, wanted, Some(k), &[(&result, &staging, (k * 8) as u64)]);
        self.count_readback(k * 8);
        let bytes = read_back_async(&self.ctx, &staging, k * 8).await?;
        Ok(top_k::decode(&bytes, self.plan.config.n_vocab))
    }
}

fn step_record(n_tokens: usize, start: usize, draw: u64) -> params::Step {
    params::Step { n_tokens: n_tokens as u32, start_pos: start as u32, draw: [draw as u32, (draw >> 32) as u32] }
}

/// Maps the first `len` bytes of a MAP_READ buffer once the queued work is done and copies
/// them out. Natively this polls the device; in the browser the mapping resolves on the
/// event loop.
pub(super) async fn read_back_async(ctx: &GpuContext, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<u8>> {
    // A fault in the work just recorded (a validation error, a lost device) makes its results
    // meaningless: report it rather than read them.
    ctx.check()?;
    let slice = buffer.slice(..len as u64);
    let (tx, rx) = futures_channel::oneshot::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    #[cfg(not(target_arch = "wasm32"))]
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| ctx.fault_or(Error::Gpu(format!("poll failed: {e}"))))?;
    rx.await
        .map_err(|_| ctx.fault_or(Error::Gpu("readback was dropped".into())))?
        .map_err(|e| ctx.fault_or(e.into()))?;
    let out = slice.get_mapped_range().map_err(|e| ctx.fault_or(Error::Gpu(format!("readback failed: {e}"))))?.to_vec();
    buffer.unmap();
    ctx.check()?;
    Ok(out)
}

/// [`read_back_async`], blocking (native only; an error in the browser).
pub(super) fn read_back(ctx: &GpuContext, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<u8>> {
    block_on(read_back_async(ctx, buffer, len))
}

/// Records one dispatch of `groups` workgroups (folded into 2-D past the per-dimension limit).
pub(super) fn record(pass: &mut wgpu::ComputePass, pipeline: &wgpu::ComputePipeline, bind_group: &wgpu::BindGroup, groups: u32) {
    let (x, y) = fold(groups);
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, bind_group, &[]);
    pass.dispatch_workgroups(x, y, 1);
}

pub(super) fn fold(groups: u32) -> (u32, u32) {
    if groups <= MAX_GROUPS {
        (groups, 1)
    } else {
        (MAX_GROUPS, groups.div_ceil(MAX_GROUPS))
    }
}

impl Backend for GpuBackend {
    fn config(&self) -> &crate::model::ModelConfig {
        &self.plan.config
    }

    fn describe(&self) -> String {
        format!("{}, {} dispatches per token", self.ctx.describe(), self.dispatches_per_token())
    }

    fn traffic(&self) -> Option<Traffic> {
        Some(self.traffic)
    }

    fn max_context(&self) -> usize {
        self.max_context
    }

    fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    fn encode(&mut self, tokens: &[u32]) -> Result<()> {
        self.encode_impl(tokens)
    }


    /// Per layer: copy the moved keys and values out to scratch buffers (a buffer cannot be
    /// copied onto itself), rotate the keys back by `drop` positions with the RoPE kernel, and
    /// copy both back `drop` positions lower. Rare, so its few GPU objects are made per call.
    fn shift(&mut self, keep: usize, drop: usize) -> Result<()> {
        crate::backend::check_shift(keep, drop, self.len)?;
        crate::backend::check_shift_positions(&self.plan.config)?;
        let c = &self.plan.config;
        let moved = self.len - keep - drop;
        if moved > 0 {
            let row = (c.kv_dim() * 4) as u64;
            let bytes = moved as u64 * row;
            let device = &self.ctx.device;
            let (scratch_k, scratch_v) = (storage(&self.ctx, "shift keys", bytes), storage(&self.ctx, "shift values", bytes));
            let step_buf = uniform(&self.ctx, &params::Step { n_tokens: moved as u32, start_pos: 0, draw: [0; 2] });
            let pipeline = super::shaders::Pipelines::default().get(device, super::shaders::Kernel::Rope, None).clone();
            // One rotation per RoPE variant (gemma3's local and global layers differ).
            let rotations: Vec<(wgpu::BindGroup, u32)> = c
                .ropes()
                .iter()
                .map(|r| {
                    let table = r.unshift_rows(drop, moved);
                    let table_buf = storage(&self.ctx, "shift rope table", std::mem::size_of_val(table.as_slice()) as u64);
                    self.ctx.queue.write_buffer(&table_buf, 0, bytemuck::cast_slice(&table));
                    let neox = (r.style == crate::model::RopeStyle::Neox) as u32;
                    let rope = params::Rope { n_heads: c.n_head_kv as u32, head_dim: c.head_dim as u32, half: r.half() as u32, neox };
                    let params_buf = uniform(&self.ctx, &rope);
                    let groups = (moved * c.n_head_kv * r.half()).div_ceil(64) as u32;
                    (bind_group(&self.ctx, &pipeline, &[&scratch_k, &table_buf, &params_buf, &step_buf]), groups)
                })
                .collect();
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("shift") });
            let (from, to) = ((keep + drop) as u64 * row, keep as u64 * row);
            for (l, (k, v)) in self.k_cache.iter().zip(&self.v_cache).enumerate() {
                let (bind_group, groups) = &rotations[c.layer_rope_index(l)];
                encoder.copy_buffer_to_buffer(k, from, &scratch_k, 0, bytes);
                encoder.copy_buffer_to_buffer(v, from, &scratch_v, 0, bytes);
                {
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("shift"), timestamp_writes: None });
                    record(&mut pass, &pipeline, bind_group, *groups);
                }
                encoder.copy_buffer_to_buffer(&scratch_k, 0, k, to, bytes);
                encoder.copy_buffer_to_buffer(&scratch_v, 0, v, to, bytes);
            }
            self.ctx.queue.submit([encoder.finish()]);
            self.traffic.submits += 1.0;
            self.traffic.dispatches += self.k_cache.len() as f64;
        }
        self.len -= drop;
        Ok(())
    }

    fn forward(&mut self, tokens: &[u32], start: usize, which: LogitsFor) -> Result<Vec<f32>> {
        block_on(self.forward_impl(tokens, start, which))
    }

    fn forward_async<'a>(&'a mut self, tokens: &'a [u32], start: usize, which: LogitsFor) -> BoxFuture<'a, Result<Vec<f32>>> {
        Box::pin(self.forward_impl(tokens, start, which))
    }

    fn forward_argmax(&mut self, tokens: &[u32], start: usize) -> Result<u32> {
        block_on(self.forward_argmax_impl(tokens, start))
    }

    fn forward_argmax_async<'a>(&'a mut self, tokens: &'a [u32], start: usize) -> BoxFuture<'a, Result<u32>> {
        Box::pin(self.forward_argmax_impl(tokens, start))
    }

    fn decode_run_len(&self) -> usize {
        DECODE_RUN
    }

    fn decode_run(&mut self, token: u32, start: usize, steps: usize, draw: Option<DeviceDraw>) -> Result<Vec<u32>> {
        block_on(self.decode_run_impl(token, start, steps, draw))
    }

    fn decode_run_async<'a>(&'a mut self, token: u32, start: usize, steps: usize, draw: Option<DeviceDraw>) -> BoxFuture<'a, Result<Vec<u32>>> {
        Box::pin(self.decode_run_impl(token, start, steps, draw))
    }

    fn device_top_k(&self) -> usize {
        MAX_TOP_K
    }

    fn forward_top_k(&mut self, tokens: &[u32], start: usize, k: usize) -> Result<Vec<(u32, f32)>> {
        block_on(self.forward_top_k_impl(tokens, start, k))
    }

    fn forward_top_k_async<'a>(&'a mut self, tokens: &'a [u32], start: usize, k: usize) -> BoxFuture<'a, Result<Vec<(u32, f32)>>> {
        Box::pin(self.forward_top_k_impl(tokens, start, k))
    }

    fn fusion_notes(&self) -> Vec<String> {
        self.fusion.clone()
    }

    fn profile(&mut self, tokens: &[u32], start: usize) -> Result<Vec<KernelTime>> {
        if !self.ctx.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(Error::Gpu(format!("{} has no timestamp queries", self.ctx.describe())));
        }
        self.len = self.len.min(start);
        self.check(tokens, start, LogitsFor::None)?;
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let n = tokens.len() as u32;
        let greedy = n == 1;
        let wanted = |r: Role| r == Role::Always || (greedy && matches!(r, Role::LogitsLast | Role::Argmax));
        let ds: Vec<&Dispatch> = self.dispatches.iter().filter(|d| wanted(d.role)).filter_map(|d| d.for_tokens(n)).collect();
        let queries = 2 * ds.len() as u32;
        if queries > wgpu::QUERY_SET_MAX_QUERIES {
            return Err(Error::Gpu(format!("{} dispatches are too many to time in one query set", ds.len())));
        }
        let device = &self.ctx.device;
        let set = device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("profile"), ty: wgpu::QueryType::Timestamp, count: queries });
        let bytes = queries as u64 * 8;
        let resolved = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profile"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profile readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let q = &self.ctx.queue;
        self.write_inputs(tokens, start);
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("profile") });
        // One pass per dispatch, so each gets its own begin and end timestamps.
        for (i, d) in ds.iter().enumerate() {
            let timestamps = wgpu::ComputePassTimestampWrites {
                query_set: &set,
                beginning_of_pass_write_index: Some(2 * i as u32),
                end_of_pass_write_index: Some(2 * i as u32 + 1),
            };
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: Some(timestamps) });
            record(&mut pass, &d.pipeline, &d.bind_group, d.grid.groups(n));
        }
        encoder.resolve_query_set(&set, 0..queries, &resolved, 0);
        encoder.copy_buffer_to_buffer(&resolved, 0, &readback, 0, bytes);
        q.submit([encoder.finish()]);
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&read_back(&self.ctx, &readback, bytes as usize)?);
        let period_s = q.get_timestamp_period() as f64 * 1e-9;
        let mut out: Vec<KernelTime> = Vec::new();
        for (d, t) in ds.iter().zip(ticks.chunks(2)) {
            let name = format!("{:?}", d.kernel);
            let seconds = t[1].saturating_sub(t[0]) as f64 * period_s;
            match out.iter_mut().find(|k| k.kernel == name) {
                Some(k) => {
                    k.dispatches += 1;
                    k.seconds += seconds;
                }
                None => out.push(KernelTime { kernel: name, dispatches: 1, seconds }),
            }
        }
        out.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        self.len = start;
        Ok(out)
    }
}
