//! GPT-2 byte-level alphabet: every byte is shown as one printable Unicode character in the
//! vocabulary (`bytes_to_unicode` in OpenAI's encoder.py). Decoding maps the characters back.

/// Bytes that stand for themselves; every other byte maps to U+0100 + its rank among the rest.
fn is_printable(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// The highest code point the alphabet uses (U+0143), plus one.
const TABLE_LEN: usize = 0x144;

/// Maps characters of the byte-level alphabet back to their bytes.
#[derive(Clone)]
pub(crate) struct ByteDecoder {
    /// `table[c]` = the byte for char `c`, or -1 when `c` is not in the alphabet.
    table: [i16; TABLE_LEN],
}

impl ByteDecoder {
    pub(crate) fn new() -> Self {
        let mut table = [-1i16; TABLE_LEN];
        let mut n = 0usize;
        for b in 0..=255u8 {
            let c = if is_printable(b) {
                b as usize
            } else {
                n += 1;
                0xFF + n
            };
            table[c] = b as i16;
        }
        Self { table }
    }

    /// Appends the bytes that `piece` (a vocabulary string in byte-level form) stands for.
    /// Characters outside the alphabet are copied as their own UTF-8 (llama.cpp writes an
    /// `[UNK_BYTE_…]` marker there instead; real vocabularies never contain such characters).
    pub(crate) fn decode_into(&self, piece: &str, out: &mut Vec<u8>) {
        for c in piece.chars() {
            match self.table.get(c as usize) {
                Some(&b) if b >= 0 => out.push(b as u8),
                _ => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
    }
}

impl std::fmt::Debug for ByteDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ByteDecoder")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_round_trip() {
        let d = ByteDecoder::new();
        // 'Ġ' (U+0120) is the space, 'Ċ' (U+010A) the newline, 'ĉ' (U+0109) the tab.
        let mut out = Vec::new();
        d.decode_into("ĠhelloĊĉ", &mut out);
        assert_eq!(out, b" hello\n\t");
        // All 256 bytes are reachable and distinct.
        let mut seen = [false; 256];
        for &b in d.table.iter().filter(|&&b| b >= 0) {
            assert!(!seen[b as usize]);
            seen[b as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
