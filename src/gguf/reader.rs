//! The chunk-fed GGUF parser: a state machine that consumes bytes as they arrive.

use std::collections::VecDeque;
use std::io::Read;

use super::value::{Metadata, Value, ValueType};
use super::{GgufError, GgufHeader, TensorInfo, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};
use crate::quant::GgmlType;

/// Limits that keep a hostile header from exhausting memory or time.
const MAX_TENSORS: u64 = 1 << 20;
const MAX_KV: u64 = 1 << 20;
const MAX_STRING: u64 = 64 << 20;
/// Total array elements over all metadata (a 256k vocabulary with scores and types is ~0.8M).
const MAX_ARRAY_ELEMENTS: u64 = 16 << 20;
const MAX_ARRAY_DEPTH: usize = 4;

/// What the reader yields, in file order.
#[derive(Debug)]
pub enum GgufEvent {
    /// Metadata and tensor infos; always the first event.
    Header(GgufHeader),
    /// One tensor's bytes, complete.
    Tensor(TensorData),
    /// Consecutive whole rows of one tensor, when the reader was told to deliver tensors in
    /// pieces ([`GgufReader::deliver_in_pieces`]) so no tensor is ever held whole.
    TensorPart(TensorPart),
}

#[derive(Debug)]
pub struct TensorPart {
    pub index: usize,
    pub info: TensorInfo,
    /// Byte offset of these rows within the tensor's data.
    pub offset: u64,
    pub bytes: Vec<u8>,
    /// Whether this piece completes the tensor.
    pub last: bool,
}

#[derive(Debug)]
pub struct TensorData {
    /// Index into [`GgufHeader::tensors`].
    pub index: usize,
    pub info: TensorInfo,
    pub bytes: Vec<u8>,
}

/// An array being filled, possibly inside another.
struct ArrayFrame {
    elem: ValueType,
    remaining: u64,
    items: Vec<Value>,
}

enum Stage {
    Preamble,
    KvKey,
    KvType,
    /// Reading one value of the current key (possibly inside arrays on `arrays`).
    KvValue(ValueType),
    /// Array header: element type and count of a nested or top-level array.
    ArrayHeader,
    TensorName,
    TensorRest(String),
    Data,
    Done,
    Failed,
}

/// A push parser for GGUF v2/v3. Feed bytes with [`push`](Self::push), take events with
/// [`next_event`](Self::next_event), and call [`finish`](Self::finish) at the end of input.
pub struct GgufReader {
    stage: Stage,
    /// Unparsed header bytes; `base` is the absolute offset of `buf[0]`.
    buf: Vec<u8>,
    pos: usize,
    base: u64,
    total_len: Option<u64>,
    version: u32,
    n_tensors: u64,
    n_kv: u64,
    metadata: Metadata,
    key: String,
    arrays: Vec<ArrayFrame>,
    array_elements: u64,
    tensors: Vec<TensorInfo>,
    /// Data phase: tensor indices in file order, the next one, and the absolute position.
    order: Vec<usize>,
    next: usize,
    data_offset: u64,
    cursor: u64,
    current: Vec<u8>,
    events: VecDeque<GgufEvent>,
    /// Target size of tensor pieces, if tensors are delivered in pieces.
    piece_bytes: Option<usize>,
    /// Bytes of the current tensor already delivered in earlier pieces.
    delivered: u64,
}

impl Default for GgufReader {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufReader {
    pub fn new() -> Self {
        Self {
            stage: Stage::Preamble,
            buf: Vec::new(),
            pos: 0,
            base: 0,
            total_len: None,
            version: 0,
            n_tensors: 0,
            n_kv: 0,
            metadata: Metadata::default(),
            key: String::new(),
            arrays: Vec::new(),
            array_elements: 0,
            tensors: Vec::new(),
            order: Vec::new(),
            next: 0,
            data_offset: 0,
            cursor: 0,
            current: Vec::new(),
            events: VecDeque::new(),
            piece_bytes: None,
            delivered: 0,
        }
    }

