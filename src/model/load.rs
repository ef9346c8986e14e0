//! Loading a model from a GGUF byte stream: header → config, tokenizer, template and plan;
//! then each tensor, as it completes, handed to the backend that will run it.

use std::io::Read;
use std::path::Path;

use super::arch::{names::ROPE_FREQS, ArchSpec};
use super::config::ModelConfig;
use super::plan::ForwardPlan;
use crate::chat::{ChatMessage, ChatTemplate};
use super::stream::{ModelStream, NewWeights, PutWeight};
use crate::gguf::GgufHeader;
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

/// Everything about a model except its weights, which live in a backend.
pub struct Model {
    pub header: GgufHeader,
    pub plan: ForwardPlan,
    pub tokenizer: Tokenizer,
    pub chat_template: Option<ChatTemplate>,
}

impl Model {
    pub fn config(&self) -> &ModelConfig {
        &self.plan.config
    }

    /// Builds everything but the weights from a parsed header. Every tensor of the file must
    /// have its place in the plan: one that does not (an unknown norm, a fused QKV, an extra
    /// projection) is refused rather than dropped.
    pub fn from_header(mut header: GgufHeader) -> Result<Self> {
        let config = ModelConfig::from_header(&header)?;
        let plan = ForwardPlan::build(config, &header)?;
        check_every_tensor_used(&header, &plan)?;
        // The vocabulary moves from the header into the tokenizer (held once, not twice).
        let tokenizer = Tokenizer::from_metadata_taking(&mut header.metadata)?;
        if tokenizer.vocab_size() != plan.config.n_vocab {
            return Err(Error::Model(format!(
                "tokenizer has {} tokens but the embedding has {} rows",
                tokenizer.vocab_size(),
                plan.config.n_vocab
            )));
        }
        let chat_template = ChatTemplate::from_metadata(&header.metadata, &tokenizer)?;
        Ok(Self { header, plan, tokenizer, chat_template })
    }

    /// Token ids of a raw text prompt: special tokens in the text are parsed, BOS is prepended
    /// and the end token (WordPiece's [SEP], T5's EOS) appended when the model asks for them.
    /// An encoder-decoder's prompt is its encoder input.
    pub fn text_prompt(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        if self.tokenizer.add_bos() {
            ids.extend(self.tokenizer.bos_id());
        }
        ids.extend(self.tokenizer.encode(text, true)?);
        ids.extend(self.tokenizer.end_id());
        Ok(ids)
    }

    /// Token ids of a text to embed: BOS where the model asks for it, then the text as plain
    /// text (special tokens written in it are not parsed), then the end token where the model
    /// asks for one (WordPiece's [SEP]).
    pub fn embedding_prompt(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        if self.tokenizer.add_bos() {
            ids.extend(self.tokenizer.bos_id());
        }
        ids.extend(self.tokenizer.encode(text, false)?);
        ids.extend(self.tokenizer.end_id());
        Ok(ids)
    }

    /// An encoder-decoder's decoder prompt: its start token (`decoder_start_token_id`, else
    /// the padding token, as T5 starts from `<pad>`).
    pub fn decoder_prompt(&self) -> Result<Vec<u32>> {
        let start = self.plan.config.decoder_start.or(self.tokenizer.pad_id());
        start.map(|id| vec![id]).ok_or_else(|| {
            Error::Model("the encoder-decoder names no decoder start token (decoder_start_token_id) and has no padding token".into())
        })
    }

    /// Token ids of a conversation rendered by the model's chat template (ChatML when the
    /// file has none), ready for the assistant's reply.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let fallback;
        let template = match &self.chat_template {
            Some(t) => t,
            None => {
                let piece = |id: Option<u32>| id.and_then(|i| self.tokenizer.token_str(i)).unwrap_or("").to_string();
                fallback = ChatTemplate::chatml(&piece(self.tokenizer.bos_id()), &piece(self.tokenizer.eos_id()));
                &fallback
            }
        };
        // Message text is tokenized as plain text: only the template may write control tokens.
        let guarded: Vec<ChatMessage> =
            messages.iter().map(|m| ChatMessage::new(self.tokenizer.guard(&m.role), self.tokenizer.guard(&m.content))).collect();
        let text = template.render(&guarded, true)?;
        let mut ids = self.tokenizer.encode_rendered(&text)?;
        // Templates often write BOS themselves; add it only when the model wants it and it is absent.
        if let Some(bos) = self.tokenizer.bos_id().filter(|_| self.tokenizer.add_bos()) {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }
}

