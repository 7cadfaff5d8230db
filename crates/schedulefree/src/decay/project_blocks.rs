//! The hypersphere projection done block by block, right after the update of each block and
//! while it is still in cache, for tensors whose rows are contiguous (every dimension before
//! the row axis has size 1: `[out, in]` and `[out, in, kh, kw]` along axis 0, and vectors).
//! Rows that a block edge cuts are finished after every block is updated.
//!
//! A row's norm² is the sum, in element order, of its pieces' sums (a piece is the part of the
//! row inside one block of [`crate::kernel::CHUNK`] elements); each piece is summed in 16
//! interleaved `f64` partial sums, added in order. A piece of at most 16 elements is thus
//! summed element by element, as [`super::project_rows`] does.

use crate::conversion::Conversion;
use crate::element::Element;
use crate::kernel::{CHUNK, Isa, MAX_SLOTS, SlotLayout};

/// Partial sums per piece.
const LANES: usize = 16;

/// Norm² sums of the pieces at a block's two edges whose rows continue into a neighbouring
/// block (0 where the edge row lies wholly in the block).
pub(crate) type EdgeSums = [f64; 2];

/// The projection of one tensor with contiguous rows of `inner` elements, after an update
/// with conversion scalars `sc`.
pub(crate) struct BlockProjection<'a, C: Conversion> {
    pub(crate) conversion: &'a C,
    pub(crate) sc: &'a C::Scalars,
    pub(crate) inner: usize,
    pub(crate) radius: &'a [f64],
    pub(crate) n_learner: usize,
}

/// The conversion's slots of one block: its runs, one per slot.
struct Slots<'s, T> {
    runs: [&'s mut [T]; MAX_SLOTS],
}

impl<T: Element> Slots<'_, T> {
    #[inline(always)]
    fn get<C: Conversion>(&self, k: usize) -> [T; MAX_SLOTS] {
        let mut e = [T::zero(); MAX_SLOTS];
        for (v, r) in e.iter_mut().zip(&self.runs).take(C::SLOTS) {
            *v = r[k];
        }
        e
    }
    #[inline(always)]
    fn put<C: Conversion>(&mut self, k: usize, e: &[T; MAX_SLOTS]) {
        for (v, r) in e.iter().zip(&mut self.runs).take(C::SLOTS) {
            r[k] = *v;
        }
    }
}

/// Rows cut by a block edge: whether the block's first and last piece continue elsewhere.
fn cut(start: usize, len: usize, inner: usize) -> (usize, usize, bool, bool) {
    let (r_first, r_last) = (start / inner, (start + len - 1) / inner);
    let first_cut = !start.is_multiple_of(inner) || (r_first + 1) * inner > start + len;
    let last_cut = !(start + len).is_multiple_of(inner) || r_last * inner < start;
    (r_first, r_last, first_cut, last_cut)
}

