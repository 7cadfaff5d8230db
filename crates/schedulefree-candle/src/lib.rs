//! # schedulefree-candle
//!
//! [candle](https://github.com/huggingface/candle) 0.11.1 adapter for the `schedulefree`
//! optimizers: [`ScheduleFreeOptimizer`] implements [`candle_nn::Optimizer`] for every core
//! preset ([`PresetConfig`]: Schedule-Free AdamW / SGD / RAdam and the reference forms,
//! torch-style AdamW / SGD with a schedule, AdamC / SGDC, and any composed learner ×
//! conversion × decay policy, e.g. AdaGrad-Norm, COCOB, Polyak or Prodigy with Schedule-Free
//! averaging and the hypersphere projection). It owns no optimizer math; the core takes every
//! decision, on one of two paths ([`Placement`]):
//!
//! - **host** (the default for CPU vars): each step copies the vars and gradients into host
//!   buffers, runs the core's fused kernel (one pass over memory) and writes the vars back;
//! - **device** (the default when a var lives on a CUDA or Metal device): the state (`z`,
//!   moments) is candle tensors on each var's device, the element update runs there as
//!   candle tensor ops (recorded once from the core's own formulas, not a second copy of the
//!   maths), and a step reads three numbers per var back to the host (`‖g‖₁`, `‖g‖₂²`,
//!   finiteness, for the core's skip decision and norm-based learners; Prodigy two more, its
//!   pre-pass sums), nothing parameter-sized. State files and checkpoints are the same on both paths;
//!   [`ScheduleFreeOptimizer::set_placement`] moves a running optimizer between them.
//!
//! Switching an existing candle loop is one line — the optimizer:
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::{linear, loss, Module, Optimizer, VarBuilder, VarMap};
//! use schedulefree::AdamWScheduleFree;
//! use schedulefree_candle::{seeded_init, PresetConfig, ScheduleFreeOptimizer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dev = Device::Cpu;
//! let varmap = VarMap::new();
//! let model = linear(2, 1, VarBuilder::from_varmap(&varmap, DType::F32, &dev))?;
//! seeded_init(&varmap, 0)?; // reproducible initial weights
//! let xs = Tensor::new(&[[1f32, 2.], [3., -1.], [0., 1.], [-2., 0.5]], &dev)?;
//! let ys = Tensor::new(&[[5f32], [1.], [2.], [-1.]], &dev)?; // y = x0 + 2 x1
//!
//! // was: let mut opt = candle_nn::AdamW::new(varmap.all_vars(), ParamsAdamW { lr: 0.1, ..Default::default() })?;
//! let config = PresetConfig::AdamWScheduleFree(AdamWScheduleFree { lr: 0.1, warmup_steps: 10, ..Default::default() });
//! let mut opt = ScheduleFreeOptimizer::from_varmap(&varmap, config)?;
//! for _ in 0..300 {
//!     let l = loss::mse(&model.forward(&xs)?, &ys)?;
//!     opt.backward_step(&l)?; // gradient at y, as in PyTorch
//! }
//! {
//!     let _x = opt.eval_guard()?; // the model now computes at x
//!     let val = loss::mse(&model.forward(&xs)?, &ys)?.to_scalar::<f32>()?;
//!     assert!(val < 1e-2, "{val}");
//! } // y restored bit for bit; training can continue
//! let dir = std::env::temp_dir().join(format!("sf-candle-doc-{}", std::process::id()));
//! opt.save_checkpoint(&varmap, &dir)?; // model.safetensors at x + optimizer state
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! ## From PyTorch `schedulefree`
//!
//! | PyTorch (`schedulefree` 1.4) | here |
//! | --- | --- |
//! | `opt = schedulefree.AdamWScheduleFree(model.parameters(), lr=...)` | `ScheduleFreeOptimizer::from_varmap(&varmap, PresetConfig::AdamWScheduleFree(AdamWScheduleFree { lr, .. }))` (or [`candle_nn::Optimizer::new`] over `Vec<Var>`) |
//! | `SGDScheduleFree`, `RAdamScheduleFree`, `*Reference`, `AdamWScheduleFreePaper` | the [`PresetConfig`] variant of the same name |
//! | `opt.train()` before training steps | [`ScheduleFreeOptimizer::train`] (idempotent; a step in eval mode is an error saying so) |
//! | `loss.backward(); opt.step(); opt.zero_grad()` | `opt.backward_step(&loss)?` (candle gradients are fresh each backward) |
//! | `opt.eval()` before validation, `opt.train()` after | [`ScheduleFreeOptimizer::eval_guard`]: the vars hold `x` while the guard lives and get `y` back bit for bit on drop (or `eval()` / `train()`, which recompute `y` from `x` and `z` as PyTorch does) |
//! | `opt.eval(); torch.save(model.state_dict()); torch.save(opt.state_dict())` | [`ScheduleFreeOptimizer::save_checkpoint`]: `model.safetensors` at `x` in any mode (loadable by `VarMap::load` for inference), the optimizer state, and `y` when saved in train mode |
//! | `model.load_state_dict(...); opt.load_state_dict(...)` to resume | build the same model and optimizer, then [`ScheduleFreeOptimizer::load_checkpoint`]; the run continues bit for bit |
//! | `opt.param_groups[0]["lr"] = lr` | [`candle_nn::Optimizer::set_learning_rate`] (the peak lr; warmup still applies) |
//! | `opt.state_dict()` | [`ScheduleFreeOptimizer::save`] / [`ScheduleFreeOptimizer::load`] (safetensors: slots `<param>/<slot>`, scalars as JSON metadata), or [`ScheduleFreeOptimizer::state`] |
//!
//! ## Parameter tags: AdamC, hypersphere projection, no-decay groups
//!
//! Where PyTorch users split `named_parameters()` into parameter groups, one optimizer here
//! tags each var by its `VarMap` name when it registers
//! ([`ScheduleFreeOptimizer::from_varmap_tagged`] with [`TagRules`]): exact name, regex, or
//! the standard convention. candle has no layer types at run time (a LayerNorm gain is
//! `ln1.weight` just like a Linear matrix `fc1.weight`), so [`TagRules::standard`] goes by
//! layer names ([`NORM_LAYER_PATTERN`]: `ln1`, `layer_norm`, `bn`, `final_norm`, ...) and var
//! names ([`NO_DECAY_VAR_NAMES`]: `bias`, `beta`, `running_mean`, `running_var`); swap the
//! pattern with [`TagRules::standard_with`]. [`select_tags`] shows what a rule set selects.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::{layer_norm, linear, loss, Module, VarBuilder, VarMap};
//! use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
//! use schedulefree::decay::{AnyDecay, DecayConfig, NormalizedPolicy, Projection};
//! use schedulefree::{learner::Adam, schedule::ScheduleConfig};
//! use schedulefree_candle::{select_tags, PresetConfig, ScheduleFreeOptimizer, TagRules};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let varmap = VarMap::new();
//! let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
//! let (fc, ln, head) = (linear(3, 8, vb.pp("fc"))?, layer_norm(8, 1e-5, vb.pp("ln"))?, linear(8, 1, vb.pp("head"))?);
//! let rules = TagRules::standard()          // no decay: ln.weight, ln.bias, every bias
//!     .normalized_regex(r"\.weight$")?      // weights feed a normalization ...
//!     .exclude_path("head");                // ... except the output layer's
//! for v in select_tags(&varmap, &rules)? {
//!     println!("{v}"); // fc.weight [8, 3]: normalized, ln.weight [8]: no_decay, ...
//! }
//! // Schedule-Free Adam whose normalized weights stay on their initial spheres: candle's
//! // Linear weight is [out, in], so output units are rows, axis 0 (burn: axis 1).
//! let config = PresetConfig::Composed(Composed {
//!     learner: LearnerConfig::Adam(Adam::default()),
//!     conversion: ConversionConfig::ScheduleFree { beta: 0.9, weights: Default::default(), decoupling_c: 0.0 },
//!     decay: DecayConfig {
//!         base: AnyDecay::Decoupled,
//!         normalized: NormalizedPolicy::Projected(Projection { axis: 0, ..Default::default() }),
//!     },
//!     schedule: ScheduleConfig::Constant {},
//!     lr: 1e-2,
//!     weight_decay: 0.1,
//! });
//! let mut opt = ScheduleFreeOptimizer::from_varmap_tagged(&varmap, config, &rules)?;
//! opt.set_diagnostics(true);
//! let xs = Tensor::new(&[[1f32, 2., 0.], [3., -1., 1.]], &Device::Cpu)?;
//! let ys = Tensor::new(&[[1f32], [0.]], &Device::Cpu)?;
//! for _ in 0..5 {
//!     // candle_nn's LayerNorm::forward has no backward pass on contiguous inputs: train
//!     // through the differentiable form.
//!     let h = candle_nn::ops::layer_norm_slow(&fc.forward(&xs)?, ln.weight(), ln.bias().ok_or("bias")?, 1e-5)?;
//!     let pred = head.forward(&h.relu()?)?;
//!     opt.backward_step_with_loss(&loss::mse(&pred, &ys)?)?; // or candle's backward_step
//! }
//! for d in opt.diagnostics() {
//!     println!("{}: |g|/|w| = {:.3}", d.name, d.ratio());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The tags, the projection radii and the learners' group state (AdaGrad-Norm's `b²`,
//! Prodigy's `d`) are part of the optimizer state: [`ScheduleFreeOptimizer::save`] /
//! [`ScheduleFreeOptimizer::load`] and the checkpoints carry them, and a load restores the
//! saved tags whatever rules the loading optimizer was built with. The Polyak learner needs
//! the loss: [`ScheduleFreeOptimizer::backward_step_with_loss`] (or
//! [`ScheduleFreeOptimizer::try_step_with_loss`]); without it a step fails with the core's
//! `StepError::LossRequired`.
//!
//! BatchNorm-style running statistics: as in PyTorch, recompute them at `x` (a few training
//! batches inside the eval guard) before evaluating; the optimizer does not touch them.
//!
//! Parameter names are stable (`VarMap` keys, or `p0000`, ... in the order given) and vars
//! are processed in name order, so saved state never depends on `HashMap` iteration order.
//! candle's CPU random generator cannot be seeded: [`seeded_init`] re-initialises a `VarMap`
//! reproducibly.

mod checkpoint;
mod device;
mod driver;
mod error;
mod eval_guard;
mod host;
mod init;
mod loss_step;
mod optimizer;
mod placement;
mod state_file;
mod tags;
mod tensor_file;

pub use checkpoint::{MODEL_FILE, OPTIMIZER_FILE, TRAIN_POINT_FILE};
pub use error::CandleAdapterError;
pub use eval_guard::EvalGuard;
pub use init::seeded_init;
pub use optimizer::ScheduleFreeOptimizer;
pub use placement::Placement;
pub use schedulefree::PresetConfig;
pub use state_file::{OPTIMIZER_FORMAT, OPTIMIZER_FORMAT_VERSION};
pub use tags::{
    NO_DECAY_VAR_NAMES, NORM_LAYER_PATTERN, RegexError, SelectedVar, Selector, TagRules,
    select_tags,
};
