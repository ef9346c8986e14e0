//! Architectures as data: the switches that tell one decoder-only transformer from another.
//! Adding an architecture that shares llama's structure is one more table row.

/// How RoPE pairs up the dimensions of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RopeStyle {
    /// ggml's "normal" mode: adjacent pairs (x[2i], x[2i+1]); llama's converted weights.
    Norm,
    /// GPT-NeoX style: pairs (x[i], x[i + d/2]).
    Neox,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArchSpec {
    /// `general.architecture` value and metadata key prefix.
    pub name: &'static str,
    pub rope: RopeStyle,
}

const ARCHS: &[ArchSpec] = &[
    ArchSpec { name: "llama", rope: RopeStyle::Norm },
    ArchSpec { name: "mistral", rope: RopeStyle::Norm },
];

impl ArchSpec {
    pub fn lookup(name: &str) -> Option<&'static ArchSpec> {
        ARCHS.iter().find(|a| a.name == name)
    }

    pub fn supported_names() -> Vec<&'static str> {
        ARCHS.iter().map(|a| a.name).collect()
    }
}

/// GGUF tensor names of the llama family.
pub mod names {
    pub const TOKEN_EMBD: &str = "token_embd.weight";
    pub const OUTPUT_NORM: &str = "output_norm.weight";
    pub const OUTPUT: &str = "output.weight";

    pub fn layer(i: usize, what: &str) -> String {
        format!("blk.{i}.{what}.weight")
    }
}
