//! The per-element kernels the driver runs over parameter memory: the gradient reduction
//! (norms and the non-finite check), the learner's pre-pass and the fused update. Each splits
//! tensors of at least [`PARALLEL_MIN_LEN`] elements into [`CHUNK`]s across threads and adds
//! per-chunk results in order, so the parallel and serial paths give the same bits.

mod dispatch;
mod fused;
mod isa;
mod layout;
mod prepass;
mod reduce;
#[cfg(test)]
mod tests;

pub(crate) use fused::{After, Kernel};
pub(crate) use isa::Isa;
pub(crate) use layout::{MAX_SLOTS, SlotLayout};
pub(crate) use prepass::{Prepass, PrepassSums};
pub(crate) use reduce::{BlockSums, GradSums, grad_sums};

/// Tensors at least this long are split across threads with rayon.
pub(crate) const PARALLEL_MIN_LEN: usize = 1 << 17;
/// Elements per parallel chunk.
pub(crate) const CHUNK: usize = 1 << 14;
