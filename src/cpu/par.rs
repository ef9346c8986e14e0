//! Data parallelism over the engine's thread pool, and disjoint writes into shared outputs.

use super::pool::Pool;

/// Runs `f(i)` for every `i in 0..n`, in parallel where threads exist.
pub fn for_each(n: usize, f: impl Fn(usize) + Sync) {
    Pool::global().run(n, &f);
}

pub fn threads() -> usize {
    Pool::global().threads()
}

/// A raw output pointer shared by tasks that write disjoint elements.
#[derive(Clone, Copy)]
pub struct SharedOut(*mut f32, usize);

unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    pub fn new(out: &mut [f32]) -> Self {
        Self(out.as_mut_ptr(), out.len())
    }

    /// # Safety
    /// No two tasks may touch the same range concurrently.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, start: usize, len: usize) -> &mut [f32] {
        assert!(start + len <= self.1);
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }

    /// # Safety
    /// No two tasks may write the same index concurrently.
    pub unsafe fn write(&self, i: usize, v: f32, accumulate: bool) {
        assert!(i < self.1);
        let p = self.0.add(i);
        if accumulate {
            *p += v;
        } else {
            *p = v;
        }
    }
}
