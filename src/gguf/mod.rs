//! GGUF, read as a stream.
//!
//! [`GgufReader`] is fed the file as byte chunks of any size (a `fetch()` body in the browser,
//! `read()` calls natively). It yields the header — metadata and tensor infos — as soon as those
//! bytes have arrived, then each tensor's bytes as they complete, in file order, never holding
//! the whole file and never allocating by a size the file claims before the bytes are there.

mod reader;
pub mod split;
mod value;

pub use reader::{read_all, read_header_file, GgufEvent, GgufReader, TensorData, TensorPart};
pub use split::SplitInfo;
pub use value::{Metadata, Value, ValueType};

use crate::quant::GgmlType;

pub const MAGIC: [u8; 4] = *b"GGUF";
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Most dimensions a ggml tensor can have.
pub const MAX_DIMS: usize = 4;

/// Everything before the tensor data: version, metadata and tensor infos.
#[derive(Clone, Debug)]
pub struct GgufHeader {
    pub version: u32,
    pub metadata: Metadata,
    /// Tensor infos in the order the file lists them.
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute file offset where tensor data starts.
    pub data_offset: u64,
}

impl GgufHeader {
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// File size implied by the header: the end of the last tensor's bytes.
    pub fn data_end(&self) -> u64 {
        self.tensors.iter().map(|t| self.data_offset + t.offset + t.n_bytes).max().unwrap_or(self.data_offset)
    }
}

/// One tensor's description.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the contiguous (row) dimension.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Offset relative to the start of the data section.
    pub offset: u64,
    pub n_bytes: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Elements per row (`dims[0]`) and number of rows (the product of the rest).
    pub fn rows_cols(&self) -> (usize, usize) {
        // Saturating where usize is 32 bits (wasm32): such a tensor can never match a shape.
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let cols = size(self.dims.first().copied().unwrap_or(1));
        let rows = size(self.dims.iter().skip(1).product::<u64>());
        (rows, cols)
    }
}

/// Why a GGUF file was rejected. Offsets are absolute byte positions in the file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GgufError {
    #[error("not a GGUF file (magic bytes {0:02x?}, expected \"GGUF\")")]
    BadMagic([u8; 4]),
    #[error("unsupported GGUF version {0} (supported: 2 and 3)")]
    UnsupportedVersion(u32),
    #[error("big-endian GGUF files are not supported")]
    BigEndian,
    #[error("file ends early at byte {at} while reading {what}")]
    Truncated { at: u64, what: String },
    #[error("{what} count {count} at byte {at} is larger than allowed ({max})")]
    CountTooLarge { what: &'static str, count: u64, max: u64, at: u64 },
    #[error("string of {len} bytes at byte {at} is longer than allowed ({max})")]
    StringTooLong { len: u64, max: u64, at: u64 },
    #[error("string at byte {at} is not valid UTF-8")]
    InvalidUtf8 { at: u64 },
    #[error("unknown metadata value type {ty} for key {key:?}")]
    BadValueType { key: String, ty: u32 },
    #[error("metadata key {key:?} has a bool value {value} (must be 0 or 1)")]
    BadBool { key: String, value: u8 },
    #[error("metadata arrays are nested deeper than allowed under key {0:?}")]
    NestedTooDeep(String),
    #[error("metadata key {0:?} appears twice")]
    DuplicateKey(String),
    #[error("metadata key {0:?} is missing")]
    MissingKey(String),
    #[error("metadata key {key:?} is a {found}, expected {expected}")]
    WrongValueType { key: String, expected: &'static str, found: &'static str },
    #[error("general.alignment {0} is not a non-zero power of two")]
    BadAlignment(u64),
    #[error("tensor {name:?} has {n_dims} dimensions (at most {MAX_DIMS} allowed)")]
    TooManyDims { name: String, n_dims: u32 },
    #[error("tensor {name:?} has an empty or overflowing shape {dims:?}")]
    BadShape { name: String, dims: Vec<u64> },
    #[error("tensor {name:?} has element type {ty_name} (id {ty}), which this build does not support")]
    UnsupportedTensorType { name: String, ty: u32, ty_name: &'static str },
    #[error("tensor {name:?}: row length {row} is not a multiple of the {ty} block size {block}")]
    BadRowLength { name: String, row: u64, ty: &'static str, block: usize },
    #[error("tensor {0:?} appears twice")]
    DuplicateTensor(String),
    #[error("tensor {name:?} offset {offset} is not a multiple of the alignment {alignment}")]
    MisalignedTensor { name: String, offset: u64, alignment: u64 },
    #[error("tensors {a:?} and {b:?} overlap in the data section")]
    OverlappingTensors { a: String, b: String },
    #[error("tensor {name:?} ends at byte {end}, past the end of the file ({file_len} bytes)")]
    TensorOutOfBounds { name: String, end: u64, file_len: u64 },
    #[error("split model: {0}")]
    BadSplit(String),
    #[error("reader used after an error or after the end of the file")]
    Finished,
}
