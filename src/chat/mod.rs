// TEMPORARY stand-in; replaced by the real template engine.
use crate::gguf::Metadata;
use crate::tokenizer::Tokenizer;
use crate::Result;
pub struct ChatTemplate;
impl ChatTemplate { pub fn from_metadata(_: &Metadata, _: &Tokenizer) -> Result<Option<Self>> { Ok(None) } }
