//! # schedulefree-burn
//!
//! burn 0.22 adapter for the `schedulefree` optimizers. It owns no optimizer math: the core
//! ([`schedulefree::DynOptimizer`]) takes every decision and holds every formula. Either the
//! adapter copies burn parameters and gradients to host `f32` buffers and runs the core's
//! fused CPU kernel (the host path), or it keeps them on their devices and runs the core's
//! element program as burn tensor ops there ([`schedulefree::Optimizer::step_programs`], the
//! device path); both write results back with their ids, devices, dtypes and autodiff state.
//!
//! Three ways in:
//!
//! | | [`ModelOptimizer`] (module; picks the path) | [`DeviceOptimizer`] (module, device path) | [`TensorOptimizer`] (per tensor, device path) |
//! | --- | --- | --- | --- |
//! | for | every backend: the host path on flex (fastest there), the device path elsewhere ([`Placement::Auto`]) | the device path only | burn's `ModuleOptimizer`, so burn-train's `Learner` unchanged |
//! | plugs into | your loop, or [`TrainLoop`] | your loop, or [`TrainLoop`] | burn's `ModuleOptimizer` |
//! | sees | the whole parameter set at once | the whole parameter set at once | one tensor per call |
//! | per step | host path: copies every parameter and gradient to the host and back; device path: reads three numbers per parameter, together (Prodigy: two more, in a second read) | one device-to-host read of three numbers per parameter, together (Prodigy: two more, in a second read) | one read of three numbers per tensor (a sync each) |
//! | eval point `x` | [`ModelOptimizer::eval_module`] | [`DeviceOptimizer::eval_module`] (on the device) | [`TensorOptimizer::eval_module`] (serializes the states) |
//! | state keyed by | module path (`"layers.0.weight"`) | module path | burn's `ParamId` (not restored by burn on load) |
//! | checkpoints | [`save_checkpoint`] / [`load_checkpoint`]: weights at `x`, bit-exact resume | the same through [`DeviceOptimizer::to_model_optimizer`] / [`DeviceOptimizer::load_from`] | `ModuleOptimizer::save` (same process / same ids) |
//! | methods | every preset (the projection stays on the host path) | all but the projection (a typed error at the first step) | elementwise ones (no AdaGrad-Norm, Polyak, Prodigy) |
//!
//! On flex the host path is as fast as burn's own AdamW and the device paths about twice
//! slower (one pass over memory per program op; see the README's benchmark table), which is
//! why [`Placement::Auto`] keeps flex on the host path. On GPU backends burn's fusion can
//! compile a program's ops into one kernel; no GPU timing has been taken yet.
//!
//! plus [`ScheduleLr`] (a burn `LrScheduler` over the core's schedules) and
//! [`recalibrate_batch_norm`] (batch-norm statistics at `x`).
//!
//! ## Schedule-Free in one paragraph
//!
//! Schedule-Free (Defazio et al., arXiv 2405.15682) computes gradients at `y`, takes steps `z`,
//! and returns `x`, a weighted average of the `z`s; `y = (1 − β)z + βx`. Training holds `y` in
//! the parameters; validation, checkpoints and inference must use `x`. In PyTorch that is the
//! `optimizer.train()` / `optimizer.eval()` switch; here the module you train always holds `y`
//! and `x` is a copy you ask for, so forgetting a switch cannot corrupt training.
//!
//! ## From PyTorch `schedulefree`
//!
//! | PyTorch (`schedulefree` 1.4) | here |
//! | --- | --- |
//! | `opt = AdamWScheduleFree(model.parameters(), lr=2.5e-3, warmup_steps=100)` | `let mut opt = ModelOptimizer::new(PresetConfig::AdamWScheduleFree(AdamWScheduleFree { lr: 2.5e-3, warmup_steps: 100, ..Default::default() }))?;` |
//! | `model.train(); opt.train()` | nothing: the module always holds `y` |
//! | `loss.backward(); opt.step()` | `let grads = GradientsParams::from_grads(loss.backward(), &model); model = opt.step(model, grads)?.0;` |
//! | `model.eval(); opt.eval()` then validate | `let valid = opt.eval_module(&model)?.valid();` (or [`TrainLoop`], which does it) |
//! | BN: `opt.eval()`, `model.train()`, ~50 batches under `no_grad`, `model.eval()` | `let at_x = recalibrate_batch_norm(opt.eval_module(&model)?, batches, \|m, b\| m.forward(b))?.valid();` |
//! | checkpoint: `opt.eval()`, `torch.save({model, opt})`, `opt.train()` | `save_checkpoint(&model, &opt, dir)?` (weights at `x` + state; `model` and `opt` untouched) |
//! | resume: load both, `opt.train()` | `model = load_checkpoint(fresh_model, &mut opt, dir)?;` (bit-exact) |
//! | export for inference: `opt.eval()`, `torch.save(model.state_dict())` | `opt.eval_module(&model)?.save_file(path)` or the checkpoint's [`checkpoint_model_path`] |
//! | `for g in opt.param_groups: g["lr"] = lr` | `opt.set_lr(lr)?` (e.g. from [`ScheduleLr`]) |
//! | `opt.state_dict()` / `load_state_dict` | [`ModelOptimizer::state`] / [`ModelOptimizer::load_state`] (keyed by module path) |
//!
//! With burn's `ModuleOptimizer` (and so burn-train) the switch from burn's AdamW is one line:
//!
//! ```
//! use burn::optim::ModuleOptimizer;
//! use schedulefree::{AdamWScheduleFree, PresetConfig};
//! use schedulefree_burn::TensorOptimizer;
//!
//! // let optim: ModuleOptimizer = burn::optim::AdamWConfig::new().init();
//! let sf = TensorOptimizer::new(PresetConfig::AdamWScheduleFree(AdamWScheduleFree::default()))?;
//! let optim: ModuleOptimizer = sf.clone().into();
//! // ... model = optim.step(lr, model, grads);
//! // validation at x: let valid = sf.eval_module(&optim, &model)?.valid();
//! # Ok::<(), schedulefree_burn::BurnAdapterError>(())
//! ```
//!
//! burn-train's `Learner` validates the module it trains (`y`) and checkpoints burn's
//! `ModuleOptimizer` record; it has no hook to validate at `x`. With burn-train, validate at `x`
//! in your own evaluation (`sf.eval_module(&optim, &model)`), or train with [`ModelOptimizer`].
//! The per-tensor path's step counter is per tensor (see [`TensorOptimizer`]'s deviations).
//!
//! ## A whole training loop
//!
//! ```
//! use burn::nn::{Linear, LinearConfig};
//! use burn::tensor::{Device, Tensor};
//! use schedulefree::{AdamWScheduleFree, PresetConfig};
//! use schedulefree_burn::{ModelOptimizer, TrainLoop};
//!
//! let device = Device::default().autodiff();
//! let model: Linear = LinearConfig::new(2, 1).init(&device);
//! let mut optim = ModelOptimizer::new(PresetConfig::AdamWScheduleFree(AdamWScheduleFree {
//!     lr: 0.05,
//!     warmup_steps: 5,
//!     ..Default::default()
//! }))?;
//! let x = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, -1.0]], &device);
//! let t = Tensor::<2>::from_floats([[1.0], [0.0]], &device);
//! let xv = x.clone().inner(); // validation data, no autodiff
//! let (model, reports) = TrainLoop::new(5).run(
//!     &mut optim,
//!     model,
//!     |_epoch| 0..10,                                                     // 10 steps per epoch
//!     |m: &Linear, _| (m.forward(x.clone()) - t.clone()).powf_scalar(2.0).mean(),
//!     |m: &Linear| m.forward(xv.clone()).into_data(),                     // runs at x
//! )?;
//! assert!(reports.iter().all(|r| r.validated_at_x));
//! # let _ = model;
//! # Ok::<(), schedulefree_burn::BurnAdapterError>(())
//! ```
//!
//! See also `examples/burn_mlp.rs` (iris, burn AdamW vs Schedule-Free AdamW).
//!
//! ## Data parallel
//!
//! [`ModelOptimizer::step_multi`] takes burn's `MultiGradientsParams` (one `GradientsParams` per
//! device, summed per parameter by burn) and `ModuleOptimizer::step_multi` works with
//! [`TensorOptimizer`] unchanged. `tests/suite/data_parallel.rs` checks that two replicas on their own
//! threads, each with half the batch, train exactly like one replica on the whole batch (up to
//! the gradient's summation order). With this build's backend the two replicas share the one
//! CPU device: burn's flex backend has a single device (`FlexDevice` is a unit struct) and the
//! workspace enables no other CPU backend; burn's `MultiGradientsParams` and
//! `ModuleOptimizer::step_multi` are device-agnostic, so the same code runs with two GPUs
//! (`Device::cuda(0)`, `Device::cuda(1)`) once a GPU backend feature is enabled.
//!
//! ## Parameter tags: AdamC, hypersphere projection, no-decay groups
//!
//! Where PyTorch users split `model.named_parameters()` into parameter groups (decay / no
//! decay, `normalized` for AdamC), here one optimizer tags each parameter when it registers,
//! by the [`TagRules`] given to [`ModelOptimizer::with_tag_rules`]: selection by module path
//! (`"blocks.0.fc.weight"`), regex, or burn layer type (the innermost module owning the
//! parameter: `"Linear"`, `"Conv2d"`, `"LayerNorm"`). [`TagRules::standard`] exempts
//! normalization gains/shifts and biases from decay; you name the weights that feed a
//! normalization. [`select_tags`] prints what a rule set selects.
//!
//! ```
//! use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
//! use burn::tensor::Device;
//! use schedulefree::decay::{AnyDecay, DecayConfig, NormalizedPolicy, Projection};
//! use schedulefree::{AdamC, PresetConfig, composed::*, learner::Adam, schedule::ScheduleConfig};
//! use schedulefree_burn::{ModelOptimizer, TagRules, select_tags};
//!
//! #[derive(burn::module::Module, Debug)]
//! struct Net { fc: Linear, ln: LayerNorm, head: Linear }
//! let net = Net {
//!     fc: LinearConfig::new(4, 8).init(&Device::default()),
//!     ln: LayerNormConfig::new(8).init(&Device::default()),
//!     head: LinearConfig::new(8, 2).init(&Device::default()),
//! };
//! let rules = TagRules::standard()                 // no decay: LayerNorm gamma/beta, biases
//!     .normalized_layer_type("Linear", "weight")   // fc feeds the LayerNorm ...
//!     .exclude_path("head");                       // ... the output layer does not
//! for p in select_tags(&net, &rules)? {
//!     println!("{p}"); // fc.weight (Linear) [4, 8]: normalized, fc.bias (Linear) [8]: no_decay, ...
//! }
//! // AdamC (pytorch_optimizer.AdamC): decay λ·γ_t²/γ_max on the normalized weights.
//! let adamc = PresetConfig::AdamC {
//!     config: AdamC { lr: 1e-3, weight_decay: 0.1, ..Default::default() },
//!     schedule: ScheduleConfig::Cosine { warmup: 100, total: 10_000, end: 0.0 },
//! };
//! let optim = ModelOptimizer::new(adamc)?.with_tag_rules(rules.clone());
//! // Or Schedule-Free Adam with the normalized weights kept on their initial spheres. burn's
//! // Linear weight is [d_input, d_output]: output units are columns, so the axis is 1
//! // (PyTorch and candle store [out, in]: axis 0; burn's Conv2d weight [out, in, kh, kw]: 0).
//! let projected = PresetConfig::Composed(Composed {
//!     learner: LearnerConfig::Adam(Adam::default()),
//!     conversion: ConversionConfig::ScheduleFree { beta: 0.9, weights: Default::default(), decoupling_c: 0.0 },
//!     decay: DecayConfig {
//!         base: AnyDecay::Decoupled,
//!         normalized: NormalizedPolicy::Projected(Projection { axis: 1, ..Default::default() }),
//!     },
//!     schedule: ScheduleConfig::Constant {},
//!     lr: 1e-3,
//!     weight_decay: 0.1,
//! });
//! let optim2 = ModelOptimizer::new(projected)?.with_tag_rules(rules);
//! # let _ = (optim, optim2);
//! # Ok::<(), schedulefree_burn::BurnAdapterError>(())
//! ```
//!
//! The tags, the projection radii and the learners' group state (AdaGrad-Norm's `b²`,
//! Prodigy's `d`) are part of the saved state: [`ModelOptimizer::load`],
//! [`ModelOptimizer::load_state`] and [`load_checkpoint`] restore them, whatever rules the
//! loading optimizer was built with. The Polyak learner needs the loss:
//! [`ModelOptimizer::step_with_loss`] (plain `step` returns the core's `LossRequired` error).
//! [`ModelOptimizer::set_diagnostics`] records per-parameter gradient / weight / update norms
//! ([`ModelOptimizer::diagnostics`], by module path) to watch the equilibrium
//! `‖g‖/‖w‖ = sqrt(2λ/γ)` of normalized layers (Van Laarhoven, arXiv 1706.05350; AdamC, arXiv 2506.02285v2).
//!
//! One projection axis serves the whole optimizer: do not tag burn `Linear` (axis 1) and
//! `Conv2d` (axis 0) weights normalized under the same projected optimizer.
//!
//! ## Errors
//!
//! Every fallible call returns [`BurnAdapterError`]: the core's typed errors plus path, shape,
//! file and record errors. Library code does not panic on user input.

mod batch_norm;
mod checkpoint;
mod device;
mod error;
mod model_optimizer;
mod module_params;
mod module_step;
mod placement;
mod schedule_lr;
mod tags;
mod tensor_optimizer;
mod train_loop;

pub use batch_norm::recalibrate_batch_norm;
pub use checkpoint::{
    CHECKPOINT_FILE, CHECKPOINT_VERSION, checkpoint_model_path, load_checkpoint, save_checkpoint,
};
pub use device::DeviceOptimizer;
pub use error::BurnAdapterError;
pub use model_optimizer::{MODEL_OPTIMIZER_FILE_VERSION, ModelOptimizer};
pub use module_step::ModuleStep;
pub use placement::Placement;
pub use schedule_lr::ScheduleLr;
pub use schedulefree::{GroupConfig, PresetConfig};
pub use tags::{NORM_LAYER_TYPES, RegexError, SelectedParam, Selector, TagRules, select_tags};
pub use tensor_optimizer::{TensorOptimizer, TensorState};
pub use train_loop::{EpochReport, TrainLoop};