impl<C: Conversion> BlockProjection<'_, C> {
    /// The conversion's slot runs of a block of `len` elements with state `st`.
    fn slots<'s, T>(&self, st: &'s mut [T], len: usize) -> Slots<'s, T> {
        let mut runs: [&mut [T]; MAX_SLOTS] = Default::default();
        let mut rest = &mut st[self.n_learner * len..];
        for r in runs.iter_mut().take(C::SLOTS) {
            let (a, b) = std::mem::take(&mut rest).split_at_mut(len);
            *r = a;
            rest = b;
        }
        Slots { runs }
    }

    /// `Σ z²` of elements `k0..k1` of a block (16 partial sums, added in order).
    #[inline(always)]
    fn piece_sum<T: Element>(&self, p: &[T], s: &Slots<'_, T>, k0: usize, k1: usize) -> f64 {
        let mut part = [0.0_f64; LANES];
        let mut k = k0;
        while k + LANES <= k1 {
            for (l, acc) in part.iter_mut().enumerate() {
                let z = self.conversion.iterate(p[k + l], &s.get::<C>(k + l)).f64();
                *acc += z * z;
            }
            k += LANES;
        }
        for (l, acc) in part.iter_mut().enumerate().take(k1 - k) {
            let z = self.conversion.iterate(p[k + l], &s.get::<C>(k + l)).f64();
            *acc += z * z;
        }
        part.iter().fold(0.0, |a, v| a + v)
    }

    /// Move elements `k0..k1` of a block to `z·r / max(sqrt(sq), tiny)`.
    #[inline(always)]
    fn scale<T: Element>(
        &self,
        p: &mut [T],
        s: &mut Slots<'_, T>,
        k0: usize,
        k1: usize,
        sq: f64,
        r: f64,
    ) {
        let f = r / sq.sqrt().max(f64::MIN_POSITIVE);
        for (k, p) in (k0..k1).zip(&mut p[k0..k1]) {
            let mut e = s.get::<C>(k);
            let z = self.conversion.iterate(*p, &e);
            let z_new = T::of(z.f64() * f);
            self.conversion.set_iterate(self.sc, p, &mut e, z_new);
            s.put::<C>(k, &e);
        }
    }

    /// Project every row that lies wholly in the block of elements `start..start + p.len()`
    /// (state `st`, [`SlotLayout`]); return the sums of its edge pieces whose rows continue
    /// in a neighbouring block. Compiled for the widest instruction set the CPU has (the same
    /// bits on each, as the update kernel).
    #[allow(unsafe_code)]
    pub(crate) fn block<T: Element>(&self, start: usize, p: &mut [T], st: &mut [T]) -> EdgeSums {
        match Isa::detect() {
            // SAFETY: `Isa::detect` returns these only where the CPU has the features.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { self.block_avx512(start, p, st) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { self.block_avx2(start, p, st) },
            Isa::Generic => self.block_on(start, p, st),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn block_avx512<T: Element>(&self, start: usize, p: &mut [T], st: &mut [T]) -> EdgeSums {
        self.block_on(start, p, st)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn block_avx2<T: Element>(&self, start: usize, p: &mut [T], st: &mut [T]) -> EdgeSums {
        self.block_on(start, p, st)
    }

    #[inline(always)]
    fn block_on<T: Element>(&self, start: usize, p: &mut [T], st: &mut [T]) -> EdgeSums {
        let (len, inner) = (p.len(), self.inner);
        let mut s = self.slots(st, len);
        if inner == 1 {
            // One element per row: its norm is |z|.
            for k in 0..len {
                let z = self.conversion.iterate(p[k], &s.get::<C>(k)).f64();
                self.scale(p, &mut s, k, k + 1, z * z, self.radius[start + k]);
            }
            return [0.0; 2];
        }
        let (r_first, r_last, first_cut, last_cut) = cut(start, len, inner);
        let mut edges = [0.0; 2];
        for r in r_first..=r_last {
            let k0 = (r * inner).max(start) - start;
            let k1 = ((r + 1) * inner).min(start + len) - start;
            let sq = self.piece_sum(p, &s, k0, k1);
            if r == r_first && first_cut {
                edges[0] = sq;
            } else if r == r_last && last_cut {
                edges[1] = sq;
            } else {
                self.scale(p, &mut s, k0, k1, sq, self.radius[r]);
            }
        }
        edges
    }

    /// Finish the rows cut by block edges, given every block's [`BlockProjection::block`]
    /// result in order. `acc` holds one value per row (overwritten).
    pub(crate) fn edges<T: Element>(
        &self,
        p: &mut [T],
        st: &mut [T],
        layout: SlotLayout,
        edges: impl IntoIterator<Item = EdgeSums>,
        acc: &mut [f64],
    ) {
        let inner = self.inner;
        if inner == 1 || p.len() <= CHUNK || (inner <= CHUNK && CHUNK.is_multiple_of(inner)) {
            // No block edge cuts a row.
            return;
        }
        // Block `b` starts at element `b·CHUNK`; its state is `CHUNK·n` values.
        let n = p.len();
        let blocks = || (0..n.div_ceil(CHUNK)).map(|b| (b * CHUNK, CHUNK.min(n - b * CHUNK)));
        // The pieces of each cut row, added in block order.
        for (start, len) in blocks() {
            let (r_first, r_last, first_cut, last_cut) = cut(start, len, inner);
            for (r, is_cut) in [(r_first, first_cut), (r_last, last_cut)] {
                if is_cut {
                    acc[r] = 0.0;
                }
            }
        }
        for ((start, len), e) in blocks().zip(edges) {
            let (r_first, r_last, first_cut, last_cut) = cut(start, len, inner);
            if first_cut {
                acc[r_first] += e[0];
            }
            if last_cut && r_last != r_first {
                acc[r_last] += e[1];
            }
        }
        let mut st_blocks = st.chunks_mut((CHUNK * layout.n).max(1));
        for (start, len) in blocks() {
            let st: &mut [T] = if layout.n == 0 {
                &mut []
            } else {
                st_blocks.next().expect("state sized with the tensor")
            };
            let (r_first, r_last, first_cut, last_cut) = cut(start, len, inner);
            let p = &mut p[start..start + len];
            let mut s = self.slots(st, len);
            for (r, is_cut) in [
                (r_first, first_cut),
                (r_last, last_cut && r_last != r_first),
            ] {
                if is_cut {
                    let k0 = (r * inner).max(start) - start;
                    let k1 = ((r + 1) * inner).min(start + len) - start;
                    self.scale(p, &mut s, k0, k1, acc[r], self.radius[r]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversion::{AveragingState, LastIterate, ScheduleFree};
    use crate::decay::project_rows;

    /// Project one tensor both ways; return the largest difference of the values and the state
    /// in units of the format's epsilon (all values are of order 1), 0 when the bits agree.
    fn compare<T: Element, C: Conversion>(
        c: &C,
        n_learner: usize,
        rows: usize,
        inner: usize,
    ) -> u64 {
        let len = rows * inner;
        let layout = SlotLayout {
            len,
            n: n_learner + C::SLOTS,
        };
        let mut avg = AveragingState::default();
        c.scalars(&mut avg, 0.1, 0);
        let (sc, _) = c.scalars(&mut avg, 0.1, 1);
        let v = |i: usize, s: usize| T::of(((i * 7919 + s) % 2003) as f64 / 1001.0 - 1.0);
        let p0: Vec<T> = (0..len).map(|i| v(i, 0)).collect();
        let st0: Vec<T> = (0..len * layout.n).map(|i| v(i, 17)).collect();
        let radius: Vec<f64> = (0..rows).map(|r| 0.5 + (r % 7) as f64 * 0.25).collect();
        let mut scratch = vec![0.0; rows];
        let (mut pa, mut sta) = (p0.clone(), st0.clone());
        project_rows(
            c,
            &sc,
            (rows, inner),
            &radius,
            &mut pa,
            &mut sta,
            (n_learner, layout),
            &mut scratch,
        );
        let bp = BlockProjection {
            conversion: c,
            sc: &sc,
            inner,
            radius: &radius,
            n_learner,
        };
        let (mut pb, mut stb) = (p0, st0);
        let mut edges = Vec::new();
        let mut st_blocks = stb.chunks_mut((CHUNK * layout.n).max(1));
        for (b, p) in pb.chunks_mut(CHUNK).enumerate() {
            let st: &mut [T] = if layout.n == 0 {
                &mut []
            } else {
                st_blocks.next().expect("sized")
            };
            edges.push(bp.block(b * CHUNK, p, st));
        }
        bp.edges(&mut pb, &mut stb, layout, edges, &mut scratch);
        let eps = if T::DTYPE == crate::element::Dtype::F32 {
            f64::from(f32::EPSILON)
        } else {
            f64::EPSILON
        };
        let ulps = |a: &[T], b: &[T]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| ((x.f64() - y.f64()).abs() / eps).ceil() as u64)
                .max()
                .unwrap_or(0)
        };
        ulps(&pa, &pb).max(ulps(&sta, &stb))
    }

    #[test]
    fn blocks_agree_with_the_whole_tensor_pass() {
        let shapes = [
            (5, 1),
            (CHUNK + 3, 1),
            (3, 7),
            (10, 15),
            (4, 16),
            (7, 33),
            (2000, 50),
            (3, CHUNK - 5),
            (2, CHUNK + 100),
            (1, 3 * CHUNK + 7),
            (CHUNK / 3 + 1, 3),
            (CHUNK / 4 + 5, 4),
        ];
        for (rows, inner) in shapes {
            // Rows of at most 16 elements are summed element by element both ways; longer
            // ones, and short ones cut by a block edge, in another order, which moves a row's norm by a few ε (a wrong piece
            // would move it by ~1e-2, i.e. ~1e13 ε).
            // A short row cut by a block edge is summed per piece (`a + (b + c)`).
            let uncut = rows * inner <= CHUNK || CHUNK.is_multiple_of(inner);
            let tolerance = if inner <= LANES && uncut { 0 } else { 64 };
            let what = format!("{rows}×{inner}");
            assert!(
                compare::<f32, _>(&ScheduleFree::default(), 2, rows, inner) <= tolerance,
                "SF f32 {what}"
            );
            let d = compare::<f64, _>(&ScheduleFree::default(), 1, rows, inner);
            assert!(d <= tolerance, "SF f64 {what}: {d}");
            assert!(
                compare::<f32, _>(&LastIterate, 0, rows, inner) <= tolerance,
                "last f32 {what}"
            );
            assert!(
                compare::<f32, _>(&LastIterate, 1, rows, inner) <= tolerance,
                "last f32 {what}"
            );
        }
    }

    /// Through the update kernel on a tensor long enough to be split across threads: the
    /// per-block projection and the edge pass after it agree with the update followed by the
    /// two-pass projection.
    #[test]
    fn in_the_parallel_update_as_after_it() {
        use crate::decay::DecayTerms;
        use crate::kernel::{BlockSums, Kernel, PARALLEL_MIN_LEN};
        use crate::learner::{Adam, GroupState, Learner, StepIndex};

        let (rows, inner) = (PARALLEL_MIN_LEN / 50 + 3, 50);
        let len = rows * inner;
        let (l, c) = (Adam::default(), ScheduleFree::default());
        let n_learner = l.slot_names().len();
        let layout = SlotLayout {
            len,
            n: n_learner + 1,
        };
        let mut avg = AveragingState::default();
        let (cs, _) = c.scalars(&mut avg, 0.1, 0);
        let kernel = Kernel {
            learner: &l,
            conversion: &c,
            ls: l.scalars(
                StepIndex { group: 0, param: 0 },
                0.1,
                &GroupState::default(),
            ),
            cs,
            decay: DecayTerms::of(crate::decay::DecayScalars::NONE),
            lr: 0.1_f32,
            n_learner,
        };
        let v = |i: usize, s: usize| ((i * 7919 + s) % 2003) as f32 / 1001.0 - 1.0;
        let g: Vec<f32> = (0..len).map(|i| v(i, 5)).collect();
        let p0: Vec<f32> = (0..len).map(|i| v(i, 0)).collect();
        let st0: Vec<f32> = (0..len * layout.n).map(|i| v(i, 17).abs()).collect();
        let radius: Vec<f64> = (0..rows).map(|r| 0.5 + (r % 7) as f64 * 0.25).collect();
        let mut chunks = vec![BlockSums::default(); len.div_ceil(CHUNK)];
        let mut scratch = vec![0.0; rows];

        let (mut pa, mut sta) = (p0.clone(), st0.clone());
        kernel.run(&mut pa, &g, &mut sta, &mut chunks, (false, false), None);
        let rows_inner = (rows, inner);
        project_rows(
            &c,
            &cs,
            rows_inner,
            &radius,
            &mut pa,
            &mut sta,
            (n_learner, layout),
            &mut scratch,
        );

        let bp = BlockProjection {
            conversion: &c,
            sc: &cs,
            inner,
            radius: &radius,
            n_learner,
        };
        let after = |start: usize, p: &mut [f32], st: &mut [f32]| bp.block(start, p, st);
        let (mut pb, mut stb) = (p0, st0);
        kernel.run(
            &mut pb,
            &g,
            &mut stb,
            &mut chunks,
            (false, false),
            Some(&after),
        );
        bp.edges(
            &mut pb,
            &mut stb,
            layout,
            chunks.iter().map(|c| c.after),
            &mut scratch,
        );

        let worst = pa
            .iter()
            .zip(&pb)
            .chain(sta.iter().zip(&stb))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0_f32, f32::max);
        assert!(worst <= 64.0 * f32::EPSILON, "{worst:e}");
        assert_ne!(pb, pb.iter().map(|_| 0.0).collect::<Vec<f32>>());
    }
}