    /// A reader that knows the file's length up front (e.g. from `Content-Length`), which lets
    /// it reject impossible counts and out-of-bounds tensors before their bytes arrive.
    pub fn with_total_len(total_len: u64) -> Self {
        Self { total_len: Some(total_len), ..Self::new() }
    }

    /// Delivers tensor data as [`GgufEvent::TensorPart`]s of whole rows, about `bytes` each
    /// (at least one row), instead of whole tensors.
    pub fn deliver_in_pieces(&mut self, bytes: usize) {
        self.piece_bytes = Some(bytes.max(1));
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        match self.stage {
            Stage::Data | Stage::Done => self.cursor,
            _ => self.base + self.pos as u64,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.stage, Stage::Done)
    }

    /// The next complete event, if any.
    pub fn next_event(&mut self) -> Option<GgufEvent> {
        self.events.pop_front()
    }

    /// Feeds the next chunk of the file. After an error the reader refuses further input.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), GgufError> {
        let result = self.push_inner(chunk);
        if result.is_err() {
            self.stage = Stage::Failed;
            self.buf = Vec::new();
            self.current = Vec::new();
        }
        result
    }

    /// Declares the end of input: an error unless every tensor arrived.
    pub fn finish(&self) -> Result<(), GgufError> {
        let what = match &self.stage {
            Stage::Done => return Ok(()),
            Stage::Failed => return Err(GgufError::Finished),
            Stage::Preamble => "the file header".to_string(),
            Stage::KvKey | Stage::KvType | Stage::KvValue(_) | Stage::ArrayHeader => {
                format!("metadata ({} of {} keys read)", self.metadata.len(), self.n_kv)
            }
            Stage::TensorName | Stage::TensorRest(_) => {
                format!("tensor infos ({} of {} read)", self.tensors.len(), self.n_tensors)
            }
            Stage::Data => {
                let t = &self.tensors[self.order[self.next]];
                format!("the data of tensor {:?} ({} of {} tensors complete)", t.name, self.next, self.order.len())
            }
        };
        Err(GgufError::Truncated { at: self.position(), what })
    }

    fn push_inner(&mut self, chunk: &[u8]) -> Result<(), GgufError> {
        match self.stage {
            Stage::Failed => return Err(GgufError::Finished),
            Stage::Done => return Ok(()),
            Stage::Data => return self.push_data(chunk),
            _ => {}
        }
        // Drop consumed bytes once they dominate, keeping the copy cost amortised O(1) per byte.
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
        while self.step()? {}
        if matches!(self.stage, Stage::Data) {
            let rest = std::mem::take(&mut self.buf);
            let start = self.pos;
            self.pos = 0;
            self.push_data(&rest[start..])?;
        }
        Ok(())
    }

    fn at(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn available(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn peek_u32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.buf[self.pos + off..self.pos + off + 4].try_into().unwrap())
    }

    fn peek_u64(&self, off: usize) -> u64 {
        u64::from_le_bytes(self.buf[self.pos + off..self.pos + off + 8].try_into().unwrap())
    }

    /// Checks a claimed count against its limit and, when the file's length is known, against
    /// the bytes the file can still hold (a file too short for its claims is truncated).
    fn check_fits(&self, what: &'static str, count: u64, min_size: u64, max: u64) -> Result<(), GgufError> {
        let at = self.at();
        if count > max {
            return Err(GgufError::CountTooLarge { what, count, max, at });
        }
        if let Some(total) = self.total_len {
            let left = total.saturating_sub(at);
            if count.saturating_mul(min_size) > left {
                return Err(GgufError::Truncated {
                    at: total,
                    what: format!("{count} {what}s claimed at byte {at}, with only {left} bytes left"),
                });
            }
        }
        Ok(())
    }

