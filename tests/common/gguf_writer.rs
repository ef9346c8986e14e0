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
