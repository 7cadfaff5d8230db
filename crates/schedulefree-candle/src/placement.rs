//! [`Placement`]: where the optimizer state lives and the element update runs.

/// Where a [`ScheduleFreeOptimizer`](crate::ScheduleFreeOptimizer) keeps its state and runs
/// the element update. Both paths take the same scalar decisions (the core's: schedules,
/// averaging weights, bias corrections, decay factors, skips on non-finite gradients) and
/// read and write the same state files.
///
/// | path | state | a step moves to the host | measured |
/// | --- | --- | --- | --- |
/// | `Host` | host RAM (the core's fused kernel, one pass over memory) | every var and gradient, and the new values back | faster on the CPU device |
/// | `Device` | candle tensors on each var's device (CPU, CUDA, Metal) | three numbers per var (`‖g‖₁`, `‖g‖₂²`, finiteness); Prodigy two more | for GPU devices |
///
/// On candle's CPU device the device path gives the host path's bits (values, slots, eval
/// points) for every method whose lr does not read the gradient norms; the norms themselves
/// (in [`StepInfo`](schedulefree::StepInfo) and the state's record of the latest step), and
/// with them AdaGrad-Norm's and Polyak's steps, differ by the rounding of sums taken in the
/// vars' dtype on the device against `f64` on the host. A gradient whose squares overflow
/// `f32` gives an infinite `‖g‖₂` there (AdaGrad-Norm and Polyak then refuse the step) where
/// the host's `f64` sum does not. On the CPU the device path runs one candle op, one pass
/// over memory, per node of the element program: slower than the host path's fused kernel.
///
/// Prodigy's pre-pass runs on the device too: each var's terms are summed there (in `f64`;
/// in the vars' dtype on Metal, which lacks `f64`) and read back together, two numbers per
/// var; the sums differ from the host's by the order of summation, and Prodigy's `d` with
/// them, by rounding.
///
/// Not covered by the device path (element programs cannot express it yet): the hypersphere
/// projection of `normalized` vars (a reduction over rows); norm diagnostics are not
/// measured there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// The device path when a var is not on the CPU and the preset is covered; otherwise the
    /// host path. What the constructors choose.
    #[default]
    Auto,
    /// Host buffers and the core's fused CPU kernel: each step copies the vars and gradients
    /// to the host and the new values back.
    Host,
    /// State as tensors on each var's device, the update as candle tensor ops there.
    Device,
}
