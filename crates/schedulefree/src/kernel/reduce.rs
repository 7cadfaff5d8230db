//! The gradient reduction kernel: `Σ|g|`, `Σg²` and the finiteness check in one pass.

use rayon::prelude::*;

use super::isa::Isa;
use super::{CHUNK, PARALLEL_MIN_LEN};
use crate::element::Element;

/// Gradient sums of one reduction: `Σ|g|` and `Σg²`, accumulated in `f64`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct GradSums {
    pub(crate) l1: f64,
    pub(crate) l2_sq: f64,
}

/// What one block of a tensor (or a whole tensor, once added up) contributes to a step's
/// reductions: the gradient sums, whether every gradient value was finite, and `Σu²` of the
/// learner's directions (diagnostics).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BlockSums {
    pub(crate) grad: GradSums,
    pub(crate) finite: bool,
    pub(crate) u_sq: f64,
    /// What the caller's follow-up on the block returned ([`crate::kernel::Kernel::run`]);
    /// not added by [`BlockSums::then`].
    pub(crate) after: [f64; 2],
}

impl Default for BlockSums {
    fn default() -> Self {
        BlockSums {
            grad: GradSums::default(),
            finite: true,
            u_sq: 0.0,
            after: [0.0; 2],
        }
    }
}

impl BlockSums {
    /// `self` then `b`, added in this order (the order fixes the bits).
    #[inline]
    pub(crate) fn then(self, b: &BlockSums) -> BlockSums {
        BlockSums {
            grad: GradSums {
                l1: self.grad.l1 + b.grad.l1,
                l2_sq: self.grad.l2_sq + b.grad.l2_sq,
            },
            finite: self.finite && b.finite,
            u_sq: self.u_sq + b.u_sq,
            after: [0.0; 2],
        }
    }
}

/// `Σ|g|` and `Σg²` of `g` in `f64`, and whether every value is finite, in one pass. The sums
/// are taken per [`CHUNK`] ([`LANES`] independent partial sums, so the compiler vectorises
/// them) and the chunk sums are added in order, so the parallel and serial paths give the same
/// bits (and the same as the fused update's [`crate::kernel::Kernel::run`] taking them on the
/// way). Chunks are read two at a time, in lockstep ([`chunk_pair`]). `chunks` must hold
/// `len.div_ceil(CHUNK)` entries.
pub(crate) fn grad_sums<T: Element>(g: &[T], chunks: &mut [BlockSums]) -> (GradSums, bool) {
    let isa = Isa::detect();
    let sums = &mut chunks[..g.len().div_ceil(CHUNK)];
    let pair = |c: &[T], out: &mut [BlockSums]| {
        let block = |(grad, finite)| BlockSums {
            grad,
            finite,
            ..BlockSums::default()
        };
        if c.len() == 2 * CHUNK {
            let [a, b] = pair_isa(isa, c.split_at(CHUNK));
            (out[0], out[1]) = (block(a), block(b));
        } else {
            for (c, o) in c.chunks(CHUNK).zip(out) {
                *o = block(chunk_isa(isa, c));
            }
        }
    };
    if g.len() >= PARALLEL_MIN_LEN {
        g.par_chunks(2 * CHUNK)
            .zip(sums.par_chunks_mut(2))
            .for_each(|(c, s)| pair(c, s));
    } else {
        for (c, s) in g.chunks(2 * CHUNK).zip(sums.chunks_mut(2)) {
            pair(c, s);
        }
    }
    let total = sums.iter().fold(BlockSums::default(), BlockSums::then);
    (total.grad, total.finite)
}

/// Independent partial sums per chunk: enough f64 accumulators (four AVX-512 registers) to
/// hide the latency of vector addition.
const LANES: usize = 32;

/// One chunk's running sums: lane `k` adds elements `k, k + LANES, …` in order.
#[derive(Clone, Copy)]
struct Acc<T> {
    l1: [f64; LANES],
    l2: [f64; LANES],
    /// `Σ(v − v)`: 0 while every value is finite, NaN after a ±inf/NaN. Branch-free, and
    /// exact even where the f64 sums overflow (huge finite f64 gradients).
    nf: [T; LANES],
}

