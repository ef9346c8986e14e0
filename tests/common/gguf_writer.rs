//! A minimal GGUF writer for building valid and deliberately broken test files.

pub enum Val {
    U32(u32),
    Str(String),
    Bool(u8),
    ArrU32(Vec<u32>),
    /// Raw type id and payload bytes, for values the writer should not check.
    Raw(u32, Vec<u8>),
}

pub struct Tensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: u32,
    pub offset: u64,
    pub data: Vec<u8>,
}

pub struct GgufFile {
    pub version: u32,
    pub kvs: Vec<(String, Val)>,
    pub tensors: Vec<Tensor>,
    pub alignment: u64,
}

pub fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl GgufFile {
    /// Two small F32 tensors laid out one after the other.
    pub fn simple() -> Self {
        let t = |name: &str, n: u64, offset: u64| Tensor {
            name: name.into(),
            dims: vec![n],
            ty: 0,
            offset,
            data: (0..n as u32).flat_map(|i| (i as f32).to_le_bytes()).collect(),
        };
        Self {
            version: 3,
            kvs: vec![("general.architecture".into(), Val::Str("llama".into())), ("x.count".into(), Val::U32(7))],
            tensors: vec![t("a", 8, 0), t("b", 4, 32)],
            alignment: 32,
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.kvs.len() as u64).to_le_bytes());
        for (k, v) in &self.kvs {
            put_str(&mut out, k);
            match v {
                Val::U32(x) => {
                    out.extend_from_slice(&4u32.to_le_bytes());
                    out.extend_from_slice(&x.to_le_bytes());
                }
                Val::Str(s) => {
                    out.extend_from_slice(&8u32.to_le_bytes());
                    put_str(&mut out, s);
                }
                Val::Bool(b) => {
                    out.extend_from_slice(&7u32.to_le_bytes());
                    out.push(*b);
                }
                Val::ArrU32(a) => {
                    out.extend_from_slice(&9u32.to_le_bytes());
                    out.extend_from_slice(&4u32.to_le_bytes());
                    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                    a.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
                }
                Val::Raw(ty, payload) => {
                    out.extend_from_slice(&ty.to_le_bytes());
                    out.extend_from_slice(payload);
                }
            }
        }
        for t in &self.tensors {
            put_str(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            t.dims.iter().for_each(|d| out.extend_from_slice(&d.to_le_bytes()));
            out.extend_from_slice(&t.ty.to_le_bytes());
            out.extend_from_slice(&t.offset.to_le_bytes());
        }
        let data_start = (out.len() as u64).div_ceil(self.alignment) * self.alignment;
        for t in &self.tensors {
            let at = (data_start + t.offset) as usize;
            if out.len() < at + t.data.len() {
                out.resize(at + t.data.len(), 0);
            }
            out[at..at + t.data.len()].copy_from_slice(&t.data);
        }
        out
    }
}

/// Bytes a metadata value of type `ty` takes at `at` (its type id already read).
fn value_len(b: &[u8], at: usize, ty: u32) -> usize {
    let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap()) as usize;
    match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        8 => 8 + u64_at(at),
        9 => {
            let elem = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
            let n = u64_at(at + 4);
            let mut len = 12;
            for _ in 0..n {
                len += value_len(b, at + len, elem);
            }
            len
        }
        _ => panic!("value type {ty}"),
    }
}