    /// Reads a length-prefixed string once all its bytes are buffered.
    fn take_string(&mut self) -> Result<Option<String>, GgufError> {
        if self.available() < 8 {
            return Ok(None);
        }
        let len = self.peek_u64(0);
        if len > MAX_STRING {
            return Err(GgufError::StringTooLong { len, max: MAX_STRING, at: self.at() });
        }
        if let Some(total) = self.total_len.filter(|&t| self.at() + 8 + len > t) {
            return Err(GgufError::Truncated { at: total, what: format!("a string of {len} bytes at byte {}", self.at()) });
        }
        if (self.available() as u64) < 8 + len {
            return Ok(None);
        }
        let start = self.pos + 8;
        let bytes = &self.buf[start..start + len as usize];
        let s = std::str::from_utf8(bytes).map_err(|_| GgufError::InvalidUtf8 { at: self.at() })?.to_owned();
        self.pos = start + len as usize;
        Ok(Some(s))
    }

    /// Advances by one unit; `Ok(false)` when more bytes are needed or the header is complete.
    fn step(&mut self) -> Result<bool, GgufError> {
        match std::mem::replace(&mut self.stage, Stage::Failed) {
            Stage::Preamble => {
                if self.available() < 24 {
                    self.stage = Stage::Preamble;
                    // Reject a wrong magic as soon as 4 bytes are in, not only after 24.
                    if self.available() >= 4 && self.buf[self.pos..self.pos + 4] != MAGIC {
                        return Err(GgufError::BadMagic(self.buf[self.pos..self.pos + 4].try_into().unwrap()));
                    }
                    return Ok(false);
                }
                let magic: [u8; 4] = self.buf[self.pos..self.pos + 4].try_into().unwrap();
                if magic != MAGIC {
                    return Err(GgufError::BadMagic(magic));
                }
                let version = self.peek_u32(4);
                if version.swap_bytes() == 2 || version.swap_bytes() == 3 {
                    return Err(GgufError::BigEndian);
                }
                if version != 2 && version != 3 {
                    return Err(GgufError::UnsupportedVersion(version));
                }
                self.version = version;
                self.n_tensors = self.peek_u64(8);
                self.n_kv = self.peek_u64(16);
                self.pos += 24;
                // A tensor info takes at least 8+4+8+4+8 bytes, a key/value pair 8+4+1.
                self.check_fits("tensor", self.n_tensors, 32, MAX_TENSORS)?;
                self.check_fits("metadata key", self.n_kv, 13, MAX_KV)?;
                self.stage = self.after_kv()?;
                Ok(true)
            }
            Stage::KvKey => match self.take_string()? {
                None => {
                    self.stage = Stage::KvKey;
                    Ok(false)
                }
                Some(key) => {
                    self.key = key;
                    self.stage = Stage::KvType;
                    Ok(true)
                }
            },
            Stage::KvType => {
                if self.available() < 4 {
                    self.stage = Stage::KvType;
                    return Ok(false);
                }
                let id = self.peek_u32(0);
                let ty = ValueType::from_id(id).ok_or_else(|| GgufError::BadValueType { key: self.key.clone(), ty: id })?;
                self.pos += 4;
                self.stage = self.value_stage(ty);
                Ok(true)
            }
            Stage::KvValue(ty) => match self.take_scalar_or_string(ty)? {
                None => {
                    self.stage = Stage::KvValue(ty);
                    Ok(false)
                }
                Some(v) => {
                    self.stage = self.complete_value(v)?;
                    Ok(true)
                }
            },
            Stage::ArrayHeader => {
                if self.available() < 12 {
                    self.stage = Stage::ArrayHeader;
                    return Ok(false);
                }
                let id = self.peek_u32(0);
                let elem = ValueType::from_id(id).ok_or_else(|| GgufError::BadValueType { key: self.key.clone(), ty: id })?;
                let count = self.peek_u64(4);
                self.pos += 12;
                if self.arrays.len() >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::NestedTooDeep(self.key.clone()));
                }
                let min_size = elem.scalar_size().unwrap_or(if elem == ValueType::String { 8 } else { 12 }) as u64;
                self.check_fits("array element", count, min_size, MAX_ARRAY_ELEMENTS - self.array_elements)?;
                self.array_elements += count;
                self.arrays.push(ArrayFrame { elem, remaining: count, items: Vec::new() });
                self.stage = self.next_array_element()?;
                Ok(true)
            }
            Stage::TensorName => match self.take_string()? {
                None => {
                    self.stage = Stage::TensorName;
                    Ok(false)
                }
                Some(name) => {
                    self.stage = Stage::TensorRest(name);
                    Ok(true)
                }
            },
            Stage::TensorRest(name) => {
                if self.available() < 4 {
                    self.stage = Stage::TensorRest(name);
                    return Ok(false);
                }
                let n_dims = self.peek_u32(0);
                if n_dims as usize > MAX_DIMS {
                    return Err(GgufError::TooManyDims { name, n_dims });
                }
                let need = 4 + 8 * n_dims as usize + 4 + 8;
                if self.available() < need {
                    self.stage = Stage::TensorRest(name);
                    return Ok(false);
                }
                let dims: Vec<u64> = (0..n_dims as usize).map(|i| self.peek_u64(4 + 8 * i)).collect();
                let ty_id = self.peek_u32(4 + 8 * n_dims as usize);
                let offset = self.peek_u64(8 + 8 * n_dims as usize);
                self.pos += need;
                let info = tensor_info(name, dims, ty_id, offset)?;
                if self.tensors.iter().any(|t| t.name == info.name) {
                    return Err(GgufError::DuplicateTensor(info.name));
                }
                self.tensors.push(info);
                self.stage = if (self.tensors.len() as u64) < self.n_tensors { Stage::TensorName } else { self.start_data()? };
                Ok(!matches!(self.stage, Stage::Data | Stage::Done))
            }
            s @ (Stage::Data | Stage::Done | Stage::Failed) => {
                self.stage = s;
                Ok(false)
            }
        }
    }

    fn after_kv(&mut self) -> Result<Stage, GgufError> {
        if (self.metadata.len() as u64) < self.n_kv {
            Ok(Stage::KvKey)
        } else if self.n_tensors > 0 {
            Ok(Stage::TensorName)
        } else {
            self.start_data()
        }
    }

    fn value_stage(&self, ty: ValueType) -> Stage {
        if ty == ValueType::Array {
            Stage::ArrayHeader
        } else {
            Stage::KvValue(ty)
        }
    }

    fn take_scalar_or_string(&mut self, ty: ValueType) -> Result<Option<Value>, GgufError> {
        if ty == ValueType::String {
            return Ok(self.take_string()?.map(Value::String));
        }
        let size = ty.scalar_size().expect("arrays take the ArrayHeader stage");
        if self.available() < size {
            return Ok(None);
        }
        let b = &self.buf[self.pos..self.pos + size];
        let v = match ty {
            ValueType::U8 => Value::U8(b[0]),
            ValueType::I8 => Value::I8(b[0] as i8),
            ValueType::Bool => match b[0] {
                0 | 1 => Value::Bool(b[0] == 1),
                value => return Err(GgufError::BadBool { key: self.key.clone(), value }),
            },
            ValueType::U16 => Value::U16(u16::from_le_bytes([b[0], b[1]])),
            ValueType::I16 => Value::I16(i16::from_le_bytes([b[0], b[1]])),
            ValueType::U32 => Value::U32(u32::from_le_bytes(b.try_into().unwrap())),
            ValueType::I32 => Value::I32(i32::from_le_bytes(b.try_into().unwrap())),
            ValueType::F32 => Value::F32(f32::from_le_bytes(b.try_into().unwrap())),
            ValueType::U64 => Value::U64(u64::from_le_bytes(b.try_into().unwrap())),
            ValueType::I64 => Value::I64(i64::from_le_bytes(b.try_into().unwrap())),
            ValueType::F64 => Value::F64(f64::from_le_bytes(b.try_into().unwrap())),
            ValueType::String | ValueType::Array => unreachable!(),
        };
        self.pos += size;
        Ok(Some(v))
    }

    /// Files a finished value into the enclosing array or the metadata; returns the next stage.
    fn complete_value(&mut self, mut v: Value) -> Result<Stage, GgufError> {
        loop {
            match self.arrays.last_mut() {
                None => {
                    let key = std::mem::take(&mut self.key);
                    self.metadata.insert(key, v)?;
                    return self.after_kv();
                }
                Some(frame) => {
                    frame.items.push(v);
                    frame.remaining -= 1;
                    if frame.remaining > 0 {
                        let elem = frame.elem;
                        return Ok(self.value_stage(elem));
                    }
                    v = Value::Array(self.arrays.pop().unwrap().items);
                }
            }
        }
    }

    /// Stage for the next element of the innermost array, closing empty arrays.
    fn next_array_element(&mut self) -> Result<Stage, GgufError> {
        let frame = self.arrays.last().expect("called with an open array");
        if frame.remaining > 0 {
            return Ok(self.value_stage(frame.elem));
        }
        let items = self.arrays.pop().unwrap().items;
        self.complete_value(Value::Array(items))
    }

    /// Header complete: validate the layout, emit the header, and switch to tensor data.
    fn start_data(&mut self) -> Result<Stage, GgufError> {
        let alignment = match self.metadata.get_u64("general.alignment")? {
            None => DEFAULT_ALIGNMENT,
            Some(a) if a > 0 && a.is_power_of_two() => a,
            Some(a) => return Err(GgufError::BadAlignment(a)),
        };
        let header_end = self.at();
        let data_offset = header_end.div_ceil(alignment) * alignment;
        let mut order: Vec<usize> = (0..self.tensors.len()).collect();
        order.sort_by_key(|&i| self.tensors[i].offset);
        for (k, &i) in order.iter().enumerate() {
            let t = &self.tensors[i];
            if !t.offset.is_multiple_of(alignment) {
                return Err(GgufError::MisalignedTensor { name: t.name.clone(), offset: t.offset, alignment });
            }
            let end = data_offset.checked_add(t.offset).and_then(|s| s.checked_add(t.n_bytes));
            let file_len = self.total_len.unwrap_or(u64::MAX);
            match end {
                Some(end) if end <= file_len => {}
                _ => {
                    return Err(GgufError::TensorOutOfBounds {
                        name: t.name.clone(),
                        end: end.unwrap_or(u64::MAX),
                        file_len,
                    })
                }
            }
            if let Some(&j) = order.get(k + 1) {
                let u = &self.tensors[j];
                if t.offset + t.n_bytes > u.offset {
                    return Err(GgufError::OverlappingTensors { a: t.name.clone(), b: u.name.clone() });
                }
            }
        }
        self.events.push_back(GgufEvent::Header(GgufHeader {
            version: self.version,
            metadata: std::mem::take(&mut self.metadata),
            tensors: self.tensors.clone(),
            alignment,
            data_offset,
        }));
        self.order = order;
        self.data_offset = data_offset;
        self.cursor = header_end;
        Ok(if self.order.is_empty() { Stage::Done } else { Stage::Data })
    }

    /// Data phase: skip padding, collect the current tensor, emit it when complete.
    fn push_data(&mut self, mut chunk: &[u8]) -> Result<(), GgufError> {
        while !chunk.is_empty() && matches!(self.stage, Stage::Data) {
            let info = &self.tensors[self.order[self.next]];
            let start = self.data_offset + info.offset;
            if self.cursor < start {
                let skip = ((start - self.cursor) as usize).min(chunk.len());
                self.cursor += skip as u64;
                chunk = &chunk[skip..];
                continue;
            }
            let remaining = info.n_bytes - self.delivered;
            // This event's size: the whole tensor, or whole rows up to the piece size.
            let target = match self.piece_bytes {
                None => remaining,
                Some(piece) => {
                    let row = info.n_bytes / info.dims.iter().skip(1).product::<u64>().max(1);
                    remaining.min((piece as u64 / row).max(1) * row)
                }
            };
            // (Saturating: on wasm32 a claimed size may not fit a usize.)
            let target = usize::try_from(target).unwrap_or(usize::MAX);
            let take = (target - self.current.len()).min(chunk.len());
            if let (true, Some(piece)) = (self.current.is_empty(), self.piece_bytes) {
                // Room for one piece at most: a row the header claims is larger grows only as
                // its bytes arrive (found by fuzzing: a 64 TiB claimed row aborted here).
                self.current.reserve_exact(target.min(piece));
            }
            self.current.extend_from_slice(&chunk[..take]);
            self.cursor += take as u64;
            chunk = &chunk[take..];
            if self.current.len() == target {
                let index = self.order[self.next];
                let bytes = std::mem::take(&mut self.current);
                let info = self.tensors[index].clone();
                let offset = self.delivered;
                self.delivered += bytes.len() as u64;
                let last = self.delivered == info.n_bytes;
                self.events.push_back(match self.piece_bytes {
                    None => GgufEvent::Tensor(TensorData { index, info, bytes }),
                    Some(_) => GgufEvent::TensorPart(TensorPart { index, info, offset, bytes, last }),
                });
                if last {
                    self.delivered = 0;
                    self.next += 1;
                    if self.next == self.order.len() {
                        self.stage = Stage::Done;
                    }
                }
            }
        }
        Ok(())
    }
}

