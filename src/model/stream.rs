//! A model built from GGUF bytes pushed in order, as they arrive from a file or a network
//! stream. Each weight goes to its destination (host memory, GPU buffers) as soon as its last
//! byte arrives, so only the tensor in flight is ever buffered.

use sha2::{Digest, Sha256};

use super::arch::names::ROPE_FREQS;
use super::load::Model;
use super::plan::{ForwardPlan, WeightId};
use crate::gguf::split::{self, SplitInfo};
use crate::gguf::{GgufEvent, GgufHeader, GgufReader};
use crate::{Error, Result};

/// Creates the weight store once the header has told how many weights there are.
pub type NewWeights<W> = Box<dyn FnMut(&ForwardPlan) -> Result<W>>;
/// Stores whole rows of one weight, in file layout, starting at a byte offset into it (0 and
/// the whole tensor unless the stream was made with a piece size).
pub type PutWeight<W> = Box<dyn FnMut(&mut W, &ForwardPlan, WeightId, usize, Vec<u8>) -> Result<()>>;

pub struct ModelStream<W> {
    reader: GgufReader,
    model: Option<Model>,
    weights: Option<W>,
    received: Vec<bool>,
    /// Bytes of `rope_freqs.weight` so far, when the file has it (the config's, not a weight).
    rope_freqs: Option<Vec<u8>>,
    pushed: u64,
    sha: Sha256,
    piece_bytes: Option<usize>,
    /// A split set: the headers of the parts after the first, known before the first's data.
    rest: Vec<GgufHeader>,
    split: Option<SplitInfo>,
    /// The part being read (from 0).
    part: usize,
    /// Reads a later part's header ahead of the first part's data.
    probe: Option<GgufReader>,
    new: NewWeights<W>,
    put: PutWeight<W>,
}

impl<W> ModelStream<W> {
    /// `total_len`, when known (a file's size, a `Content-Length`), lets the reader reject an
    /// impossible file before its bytes arrive.
    pub fn new(total_len: Option<u64>, new: NewWeights<W>, put: PutWeight<W>) -> Self {
        let reader = total_len.map_or_else(GgufReader::new, GgufReader::with_total_len);
        Self {
            reader,
            model: None,
            weights: None,
            received: Vec::new(),
            rope_freqs: None,
            pushed: 0,
            sha: Sha256::new(),
            piece_bytes: None,
            rest: Vec::new(),
            split: None,
            part: 0,
            probe: None,
            new,
            put,
        }
    }

    /// For a split set of `count` parts: the header of its next part after the first (or after
    /// the last one given), needed before the first part's data because the plan spans every
    /// part.
    pub fn expect_part(&mut self, header: GgufHeader, count: u16) -> Result<()> {
        if self.model.is_some() {
            return Err(Error::InvalidArgument("the parts of a split model must be given before its first part's data".into()));
        }
        split::check_part(&header, self.rest.len() + 1, count, None)?;
        self.rest.push(header);
        Ok(())
    }

    /// [`Self::expect_part`] from the first bytes of the part, in chunks: `true` once its
    /// header is complete (the bytes after it are not needed here).
    pub fn push_part_header(&mut self, chunk: &[u8], count: u16) -> Result<bool> {
        let probe = self.probe.get_or_insert_with(GgufReader::new);
        let header = probe.push(chunk).map(|_| {
            std::iter::from_fn(|| probe.next_event()).find_map(|ev| match ev {
                GgufEvent::Header(h) => Some(h),
                _ => None,
            })
        });
        match header {
            Ok(None) => Ok(false),
            Ok(Some(h)) => {
                self.probe = None;
                self.expect_part(h, count).map(|_| true)
            }
            Err(e) => {
                self.probe = None;
                Err(e.into())
            }
        }
    }

    /// Ends the current part of a split set (every tensor of it must have arrived) and starts
    /// reading the next, `total_len` bytes long when known.
    pub fn next_part(&mut self, total_len: Option<u64>) -> Result<()> {
        let Some(info) = self.split else {
            return Err(Error::InvalidArgument("the model is not split: it has no next part".into()));
        };
        if self.part + 1 >= info.count as usize {
            return Err(Error::InvalidArgument(format!("all {} parts of the model were given already", info.count)));
        }
        self.reader.finish()?;
        self.part += 1;
        self.reader = total_len.map_or_else(GgufReader::new, GgufReader::with_total_len);
        if let Some(p) = self.piece_bytes {
            self.reader.deliver_in_pieces(p);
        }
        self.sha = Sha256::new();
        Ok(())
    }

    /// The model from the first part's header; for a split set, with every part's tensors.
    fn start(&mut self, h: GgufHeader) -> Result<()> {
        let h = match SplitInfo::of(&h)? {
            None if self.rest.is_empty() => h,
            Some(info) if self.rest.is_empty() => {
                return Err(Error::Unsupported(format!(
                    "this file is part {} of a model split into {} files: load the set by its first part \
                     (named …-00001-of-{:05}.gguf) so that the other parts are found",
                    info.no as u32 + 1,
                    info.count,
                    info.count
                )))
            }
            info => {
                self.split = info;
                split::merge_headers(h, &self.rest)?
            }
        };
        let m = Model::from_header(h)?;
        if m.header.tensor(ROPE_FREQS).is_some() {
            self.rope_freqs = Some(Vec::new());
        }
        self.received = vec![false; m.plan.weights.len()];
        self.weights = Some((self.new)(&m.plan)?);
        self.model = Some(m);
        Ok(())
    }

