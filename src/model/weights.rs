//! Quantized weights as they came from the file: a row-major matrix of ggml blocks.

use crate::quant::GgmlType;

#[derive(Debug)]
pub struct QTensor {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<u8>,
}

impl QTensor {
    pub fn row_bytes(&self) -> usize {
        self.cols / self.ty.block_len() * self.ty.block_bytes()
    }

    pub fn row(&self, r: usize) -> &[u8] {
        let n = self.row_bytes();
        &self.data[r * n..(r + 1) * n]
    }

    /// Every row dequantized (for small tensors: T5's relative biases).
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = vec![0.0f32; self.rows * self.cols];
        for (r, dst) in out.chunks_mut(self.cols).enumerate() {
            crate::quant::dequantize_row(self.ty, self.row(r), dst);
        }
        out
    }
}