impl GgufFile {
    /// Reads a well-formed file back (values kept raw), so that a test can change a key or a
    /// tensor and write it again.
    pub fn parse(b: &[u8]) -> Self {
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        let str_at = |i: usize| (String::from_utf8(b[i + 8..i + 8 + u64_at(i) as usize].to_vec()).unwrap(), i + 8 + u64_at(i) as usize);
        assert_eq!(&b[..4], b"GGUF");
        let (n_tensors, n_kv) = (u64_at(8), u64_at(16));
        let mut at = 24;
        let mut kvs = Vec::new();
        let mut alignment = 32;
        for _ in 0..n_kv {
            let (key, next) = str_at(at);
            let ty = u32_at(next);
            let len = value_len(b, next + 4, ty);
            if key == "general.alignment" {
                alignment = u32_at(next + 4) as u64;
            }
            kvs.push((key, Val::Raw(ty, b[next + 4..next + 4 + len].to_vec())));
            at = next + 4 + len;
        }
        let mut infos = Vec::new();
        for _ in 0..n_tensors {
            let (name, next) = str_at(at);
            let n_dims = u32_at(next) as usize;
            let dims: Vec<u64> = (0..n_dims).map(|d| u64_at(next + 4 + 8 * d)).collect();
            at = next + 4 + 8 * n_dims;
            infos.push((name, dims, u32_at(at), u64_at(at + 4)));
            at += 12;
        }
        let data = (at as u64).div_ceil(alignment) as usize * alignment as usize;
        let tensors = infos
            .into_iter()
            .map(|(name, dims, ty, offset)| {
                let t = hearth::quant::GgmlType::from_id(ty).expect("a supported type");
                let len = t.bytes_for(dims.iter().product()).unwrap() as usize;
                let start = data + offset as usize;
                Tensor { name, dims, ty, offset, data: b[start..start + len].to_vec() }
            })
            .collect();
        Self { version: u32_at(4), kvs, tensors, alignment }
    }

    /// Sets a key (replacing it where it exists).
    pub fn set(&mut self, key: &str, v: Val) {
        match self.kvs.iter_mut().find(|(k, _)| k == key) {
            Some(kv) => kv.1 = v,
            None => self.kvs.push((key.to_string(), v)),
        }
    }

    /// Appends an F32 tensor after the others.
    pub fn add_f32_tensor(&mut self, name: &str, values: &[f32]) {
        let end = self.tensors.iter().map(|t| t.offset + t.data.len() as u64).max().unwrap_or(0);
        let offset = end.div_ceil(self.alignment) * self.alignment;
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensors.push(Tensor { name: name.into(), dims: vec![values.len() as u64], ty: 0, offset, data });
    }
}

/// A string value.
pub fn str_val(s: &str) -> Val {
    Val::Str(s.to_string())
}

/// An f32 value.
pub fn f32_val(x: f32) -> Val {
    Val::Raw(6, x.to_le_bytes().to_vec())
}

impl GgufFile {
    /// The file split as llama.cpp's `gguf-split` does: parts of at most `max_tensors` tensors
    /// in file order, each a GGUF file of its own with `split.no` (u16, from 0), `split.count`
    /// (u16) and `split.tensors.count` (i32); the first part keeps every key, the others carry
    /// only these three. `metadata_only_first` is its `--no-tensor-first-split`.
    pub fn split(&self, max_tensors: usize, metadata_only_first: bool) -> Vec<GgufFile> {
        let mut groups: Vec<&[Tensor]> = self.tensors.chunks(max_tensors).collect();
        if metadata_only_first {
            groups.insert(0, &[]);
        }
        let count = groups.len();
        let split_keys = |no: usize| {
            vec![
                ("split.no".to_string(), Val::Raw(2, (no as u16).to_le_bytes().to_vec())),
                ("split.count".to_string(), Val::Raw(2, (count as u16).to_le_bytes().to_vec())),
                ("split.tensors.count".to_string(), Val::Raw(5, (self.tensors.len() as i32).to_le_bytes().to_vec())),
            ]
        };
        groups
            .into_iter()
            .enumerate()
            .map(|(no, group)| {
                let mut kvs = if no == 0 { self.kvs.iter().map(|(k, v)| (k.clone(), v.copy())).collect() } else { Vec::new() };
                let alignment = if no == 0 { self.alignment } else { 32 };
                kvs.extend(split_keys(no));
                let mut offset = 0;
                let tensors = group
                    .iter()
                    .map(|t| {
                        let at = offset;
                        offset = (offset + t.data.len() as u64).div_ceil(alignment) * alignment;
                        Tensor { name: t.name.clone(), dims: t.dims.clone(), ty: t.ty, offset: at, data: t.data.clone() }
                    })
                    .collect();
                GgufFile { version: 3, kvs, tensors, alignment }
            })
            .collect()
    }
}

impl Val {
    fn copy(&self) -> Val {
        match self {
            Val::U32(x) => Val::U32(*x),
            Val::Str(s) => Val::Str(s.clone()),
            Val::Bool(b) => Val::Bool(*b),
            Val::ArrU32(a) => Val::ArrU32(a.clone()),
            Val::Raw(t, p) => Val::Raw(*t, p.clone()),
        }
    }
}