    /// A later part's header must be the one announced before the first part's data.
    fn check_part_header(&self, h: &GgufHeader) -> Result<()> {
        let (Some(info), Some(want)) = (self.split, self.part.checked_sub(1).and_then(|i| self.rest.get(i))) else {
            return Err(Error::Model("a second header in one file".into()));
        };
        split::check_part(h, self.part, info.count, Some(info.tensors))?;
        if h.tensors != want.tensors {
            return Err(Error::Model(format!(
                "part {} of {} changed between reading its header and its data",
                self.part + 1,
                info.count
            )));
        }
        Ok(())
    }

    /// Hands weights over in pieces of whole rows of about `bytes` each, so that no tensor is
    /// ever held whole (the browser's GPU path keeps the wasm heap small this way).
    pub fn in_pieces(mut self, bytes: usize) -> Self {
        self.reader.deliver_in_pieces(bytes);
        self.piece_bytes = Some(bytes);
        self
    }

    /// Feeds the next bytes of the file. After an error every later call fails too.
    pub fn push(&mut self, chunk: &[u8]) -> Result<()> {
        self.pushed += chunk.len() as u64;
        self.sha.update(chunk);
        if self.reader.is_done() {
            return Ok(());
        }
        self.reader.push(chunk)?;
        while let Some(ev) = self.reader.next_event() {
            match ev {
                GgufEvent::Header(h) if self.model.is_none() => self.start(h)?,
                GgufEvent::Header(h) => self.check_part_header(&h)?,
                GgufEvent::Tensor(t) => self.store(&t.info.name, 0, t.bytes, true)?,
                GgufEvent::TensorPart(t) => self.store(&t.info.name, t.offset as usize, t.bytes, t.last)?,
            }
        }
        Ok(())
    }

    fn store(&mut self, name: &str, offset: usize, bytes: Vec<u8>, last: bool) -> Result<()> {
        let (Some(m), Some(w)) = (&mut self.model, &mut self.weights) else {
            return Err(Error::Model("tensor data before the header".into()));
        };
        if name == ROPE_FREQS {
            let buf = self.rope_freqs.as_mut().expect("announced by the header");
            buf.extend_from_slice(&bytes);
            if last {
                let info = m.header.tensor(ROPE_FREQS).expect("in the header");
                let mut factors = vec![0.0f32; info.n_elements() as usize];
                crate::quant::dequantize_row(info.ty, buf, &mut factors);
                if let Some(bad) = factors.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
                    return Err(Error::Model(format!("{ROPE_FREQS} holds {bad}; frequency factors must be positive")));
                }
                m.plan.config.rope.freq_factors = Some(factors);
            }
            return Ok(());
        }
        let ids: Vec<_> = m.plan.weight_ids(name).collect();
        for &id in &ids {
            match m.plan.weights[id.0].slice {
                None if ids.len() == 1 => {
                    (self.put)(w, &m.plan, id, offset, bytes)?;
                    self.received[id.0] |= last;
                    return Ok(());
                }
                None => (self.put)(w, &m.plan, id, offset, bytes.clone())?,
                // A part of a fused tensor: the bytes of this piece that fall in it.
                Some((start, len)) => {
                    let (lo, hi) = (offset.max(start), (offset + bytes.len()).min(start + len));
                    if lo < hi {
                        (self.put)(w, &m.plan, id, lo - start, bytes[lo - offset..hi - offset].to_vec())?;
                    }
                }
            }
            self.received[id.0] |= last;
        }
        Ok(())
    }

    /// Bytes pushed so far.
    pub fn loaded(&self) -> u64 {
        self.pushed
    }

    /// Whether every tensor has arrived (later bytes are only hashed).
    pub fn is_done(&self) -> bool {
        self.reader.is_done()
    }

    /// The model's description, once the header has been read.
    pub fn model(&self) -> Option<&Model> {
        self.model.as_ref()
    }

    /// Lowercase hex SHA-256 of the bytes of the current part (the file) pushed so far.
    pub fn sha256_hex(&self) -> String {
        self.sha.clone().finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parts in the set (1 for an ordinary file), once the header has been read.
    pub fn part_count(&self) -> usize {
        self.split.map_or(1, |s| s.count as usize)
    }

    /// Ends the input: the model and its weights, or an error naming what is missing.
    pub fn finish(self) -> Result<(Model, W)> {
        self.reader.finish()?;
        if let Some(info) = self.split.filter(|i| self.part + 1 < i.count as usize) {
            return Err(Error::Model(format!("part {} of {} of the split model never arrived", self.part + 2, info.count)));
        }
        let (Some(model), Some(weights)) = (self.model, self.weights) else {
            return Err(Error::Model("file has no header".into()));
        };
        if model.plan.config.rope.freq_factors.is_none() && self.rope_freqs.is_some() {
            return Err(Error::Model(format!("tensor {ROPE_FREQS:?} never arrived")));
        }
        if let Some(i) = self.received.iter().position(|r| !r) {
            return Err(Error::Model(format!("tensor {:?} never arrived", model.plan.weights[i].name)));
        }
        Ok((model, weights))
    }
}
