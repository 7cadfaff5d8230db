//! # schedulefree
//!
//! Theory-driven optimizers for deep learning over plain `f32` / `f64` buffers: a base
//! online learner makes steps `z`, an online-to-batch conversion turns them into the point
//! we return, a weight-decay policy and an lr schedule complete the method:
//!
//! ```text
//! base online learner  --z-steps-->  online-to-batch conversion  --> the point we return
//!   (Sgd, Adam, RAdam,                (LastIterate + schedule, WeightedLastIterate,
//!    AdaGradNorm, Cocob,               PolyakAverage, Ema, PrimalAverage,
//!    Polyak, Prodigy,                  ScheduleFree{beta, r, weight_lr_power,
//!    PolyakL1<Adam>)                   decoupling_c, anneal, c_warmup})
//!                  + weight-decay policy (NoDecay, L2, DecoupledAtY, Decoupled,
//!                    SquaredLrAtY, and for
//!                    parameters tagged `normalized`: Corrected (AdamC/SGDC), Projected)
//!                  + learning-rate schedule (pure function of the step)
//! ```
//!
//! ScheduleFree+ ([`ScheduleFreePlus`], arXiv 2605.19095) is `PolyakL1<Adam>` + annealed
//! `ScheduleFree` + `SquaredLrAtY`: a learning-rate-free Polyak step inside Schedule-Free.
//!
//! Global quantities (gradient norms, the loss for Polyak steps, Prodigy's sums) are reduced
//! once per step by the driver, with an all-reduce hook for sharded parameters
//! ([`StepInputs`]); per-parameter norm diagnostics ([`ParamDiagnostics`]) show the
//! weight-decay equilibrium `‖g‖/‖x‖ = sqrt(2λ/γ)` of normalized layers
//! (Van Laarhoven, arXiv 1706.05350; AdamC, arXiv 2506.02285v2).
//! [`composed::Composed`] crosses any learner, conversion and decay policy at run time.
//!
//! Schedule-Free learning (Defazio et al., arXiv 2405.15682): `y = (1 − β)z + βx`,
//! `z ← z − γ∇f(y)`, `x ←` weighted running mean of `z`; the parameter buffer holds `y`
//! while training and `x` is returned.
//!
//! ```
//! use schedulefree::{AdamWScheduleFree, Param};
//!
//! // Minimise f(w) = ½‖w − a‖² with Schedule-Free AdamW.
//! let a = [1.0_f32, -2.0, 0.5];
//! let mut opt = AdamWScheduleFree { lr: 0.1, warmup_steps: 10, ..Default::default() }
//!     .build::<f32>()
//!     .expect("valid hyperparameters");
//! opt.add_param("w", &[3]).expect("new name");
//! let mut w = vec![0.0_f32; 3];
//! let mut g = vec![0.0_f32; 3];
//! for _ in 0..500 {
//!     for i in 0..3 { g[i] = w[i] - a[i]; }          // gradient at y
//!     opt.step(&mut [Param::new("w", &mut w, &g)]).expect("train mode");
//! }
//! opt.eval(&mut [Param::no_grad("w", &mut w)]).expect("all params passed"); // w now holds x
//! assert!(w.iter().zip(a).all(|(w, a)| (w - a).abs() < 1e-2));
//! opt.train(&mut [Param::no_grad("w", &mut w)]).expect("back to y");
//! ```
//!
//! ## Gradient accumulation
//!
//! One call to `step` is one optimizer update: it advances the step counter, the schedule
//! and the averaging weights even when no gradient is passed. To accumulate over
//! micro-batches, add their gradients into your own buffer and step once per update:
//!
//! ```
//! use schedulefree::{AdamWScheduleFree, Param};
//!
//! let mut opt = AdamWScheduleFree::default().build::<f32>().expect("valid hyperparameters");
//! opt.add_param("w", &[2]).expect("new name");
//! let mut w = vec![0.0_f32; 2];
//! let micro_batches: [[f32; 2]; 4] = [[1.0, 2.0], [3.0, -2.0], [-1.0, 0.5], [1.0, 0.5]];
//! let mut grad = vec![0.0_f32; 2];
//! for (i, g) in micro_batches.iter().enumerate() {
//!     for (acc, v) in grad.iter_mut().zip(g) {
//!         *acc += v / micro_batches.len() as f32; // mean over micro-batches
//!     }
//!     if (i + 1) % micro_batches.len() == 0 {
//!         opt.step(&mut [Param::new("w", &mut w, &grad)]).expect("train mode");
//!         grad.fill(0.0);
//!     }
//! }
//! assert_eq!(opt.step_count(), 1);
//! ```
//!
//! ## Reading the state
//!
//! [`Optimizer::x_into`] and [`Optimizer::z_into`] write the returned point `x` and the
//! learner's iterate `z` into a caller's buffer; [`Optimizer::slot`] borrows any state slot
//! (`"z"`, `"exp_avg_sq"`) without copying; [`Optimizer::next_step`] gives the lr and
//! averaging weight the next step will use; [`GroupStepInfo::skipped_steps`] counts steps
//! skipped for a non-finite gradient or loss.

pub mod conversion;
pub mod decay;
mod driver;
mod element;
mod error;
mod kernel;
pub mod learner;
mod param;
pub mod presets;
pub mod program;
pub mod reference;
mod runtime;
pub mod schedule;
pub mod tags;

pub use driver::{
    AllReduce, EvalGuard, ExternalParam, GradientSums, GroupRecord, NextStep, NonFinitePolicy,
    Optimizer, OptimizerState, ParamDiagnostics, ParamProgram, ParamRecord, PrepassEval,
    PrepassProgram, ProgramStep, STATE_FORMAT_VERSION, Skipped, SlotView, StepInfo, StepInputs,
    write_atomic,
};
pub use element::{Dtype, Element, lerp};
pub use error::{ConfigError, ParamError, StateError, StepError};
pub use param::{GroupConfig, GroupStepInfo, Param, ParamTags};
pub use presets::{
    AdamC, AdamW, AdamWScheduleFree, AdamWScheduleFreePaper, AdamWScheduleFreeReference,
    RAdamScheduleFree, ScheduleFreePlus, ScheduleFreeWrapper, SgdC, SgdScheduleFree,
    SgdScheduleFreeReference, TorchSgd,
};
pub use runtime::composed;
pub use runtime::{DynOptimizer, PresetConfig};
