//! # schedulefree-candle
//!
//! [candle](https://github.com/huggingface/candle) 0.11.1 adapter for the `schedulefree`
//! optimizers: [`ScheduleFreeOptimizer`] implements [`candle_nn::Optimizer`] for every core
//! preset ([`PresetConfig`]: Schedule-Free AdamW / SGD / RAdam and the reference forms, plus
//! torch-style AdamW / SGD with a schedule). It owns no optimizer math: each step copies the
//! vars and gradients into host buffers, calls the core, and writes the vars back.
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
//! BatchNorm-style running statistics: as in PyTorch, recompute them at `x` (a few training
//! batches inside the eval guard) before evaluating; the optimizer does not touch them.
//!
//! Parameter names are stable (`VarMap` keys, or `p0000`, ... in the order given) and vars
//! are processed in name order, so saved state never depends on `HashMap` iteration order.
//! candle's CPU random generator cannot be seeded: [`seeded_init`] re-initialises a `VarMap`
//! reproducibly.

mod checkpoint;
mod driver;
mod error;
mod eval_guard;
mod host;
mod init;
mod optimizer;
mod state_file;
mod tensor_file;

pub use checkpoint::{MODEL_FILE, OPTIMIZER_FILE, TRAIN_POINT_FILE};
pub use error::CandleAdapterError;
pub use eval_guard::EvalGuard;
pub use init::seeded_init;
pub use optimizer::ScheduleFreeOptimizer;
pub use schedulefree::PresetConfig;
pub use state_file::{OPTIMIZER_FORMAT, OPTIMIZER_FORMAT_VERSION};