fn tensor_info(name: String, dims: Vec<u64>, ty_id: u32, offset: u64) -> Result<TensorInfo, GgufError> {
    let n = dims.iter().try_fold(1u64, |acc, &d| if d == 0 { None } else { acc.checked_mul(d) });
    let Some(n) = n.filter(|_| !dims.is_empty()) else {
        return Err(GgufError::BadShape { name, dims });
    };
    let Some(ty) = GgmlType::from_id(ty_id) else {
        return Err(GgufError::UnsupportedTensorType { name, ty: ty_id, ty_name: GgmlType::name_of_id(ty_id) });
    };
    if !dims[0].is_multiple_of(ty.block_len() as u64) {
        return Err(GgufError::BadRowLength { name, row: dims[0], ty: ty.name(), block: ty.block_len() });
    }
    let n_bytes = ty.bytes_for(n).ok_or_else(|| GgufError::BadShape { name: name.clone(), dims: dims.clone() })?;
    if n_bytes > isize::MAX as u64 {
        return Err(GgufError::BadShape { name, dims });
    }
    Ok(TensorInfo { name, dims, ty, offset, n_bytes })
}

/// Drives a [`GgufReader`] from any `Read`, handing each event to `on_event` as it completes.
/// `on_event` returns `false` to stop early (e.g. after the header).
pub fn read_all<R: Read>(
    mut source: R,
    chunk_size: usize,
    total_len: Option<u64>,
    mut on_event: impl FnMut(GgufEvent, u64) -> crate::Result<bool>,
) -> crate::Result<()> {
    let mut reader = match total_len {
        Some(n) => GgufReader::with_total_len(n),
        None => GgufReader::new(),
    };
    let mut buf = vec![0u8; chunk_size.max(1)];
    loop {
        let n = match source.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            reader.finish()?;
            return Ok(());
        }
        reader.push(&buf[..n])?;
        while let Some(ev) = reader.next_event() {
            if !on_event(ev, reader.position())? {
                return Ok(());
            }
        }
        if reader.is_done() {
            return Ok(());
        }
    }
}

/// Reads only the header (metadata and tensor infos) of a GGUF file.
pub fn read_header_file(path: &std::path::Path) -> crate::Result<GgufHeader> {
    let file = std::fs::File::open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))?;
    let len = file.metadata()?.len();
    let mut header = None;
    read_all(std::io::BufReader::new(file), 1 << 16, Some(len), |ev, _| {
        if let GgufEvent::Header(h) = ev {
            header = Some(h);
        }
        Ok(header.is_none())
    })?;
    header.ok_or_else(|| GgufError::Truncated { at: len, what: "the header".into() }.into())
}
