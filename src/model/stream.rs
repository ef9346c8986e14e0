//! A model built from GGUF bytes pushed in order, as they arrive from a file or a network
//! stream. Each weight goes to its destination (host memory, GPU buffers) as soon as its last
//! byte arrives, so only the tensor in flight is ever buffered.

use sha2::{Digest, Sha256};

use super::arch::names::ROPE_FREQS;
use super::load::Model;
use super::plan::{ForwardPlan, WeightId};
use crate::gguf::{GgufEvent, GgufReader};
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
    new: NewWeights<W>,
    put: PutWeight<W>,
}

impl<W> ModelStream<W> {
    /// `total_len`, when known (a file's size, a `Content-Length`), lets the reader reject an
    /// impossible file before its bytes arrive.
    pub fn new(total_len: Option<u64>, new: NewWeights<W>, put: PutWeight<W>) -> Self {
        let reader = total_len.map_or_else(GgufReader::new, GgufReader::with_total_len);
        Self { reader, model: None, weights: None, received: Vec::new(), rope_freqs: None, pushed: 0, sha: Sha256::new(), new, put }
    }

    /// Hands weights over in pieces of whole rows of about `bytes` each, so that no tensor is
    /// ever held whole (the browser's GPU path keeps the wasm heap small this way).
    pub fn in_pieces(mut self, bytes: usize) -> Self {
        self.reader.deliver_in_pieces(bytes);
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
                GgufEvent::Header(h) => {
                    let m = Model::from_header(h)?;
                    if m.header.tensor(ROPE_FREQS).is_some() {
                        self.rope_freqs = Some(Vec::new());
                    }
                    self.received = vec![false; m.plan.weights.len()];
                    self.weights = Some((self.new)(&m.plan)?);
                    self.model = Some(m);
                }
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
        if let Some(id) = m.plan.weight_index(name) {
            (self.put)(w, &m.plan, id, offset, bytes)?;
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

    /// Lowercase hex SHA-256 of every byte pushed so far.
    pub fn sha256_hex(&self) -> String {
        self.sha.clone().finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Ends the input: the model and its weights, or an error naming what is missing.
    pub fn finish(self) -> Result<(Model, W)> {
        self.reader.finish()?;
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
