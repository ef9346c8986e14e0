// TEMPORARY scalar stand-in; replaced by the real block implementations.
use super::GgmlType;
pub trait BlockFormat {}
fn f16(b: &[u8]) -> f32 { half::f16::from_le_bytes([b[0], b[1]]).to_f32() }
pub fn dequantize_row(ty: GgmlType, bytes: &[u8], out: &mut [f32]) {
    match ty {
        GgmlType::F32 => for (i, o) in out.iter_mut().enumerate() { *o = f32::from_le_bytes(bytes[4*i..4*i+4].try_into().unwrap()) },
        GgmlType::Q8_0 => for (b, o) in bytes.chunks_exact(34).zip(out.chunks_exact_mut(32)) { let d = f16(b); for i in 0..32 { o[i] = d * (b[2+i] as i8) as f32 } },
        GgmlType::Q4_1 => for (b, o) in bytes.chunks_exact(20).zip(out.chunks_exact_mut(32)) { let d = f16(b); let m = f16(&b[2..]); for i in 0..16 { o[i] = d * (b[4+i] & 15) as f32 + m; o[i+16] = d * (b[4+i] >> 4) as f32 + m; } },
        _ => unimplemented!(),
    }
}
pub fn dot_row(ty: GgmlType, bytes: &[u8], x: &[f32]) -> f32 { let mut r = vec![0.0; x.len()]; dequantize_row(ty, bytes, &mut r); dot_f32(&r, x) }
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 { a.iter().zip(b).map(|(a, b)| a * b).sum() }
