//! Where each element's state lives: blocked, slot-major buffers.
//!
//! A tensor of `len` elements with `n` state slots keeps its state in one buffer of
//! `len · n` values, cut into blocks of [`CHUNK`] elements (the last one shorter). Within a
//! block the slots follow one another: the block's `exp_avg_sq` values, then its `z` values,
//! and so on. Each slot of a block is thus one contiguous run that the vector kernel reads
//! and writes with full-width loads, while a block's state stays one contiguous piece of
//! memory that a thread owns alone (the parallel split is per block). The saved format is
//! per slot and does not see this layout.

use super::CHUNK;

/// Most state slots (learner + conversion) one element may have.
pub(crate) const MAX_SLOTS: usize = 8;

/// The layout of one tensor's state: `len` elements, `n` slots each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotLayout {
    pub len: usize,
    pub n: usize,
}

impl SlotLayout {
    /// Offset of slot `j` of element `i`.
    #[inline]
    pub fn index(&self, i: usize, j: usize) -> usize {
        let start = i - i % CHUNK;
        let block_len = CHUNK.min(self.len - start);
        start * self.n + j * block_len + (i - start)
    }

    /// Slot `j`'s values in element order, as contiguous runs (one per block).
    pub fn runs<'a, T>(&self, st: &'a [T], j: usize) -> impl Iterator<Item = &'a [T]> + 'a {
        let n = self.n;
        st.chunks(CHUNK * n.max(1)).map(move |b| {
            let bl = b.len() / n;
            &b[j * bl..(j + 1) * bl]
        })
    }

    /// Call `f(i, slots)` for every element `i` in order with its `n` slot values (gathered
    /// into a small array, so `slots` is contiguous).
    pub fn for_each<T: Copy + Default>(&self, st: &[T], mut f: impl FnMut(usize, &[T])) {
        let n = self.n;
        let mut s = [T::default(); MAX_SLOTS];
        if n == 0 {
            (0..self.len).for_each(|i| f(i, &[]));
            return;
        }
        for (b, blk) in st.chunks(CHUNK * n).enumerate() {
            let bl = blk.len() / n;
            for k in 0..bl {
                for (j, v) in s[..n].iter_mut().enumerate() {
                    *v = blk[j * bl + k];
                }
                f(b * CHUNK + k, &s[..n]);
            }
        }
    }

    /// As [`SlotLayout::for_each`], writing the slots back after `f`.
    pub fn for_each_mut<T: Copy + Default>(
        &self,
        st: &mut [T],
        mut f: impl FnMut(usize, &mut [T]),
    ) {
        let n = self.n;
        let mut s = [T::default(); MAX_SLOTS];
        if n == 0 {
            (0..self.len).for_each(|i| f(i, &mut []));
            return;
        }
        for (b, blk) in st.chunks_mut(CHUNK * n).enumerate() {
            let bl = blk.len() / n;
            for k in 0..bl {
                for (j, v) in s[..n].iter_mut().enumerate() {
                    *v = blk[j * bl + k];
                }
                f(b * CHUNK + k, &mut s[..n]);
                for (j, v) in s[..n].iter().enumerate() {
                    blk[j * bl + k] = *v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_for_each_order_and_runs() {
        for (len, n) in [
            (0, 2),
            (5, 3),
            (CHUNK, 2),
            (CHUNK + 7, 3),
            (2 * CHUNK + 1, 1),
        ] {
            let l = SlotLayout { len, n };
            let st: Vec<usize> = (0..len * n).collect();
            let mut seen = vec![usize::MAX; len * n];
            l.for_each(&st, |i, s| {
                for (j, v) in s.iter().enumerate() {
                    assert_eq!(*v, l.index(i, j));
                    seen[*v] = 0;
                }
            });
            assert!(seen.iter().all(|v| *v == 0), "every offset visited once");
            for j in 0..n {
                let via_runs: Vec<usize> = l.runs(&st, j).flatten().copied().collect();
                let via_index: Vec<usize> = (0..len).map(|i| l.index(i, j)).collect();
                assert_eq!(via_runs, via_index);
            }
        }
    }
}