impl<T: Element> Acc<T> {
    #[inline(always)]
    fn new() -> Self {
        Acc {
            l1: [0.0; LANES],
            l2: [0.0; LANES],
            nf: [T::zero(); LANES],
        }
    }

    // `v − v` is the finiteness test, not a mistake; one index over the four arrays keeps
    // lane k of each in step, which is what the vectoriser needs.
    #[allow(clippy::eq_op, clippy::needless_range_loop)]
    #[inline(always)]
    fn add(&mut self, l: &[T; LANES]) {
        for k in 0..LANES {
            let w = l[k].f64();
            self.l1[k] += w.abs();
            self.l2[k] += w * w;
            self.nf[k] = self.nf[k] + (l[k] - l[k]);
        }
    }

    /// The chunk's sums, with `rest` (its last `len % LANES` values) added first.
    #[allow(clippy::eq_op)]
    #[inline(always)]
    fn finish(&self, rest: &[T]) -> (GradSums, bool) {
        let mut tail = (GradSums::default(), T::zero());
        for &v in rest {
            let w = v.f64();
            tail = (
                GradSums {
                    l1: tail.0.l1 + w.abs(),
                    l2_sq: tail.0.l2_sq + w * w,
                },
                tail.1 + (v - v),
            );
        }
        let sums = GradSums {
            l1: self.l1.iter().fold(tail.0.l1, |s, &a| s + a),
            l2_sq: self.l2.iter().fold(tail.0.l2_sq, |s, &a| s + a),
        };
        (
            sums,
            self.nf.iter().fold(tail.1, |s, &a| s + a) == T::zero(),
        )
    }
}

/// The sums of one chunk (at most [`CHUNK`] values).
#[inline(always)]
pub(super) fn chunk<T: Element>(c: &[T]) -> (GradSums, bool) {
    let mut acc = Acc::new();
    let (lanes, rest) = c.as_chunks::<LANES>();
    for l in lanes {
        acc.add(l);
    }
    acc.finish(rest)
}

/// [`chunk`] of `a` and of `b` (of equal length), read in lockstep: two streams of reads keep
/// more requests in flight than one, and a single stream ran at about half the memory
/// bandwidth on one core (measured on a 2-core AMD EPYC). Each chunk's sums have the bits
/// [`chunk`] gives it.
#[inline(always)]
fn chunk_pair<T: Element>(a: &[T], b: &[T]) -> [(GradSums, bool); 2] {
    debug_assert_eq!(a.len(), b.len());
    let (mut x, mut y) = (Acc::new(), Acc::new());
    let (la, ra) = a.as_chunks::<LANES>();
    let (lb, rb) = b.as_chunks::<LANES>();
    for (l, m) in la.iter().zip(lb) {
        x.add(l);
        y.add(m);
    }
    [x.finish(ra), y.finish(rb)]
}

/// [`chunk`] compiled for `isa` ([`Isa`]: the same bits on every variant).
#[allow(unsafe_code)]
pub(super) fn chunk_isa<T: Element>(isa: Isa, c: &[T]) -> (GradSums, bool) {
    match isa {
        // SAFETY: `Isa::detect` returns these only where the CPU has the features.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { chunk_avx512(c) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { chunk_avx2(c) },
        Isa::Generic => chunk(c),
    }
}

/// [`chunk_pair`] compiled for `isa`.
#[allow(unsafe_code)]
pub(super) fn pair_isa<T: Element>(isa: Isa, (a, b): (&[T], &[T])) -> [(GradSums, bool); 2] {
    match isa {
        // SAFETY: `Isa::detect` returns these only where the CPU has the features.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { pair_avx512(a, b) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { pair_avx2(a, b) },
        Isa::Generic => chunk_pair(a, b),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn chunk_avx512<T: Element>(c: &[T]) -> (GradSums, bool) {
    chunk(c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn chunk_avx2<T: Element>(c: &[T]) -> (GradSums, bool) {
    chunk(c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn pair_avx512<T: Element>(a: &[T], b: &[T]) -> [(GradSums, bool); 2] {
    chunk_pair(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn pair_avx2<T: Element>(a: &[T], b: &[T]) -> [(GradSums, bool); 2] {
    chunk_pair(a, b)
}
