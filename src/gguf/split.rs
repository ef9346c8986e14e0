//! Split GGUF sets, as llama.cpp's `gguf-split` writes them: `name-00001-of-00003.gguf`, … each
//! a GGUF file of its own holding some of the tensors. The first part carries the model's
//! metadata; every part carries `split.no` (from 0), `split.count` and `split.tensors.count`.

use super::{GgufError, GgufHeader};

pub const SPLIT_NO: &str = "split.no";
pub const SPLIT_COUNT: &str = "split.count";
pub const SPLIT_TENSORS_COUNT: &str = "split.tensors.count";

/// Where one file sits in its split set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitInfo {
    /// From 0.
    pub no: u16,
    pub count: u16,
    /// Tensors in the whole set.
    pub tensors: u64,
}

impl SplitInfo {
    /// The header's `split.*` keys; `None` for an ordinary file (no keys, or a set of one).
    pub fn of(header: &GgufHeader) -> Result<Option<SplitInfo>, GgufError> {
        let m = &header.metadata;
        let Some(count) = m.get_u64(SPLIT_COUNT)? else { return Ok(None) };
        let no = m.require_u64(SPLIT_NO)?;
        let tensors = m.require_u64(SPLIT_TENSORS_COUNT)?;
        let count = u16::try_from(count).map_err(|_| bad(format!("{SPLIT_COUNT} is {count}")))?;
        if count == 0 || no >= count as u64 {
            return Err(bad(format!("{SPLIT_NO} {no} is not below {SPLIT_COUNT} {count}")));
        }
        if count == 1 {
            return Ok(None);
        }
        Ok(Some(SplitInfo { no: no as u16, count, tensors }))
    }
}

fn bad(why: String) -> GgufError {
    GgufError::BadSplit(why)
}

/// The file name of part `no` (from 0) of a set whose first part is `first`, when `first` is
/// named as llama.cpp names parts (`…-00001-of-00003.gguf`, any prefix: a path or a URL).
/// `None` when the name is not a first part's.
pub fn part_name(first: &str, no: u16) -> Option<String> {
    let (prefix, count) = split_name(first)?;
    (no < count).then(|| format!("{prefix}-{:05}-of-{count:05}.gguf", no as u32 + 1))
}

/// The prefix and part count of a first part's name.
pub fn split_name(first: &str) -> Option<(&str, u16)> {
    let stem = first.strip_suffix(".gguf")?;
    let (rest, count) = stem.rsplit_once("-of-")?;
    let (prefix, no) = rest.rsplit_once('-')?;
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(no) || !digits(count) || no != "00001" {
        return None;
    }
    let count: u16 = count.parse().ok()?;
    (count > 1).then_some((prefix, count))
}

/// One header for the whole set: the first part's metadata and every part's tensors, in part
/// order (offsets stay relative to their own part). Checks that the parts belong together:
/// numbered in order, one count, and the tensors the set announces, each once.
pub fn merge_headers(first: GgufHeader, rest: &[GgufHeader]) -> Result<GgufHeader, GgufError> {
    let Some(info) = SplitInfo::of(&first)? else {
        return Err(bad("the first part has no split.* metadata: it is not the first file of a split model".into()));
    };
    if info.no != 0 {
        return Err(bad(format!("this is part {} of {}, not the first", info.no + 1, info.count)));
    }
    if rest.len() + 1 != info.count as usize {
        return Err(bad(format!("the set has {} parts, but {} were given", info.count, rest.len() + 1)));
    }
    let mut merged = first;
    for (i, h) in rest.iter().enumerate() {
        check_part(h, i + 1, info.count, Some(info.tensors))?;
        merged.tensors.extend(h.tensors.iter().cloned());
    }
    if merged.tensors.len() as u64 != info.tensors {
        return Err(bad(format!("the parts hold {} tensors, but the set announces {} (is a part from another set?)", merged.tensors.len(), info.tensors)));
    }
    let mut names: Vec<&str> = merged.tensors.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(GgufError::DuplicateTensor(w[0].to_string()));
    }
    Ok(merged)
}

/// Checks that `h` is part `index` (from 0) of a set of `count` parts (and `tensors` tensors,
/// where known).
pub fn check_part(h: &GgufHeader, index: usize, count: u16, tensors: Option<u64>) -> Result<(), GgufError> {
    let what = format!("part {} of {count}", index + 1);
    let Some(got) = SplitInfo::of(h)? else {
        return Err(bad(format!("{what} has no split.* metadata: it is not part of a split model")));
    };
    if got.count != count || tensors.is_some_and(|t| t != got.tensors) {
        let theirs = tensors.map_or(String::new(), |t| format!(" with {t} tensors"));
        return Err(bad(format!(
            "{what} belongs to another set: it is one of {} parts with {} tensors, not of {count}{theirs}",
            got.count, got.tensors
        )));
    }
    if got.no as usize != index {
        return Err(bad(format!("{what} is numbered part {} inside", got.no as u32 + 1)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names_follow_llama_cpp() {
        let first = "https://x.test/m/Model-Q4-00001-of-00003.gguf";
        assert_eq!(split_name(first), Some(("https://x.test/m/Model-Q4", 3)));
        assert_eq!(part_name(first, 2).as_deref(), Some("https://x.test/m/Model-Q4-00003-of-00003.gguf"));
        assert_eq!(part_name(first, 3), None);
        for not_first in ["m-00002-of-00003.gguf", "m-00001-of-00001.gguf", "m-1-of-3.gguf", "m.gguf", "m-00001-of-00003.bin"] {
            assert_eq!(split_name(not_first), None, "{not_first}");
        }
    }
}
