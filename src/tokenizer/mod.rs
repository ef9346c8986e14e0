// TEMPORARY stand-in; replaced by the real tokenizer.
use crate::gguf::Metadata;
use crate::Result;
pub struct Tokenizer { n: usize }
impl Tokenizer {
    pub fn from_metadata(md: &Metadata) -> Result<Self> { Ok(Self { n: md.get_array("tokenizer.ggml.tokens")?.map(|a| a.len()).unwrap_or(0) }) }
    pub fn vocab_size(&self) -> usize { self.n }
}
impl Tokenizer { pub fn is_end_of_generation(&self, id: u32) -> bool { id == 2 } }
pub struct StreamDecoder;
impl StreamDecoder { pub fn new(_: &Tokenizer) -> Self { Self } pub fn push(&mut self, _: u32) -> Result<String> { Ok(String::new()) } pub fn finish(&mut self) -> String { String::new() } }