/// Fails on the first tensor of the file that the plan does not read (the RoPE frequency
/// factors, which the config reads, excepted where the architecture has them).
fn check_every_tensor_used(header: &GgufHeader, plan: &ForwardPlan) -> Result<()> {
    let c = &plan.config;
    for t in &header.tensors {
        if t.name == ROPE_FREQS && ArchSpec::lookup(&c.architecture).is_some_and(|a| a.rope_freqs) {
            if t.rows_cols() != (1, c.rope.half()) || t.dims.len() != 1 {
                return Err(Error::Model(format!("tensor {ROPE_FREQS:?} has shape {:?}, expected [{}]", t.dims, c.rope.half())));
            }
            continue;
        }
        let ignored = |s: &&str| t.name == *s || t.name.strip_suffix(s).is_some_and(|head| head.ends_with('.'));
        let ignored = ArchSpec::lookup(&c.architecture).is_some_and(|a| a.ignored.iter().any(ignored));
        if plan.weight_index(&t.name).is_none() && !ignored {
            return Err(Error::Unsupported(format!(
                "tensor {:?} has no place in a {} model as this engine builds it (refusing to run without it)",
                t.name, c.architecture
            )));
        }
    }
    Ok(())
}

#[derive(Clone, Copy, Debug)]
pub struct LoadProgress {
    pub loaded: u64,
    pub total: Option<u64>,
}

/// Opens a model file, with a clear error when it cannot be read.
pub fn open_file(path: &Path) -> Result<(std::fs::File, u64)> {
    let file = std::fs::File::open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))?;
    let len = file.metadata()?.len();
    Ok((file, len))
}

/// Streams a GGUF file into a weight store (see [`ModelStream`]; `piece_bytes` as in
/// [`ModelStream::in_pieces`]), reporting progress. A file named as the first part of a split
/// set (`…-00001-of-00003.gguf`) brings the other parts, one after another.
pub fn load_model_file<W>(
    path: &Path,
    new: NewWeights<W>,
    put: PutWeight<W>,
    piece_bytes: Option<usize>,
    mut progress: impl FnMut(LoadProgress),
) -> Result<(Model, W)> {
    let parts = split_parts(path)?;
    let mut files = Vec::new();
    for part in &parts {
        files.push(open_file(part)?);
    }
    let mut stream = ModelStream::new(Some(files[0].1), new, put);
    if let Some(p) = piece_bytes {
        stream = stream.in_pieces(p);
    }
    for part in parts.iter().skip(1) {
        let header = crate::gguf::read_header_file(part).map_err(|e| in_part(part, e))?;
        stream.expect_part(header, parts.len() as u16).map_err(|e| in_part(part, e))?;
    }
    // A split model's errors name the part they are in.
    let named = |part: &Path, e: Error| if parts.len() > 1 { in_part(part, e) } else { e };
    let total = files.iter().map(|(_, len)| len).sum();
    let mut buf = vec![0u8; 1 << 20];
    for (i, (mut file, len)) in files.into_iter().enumerate() {
        if i > 0 {
            stream.next_part(Some(len)).map_err(|e| in_part(&parts[i - 1], e))?;
        }
        while !stream.is_done() {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            stream.push(&buf[..n]).map_err(|e| named(&parts[i], e))?;
            progress(LoadProgress { loaded: stream.loaded(), total: Some(total) });
        }
    }
    stream.finish().map_err(|e| named(parts.last().expect("one part at least"), e))
}

/// The header of the model at `path`: the file's, or for the first part of a split set, the
/// set's (every part's tensors).
pub fn read_model_header(path: &Path) -> Result<GgufHeader> {
    let parts = split_parts(path)?;
    let first = crate::gguf::read_header_file(path)?;
    if parts.len() == 1 {
        return Ok(first);
    }
    let mut rest = Vec::new();
    for part in &parts[1..] {
        rest.push(crate::gguf::read_header_file(part).map_err(|e| in_part(part, e))?);
    }
    Ok(crate::gguf::split::merge_headers(first, &rest).map_err(|e| in_part(path, e.into()))?)
}

/// The files of the model at `path`: itself, or every part of the split set it begins.
fn split_parts(path: &Path) -> Result<Vec<std::path::PathBuf>> {
    let name = path.to_string_lossy();
    let Some((_, count)) = crate::gguf::split::split_name(&name) else { return Ok(vec![path.to_path_buf()]) };
    let parts: Vec<std::path::PathBuf> = (0..count).filter_map(|no| crate::gguf::split::part_name(&name, no)).map(Into::into).collect();
    for (i, p) in parts.iter().enumerate().skip(1) {
        if !Path::new(p).exists() {
            return Err(Error::Model(format!("part {} of {count} of the split model is missing: {} does not exist", i + 1, p.display())));
        }
    }
    Ok(parts)
}

/// An error in one part of a split set, naming its file.
fn in_part(path: &Path, e: Error) -> Error {
    Error::Model(format!("{}: {e}", path.display()))
}
