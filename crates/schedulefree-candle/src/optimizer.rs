//! [`ScheduleFreeOptimizer`]: any core preset behind candle's `Optimizer` trait.

use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use candle_nn::VarMap;
use schedulefree::{
    ConfigError, GroupConfig, OptimizerState, ParamDiagnostics, ParamTags, PresetConfig, StepInfo,
};

use crate::device::{DeviceDriver, check_covered};
use crate::driver::Driver;
use crate::error::CandleAdapterError;
use crate::eval_guard::EvalGuard;
use crate::placement::Placement;
use crate::state_file;
use crate::tags::TagRules;

/// The core optimizer for the vars' element type, on the host or the device path.
#[derive(Debug)]
pub(crate) enum Core {
    F32(Driver<f32>),
    F64(Driver<f64>),
    DeviceF32(DeviceDriver<f32>),
    DeviceF64(DeviceDriver<f64>),
}

/// Run `$body` with `$d` bound to the driver, whatever its element type and path (both
/// drivers have the same methods and the fields `opt` and `entries`).
macro_rules! with_driver {
    ($core:expr, $d:ident => $body:expr) => {
        match $core {
            Core::F32($d) => $body,
            Core::F64($d) => $body,
            Core::DeviceF32($d) => $body,
            Core::DeviceF64($d) => $body,
        }
    };
}

impl Core {
    /// `config`'s optimizer over `vars` (sorted, checked, all of `dtype`) on `placement`'s
    /// path ([`Placement::Auto`] resolved here).
    fn build(
        config: &PresetConfig,
        vars: Vec<(String, Var)>,
        tags: &dyn Fn(&str) -> ParamTags,
        dtype: DType,
        placement: Placement,
    ) -> Result<Self, CandleAdapterError> {
        let f64 = dtype == DType::F64;
        let covered = |vars: &[(String, Var)]| {
            if f64 {
                check_covered::<f64>(config, vars, tags)
            } else {
                check_covered::<f32>(config, vars, tags)
            }
        };
        let device = match placement {
            Placement::Host => false,
            Placement::Device => {
                covered(&vars)?;
                true
            }
            Placement::Auto => {
                vars.iter().any(|(_, v)| !v.device().is_cpu()) && covered(&vars).is_ok()
            }
        };
        Ok(match (device, f64) {
            (false, false) => Core::F32(Driver::new(config, vars, tags)?),
            (false, true) => Core::F64(Driver::new(config, vars, tags)?),
            (true, false) => Core::DeviceF32(DeviceDriver::new(config, vars, tags)?),
            (true, true) => Core::DeviceF64(DeviceDriver::new(config, vars, tags)?),
        })
    }
}
pub(crate) use with_driver;

/// A `candle_nn::Optimizer` running any preset of the `schedulefree` core (Schedule-Free
/// AdamW / SGD / RAdam, torch-style AdamW / SGD with a schedule, AdamC / SGDC, composed
/// methods) on candle `Var`s. Vars can be tagged by name for the decay policies
/// ([`ScheduleFreeOptimizer::from_varmap_tagged`]); learners that need the loss (Polyak)
/// step with [`ScheduleFreeOptimizer::backward_step_with_loss`].
///
/// Each var is registered in the core under a stable name: `p0000`, `p0001`, ... in the
/// order given to [`candle_nn::Optimizer::new`], or its `VarMap` key with
/// [`ScheduleFreeOptimizer::from_varmap`]. Vars are kept sorted by name, so the saved state
/// does not depend on `HashMap` order. All vars must be `f32` or all `f64` (the core's
/// element types); integer vars are skipped, as candle's own optimizers do.
///
/// Two paths ([`Placement`]; the constructors pick the device path when a var is not on the
/// CPU and element programs cover the preset, else the host path):
/// - host: a step copies each var that has a gradient, and its gradient, into host buffers,
///   runs the core's fused step and writes the new values back into the var's storage in
///   place (CPU vars without allocating). Memory: the core's state slots plus two host
///   buffers per var, in host RAM.
/// - device: the state slots are tensors on each var's device; a step reduces each gradient
///   there to `‖g‖₁`, `‖g‖₂²` and a finiteness flag, reads those three numbers per var back
///   at once (one synchronisation; Prodigy's pre-pass sums are a second), lets the core
///   decide the step, and runs each var's
///   element update as candle tensor ops on its device, writing the var in place
///   (`Var::set`). A device error in the middle of a step (out of memory) can leave it partly
///   applied: resume from the last save.
///
/// Schedule-Free presets keep the gradient point `y` in the vars while training; evaluate,
/// export and checkpoint at `x` with [`ScheduleFreeOptimizer::eval_guard`],
/// [`ScheduleFreeOptimizer::eval`] / [`ScheduleFreeOptimizer::train`] or
/// [`ScheduleFreeOptimizer::save_checkpoint`] (crate docs: the PyTorch mapping).
#[derive(Debug)]
pub struct ScheduleFreeOptimizer {
    pub(crate) config: PresetConfig,
    pub(crate) core: Core,
    last: Option<StepInfo>,
    rejected_lr: Option<ConfigError>,
}

impl ScheduleFreeOptimizer {
    /// Build `config`'s optimizer over named vars (any order: they are sorted by name), none
    /// of them tagged (see [`ScheduleFreeOptimizer::from_named_vars_tagged`]).
    ///
    /// # Errors
    /// [`CandleAdapterError::Config`] for invalid hyperparameters,
    /// [`CandleAdapterError::Param`] for a name given twice,
    /// [`CandleAdapterError::DuplicateVar`] for a var given twice,
    /// [`CandleAdapterError::UnsupportedDtype`] / [`CandleAdapterError::MixedDtypes`].
    pub fn from_named_vars(
        vars: impl IntoIterator<Item = (String, Var)>,
        config: PresetConfig,
    ) -> Result<Self, CandleAdapterError> {
        Self::from_named_vars_tagged(vars, config, &TagRules::new())
    }

    /// [`ScheduleFreeOptimizer::from_named_vars`] with every var tagged by `rules` from its
    /// name when it registers: `normalized` vars get the decay policy's corrected decay or
    /// projection, `no_decay` ones no decay ([`crate::select_tags`] previews the selection).
    ///
    /// # Errors
    /// As [`ScheduleFreeOptimizer::from_named_vars`]; [`CandleAdapterError::Param`] if the
    /// decay policy projects along an axis that a `normalized` var does not have.
    pub fn from_named_vars_tagged(
        vars: impl IntoIterator<Item = (String, Var)>,
        config: PresetConfig,
        rules: &TagRules,
    ) -> Result<Self, CandleAdapterError> {
        let mut vars: Vec<(String, Var)> = vars
            .into_iter()
            .filter(|(_, v)| v.dtype().is_float())
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let mut seen = std::collections::HashMap::new();
        let mut dtype: Option<DType> = None;
        for (name, var) in &vars {
            if let Some(first) = seen.insert(var.id(), name) {
                return Err(CandleAdapterError::DuplicateVar {
                    name: name.clone(),
                    first: first.clone(),
                });
            }
            match (var.dtype(), dtype) {
                (DType::F32 | DType::F64, None) => dtype = Some(var.dtype()),
                (d, Some(expected)) if d == expected => {}
                (d @ (DType::F32 | DType::F64), Some(expected)) => {
                    return Err(CandleAdapterError::MixedDtypes {
                        name: name.clone(),
                        dtype: d,
                        expected,
                    });
                }
                (d, _) => {
                    return Err(CandleAdapterError::UnsupportedDtype {
                        name: name.clone(),
                        dtype: d,
                    });
                }
            }
        }
        let dtype = dtype.unwrap_or(DType::F32);
        let tags = |name: &str| rules.tags_for(name, "");
        let core = Core::build(&config, vars, &tags, dtype, Placement::Auto)?;
        Ok(ScheduleFreeOptimizer {
            config,
            core,
            last: None,
            rejected_lr: None,
        })
    }

    /// Build over `vars` named `p0000`, `p0001`, ... in the given order (the names sort in
    /// that order; more than 10 000 vars get wider numbers).
    ///
    /// Positional names are only as stable as the order: `VarMap::all_vars()` returns
    /// `HashMap` order, which changes from process to process, so a state file saved with
    /// [`ScheduleFreeOptimizer::save`] may not line up in the next run. Prefer
    /// [`ScheduleFreeOptimizer::from_varmap`]; checkpoints
    /// ([`ScheduleFreeOptimizer::save_checkpoint`]) match vars by `VarMap` name either way.
    ///
    /// # Errors
    /// As [`ScheduleFreeOptimizer::from_named_vars`].
    pub fn from_vars(vars: Vec<Var>, config: PresetConfig) -> Result<Self, CandleAdapterError> {
        let width = vars.len().saturating_sub(1).to_string().len().max(4);
        Self::from_named_vars(
            vars.into_iter()
                .enumerate()
                .map(|(i, v)| (format!("p{i:0width$}"), v)),
            config,
        )
    }

    /// Build over every var of `varmap`, named by their `VarMap` keys (so checkpoints and
    /// `VarMap::save` files use the same names).
    ///
    /// # Errors
    /// [`CandleAdapterError::VarMapPoisoned`], and as
    /// [`ScheduleFreeOptimizer::from_named_vars`].
    pub fn from_varmap(varmap: &VarMap, config: PresetConfig) -> Result<Self, CandleAdapterError> {
        Self::from_named_vars(varmap_vars(varmap)?, config)
    }

    /// [`ScheduleFreeOptimizer::from_varmap`] with every var tagged by `rules` from its
    /// `VarMap` name, e.g. AdamC with the standard no-decay groups and the hidden Linear
    /// weights normalized:
    ///
    /// ```
    /// use candle_core::{DType, Device};
    /// use candle_nn::{layer_norm, linear, VarBuilder, VarMap};
    /// use schedulefree::{schedule::ScheduleConfig, AdamC};
    /// use schedulefree_candle::{PresetConfig, ScheduleFreeOptimizer, TagRules};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let varmap = VarMap::new();
    /// let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    /// let (_fc, _ln, _head) = (linear(4, 8, vb.pp("fc"))?, layer_norm(8, 1e-5, vb.pp("ln"))?, linear(8, 2, vb.pp("head"))?);
    /// let rules = TagRules::standard().normalized_regex(r"\.weight$")?.exclude_path("head");
    /// let adamc = PresetConfig::AdamC {
    ///     config: AdamC { lr: 1e-3, weight_decay: 0.1, ..Default::default() },
    ///     schedule: ScheduleConfig::Cosine { warmup: 10, total: 1000, end: 0.0 },
    /// };
    /// let opt = ScheduleFreeOptimizer::from_varmap_tagged(&varmap, adamc, &rules)?;
    /// assert!(opt.param_tags("fc.weight").is_some_and(|t| t.normalized));
    /// assert!(opt.param_tags("ln.weight").is_some_and(|t| t.no_decay && !t.normalized));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`ScheduleFreeOptimizer::from_varmap`] and
    /// [`ScheduleFreeOptimizer::from_named_vars_tagged`].
    pub fn from_varmap_tagged(
        varmap: &VarMap,
        config: PresetConfig,
        rules: &TagRules,
    ) -> Result<Self, CandleAdapterError> {
        Self::from_named_vars_tagged(varmap_vars(varmap)?, config, rules)
    }

    /// The tags of the var registered as `name` (`None` for an unknown name).
    pub fn param_tags(&self, name: &str) -> Option<ParamTags> {
        with_driver!(&self.core, d => d.opt.param_tags(name))
    }

    /// Every registered var's name and tags, sorted by name.
    pub fn tags(&self) -> Vec<(String, ParamTags)> {
        with_driver!(&self.core, d => d
            .entries
            .iter()
            .map(|e| (e.name.clone(), d.opt.param_tags(&e.name).unwrap_or_default()))
            .collect())
    }

    /// Measure per-var norms in every step (gradient, weight, update, effective lr, decay
    /// factor; [`schedulefree::Optimizer::set_diagnostics`]). Costs one extra pass per var.
    pub fn set_diagnostics(&mut self, on: bool) {
        with_driver!(&mut self.core, d => d.set_diagnostics(on));
    }

    /// Norms of the latest step per var name (empty unless diagnostics are on): the ratio
    /// `‖g‖/‖w‖` of normalized layers and its steady state `sqrt(2λ/γ)` (Van Laarhoven, arXiv 1706.05350;
    /// AdamC, arXiv 2506.02285v2).
    pub fn diagnostics(&self) -> Vec<ParamDiagnostics> {
        with_driver!(&self.core, d => d.diagnostics())
    }

    /// Whether the learner needs the loss (Polyak): step with
    /// [`ScheduleFreeOptimizer::backward_step_with_loss`] or
    /// [`ScheduleFreeOptimizer::try_step_with_loss`].
    pub fn needs_loss(&self) -> bool {
        with_driver!(&self.core, d => d.opt.needs_loss())
    }

    /// One optimizer step with the gradients in `grads` (from `loss.backward()`); vars
    /// without a gradient are not moved and get no state. Returns what the step did
    /// ([`StepInfo::skipped`] is set when a non-finite gradient made the core skip it).
    ///
    /// # Errors
    /// [`CandleAdapterError::Step`] (e.g. [`schedulefree::StepError::EvalMode`]: call
    /// [`ScheduleFreeOptimizer::train`] first, or [`schedulefree::StepError::LossRequired`]
    /// for the Polyak learner: use [`ScheduleFreeOptimizer::try_step_with_loss`]);
    /// [`CandleAdapterError::Config`] if an lr set
    /// with [`candle_nn::Optimizer::set_learning_rate`] was invalid (reported once, the
    /// previous lr is kept); [`CandleAdapterError::Gradient`] for a gradient of the wrong
    /// dtype or size. Nothing changes on error, except on the device path when the device
    /// fails while the update runs (out of memory): the step may then be partly applied;
    /// resume from the last save.
    pub fn try_step(&mut self, grads: &GradStore) -> Result<StepInfo, CandleAdapterError> {
        self.step_inner(grads, None)
    }

    pub(crate) fn step_inner(
        &mut self,
        grads: &GradStore,
        loss: Option<f64>,
    ) -> Result<StepInfo, CandleAdapterError> {
        if let Some(e) = self.rejected_lr.take() {
            return Err(e.into());
        }
        let info = with_driver!(&mut self.core, d => d.step(grads, loss))?;
        self.last = Some(info);
        Ok(info)
    }

    /// What the latest step did (scheduled lr, averaging weight `c`, `k`, whether it was
    /// skipped); after a load, the saved optimizer's latest step. `None` before any step.
    pub fn step_info(&self) -> Option<StepInfo> {
        self.last
    }

    /// Set the peak learning rate of the (single) parameter group; the preset's schedule
    /// and warmup still multiply it.
    ///
    /// # Errors
    /// [`CandleAdapterError::Config`] for a negative or non-finite lr (nothing changes).
    pub fn try_set_learning_rate(&mut self, lr: f64) -> Result<(), CandleAdapterError> {
        with_driver!(&mut self.core, d => {
            let old = d.opt.group_config(0).unwrap_or(GroupConfig { lr: self.config.lr(), weight_decay: 0.0 });
            d.opt.set_group_config(0, GroupConfig { lr, ..old })?;
        });
        self.rejected_lr = None;
        Ok(())
    }

    /// Switch to eval mode as PyTorch's `optimizer.eval()`: the vars then hold `x`, for
    /// evaluation, export or a checkpoint. Idempotent; a no-op for presets without modes.
    /// [`ScheduleFreeOptimizer::try_step`] refuses to step until
    /// [`ScheduleFreeOptimizer::train`].
    ///
    /// # Errors
    /// [`CandleAdapterError::Step`], [`CandleAdapterError::Candle`] (device transfers).
    pub fn eval(&mut self) -> Result<(), CandleAdapterError> {
        with_driver!(&mut self.core, d => d.switch_mode(false))
    }

    /// Switch back to train mode as PyTorch's `optimizer.train()`: the vars hold `y` again
    /// (computed from `x` and `z`, as the reference does; use
    /// [`ScheduleFreeOptimizer::eval_guard`] when `y` must come back bit for bit).
    ///
    /// # Errors
    /// As [`ScheduleFreeOptimizer::eval`].
    pub fn train(&mut self) -> Result<(), CandleAdapterError> {
        with_driver!(&mut self.core, d => d.switch_mode(true))
    }

    /// Whether the vars hold the training point (`y` for Schedule-Free).
    pub fn is_train_mode(&self) -> bool {
        with_driver!(&self.core, d => d.opt.is_train_mode())
    }

    /// Whether the evaluation point differs from the training point (Schedule-Free presets).
    pub fn has_modes(&self) -> bool {
        with_driver!(&self.core, d => d.opt.has_modes())
    }

    /// Write `x` into the vars until the returned guard is dropped; then every var gets its
    /// training value `y` back bit for bit. Evaluate the model inside the guard. Nothing is
    /// written in eval mode or for presets without modes.
    ///
    /// # Errors
    /// [`CandleAdapterError::Candle`] if a var cannot be read or written (the vars
    /// written so far are restored first).
    pub fn eval_guard(&mut self) -> Result<EvalGuard<'_>, CandleAdapterError> {
        let written = with_driver!(&mut self.core, d => d.enter_eval())?;
        Ok(EvalGuard::new(self, written))
    }

    /// The evaluation point `x` of every var, as new tensors on the var's device, by name,
    /// without changing the vars (allocates one copy).
    ///
    /// # Errors
    /// [`CandleAdapterError::Candle`] if a var cannot be read or a tensor created.
    pub fn eval_point(&self) -> Result<Vec<(String, Tensor)>, CandleAdapterError> {
        with_driver!(&self.core, d => d
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| Ok((e.name.clone(), d.eval_point(i)?)))
            .collect())
    }

    /// The registered vars and their names, sorted by name.
    pub fn vars(&self) -> Vec<(&str, &Var)> {
        with_driver!(&self.core, d => d.entries.iter().map(|e| (e.name.as_str(), &e.var)).collect())
    }

    /// The preset and hyperparameters this optimizer was built with.
    pub fn config(&self) -> &PresetConfig {
        &self.config
    }

    /// The element type the core runs on (`F32` or `F64`).
    pub fn dtype(&self) -> DType {
        match self.core {
            Core::F32(_) | Core::DeviceF32(_) => DType::F32,
            Core::F64(_) | Core::DeviceF64(_) => DType::F64,
        }
    }

    /// A snapshot of the core's state (step counter, mode, slots by name), e.g. for
    /// [`OptimizerState::save_json`]. On the device path the slots are read back to the
    /// host (a full copy; not for every step).
    ///
    /// # Errors
    /// [`CandleAdapterError::Candle`] if a slot cannot be read back from its device.
    pub fn state(&self) -> Result<OptimizerState, CandleAdapterError> {
        with_driver!(&self.core, d => d.state())
    }

    /// Where the state lives and the element update runs: [`Placement::Host`] or
    /// [`Placement::Device`] (the constructors resolve [`Placement::Auto`]).
    pub fn placement(&self) -> Placement {
        match self.core {
            Core::F32(_) | Core::F64(_) => Placement::Host,
            Core::DeviceF32(_) | Core::DeviceF64(_) => Placement::Device,
        }
    }

    /// Move this optimizer to `placement`'s path, its state (tags, counters, slots, mode,
    /// peak lr) carried over: e.g. [`Placement::Device`] keeps the state next to CPU vars too
    /// (for tests, or where the device path is wanted on the CPU), [`Placement::Host`] brings
    /// the state of GPU vars to host RAM. [`Placement::Auto`] chooses as the constructors do.
    ///
    /// # Errors
    /// [`CandleAdapterError::Step`] with [`schedulefree::StepError::Program`] when
    /// [`Placement::Device`] is asked for a composition element programs do not cover
    /// (the hypersphere projection of `normalized` vars); as
    /// [`ScheduleFreeOptimizer::state`] and [`ScheduleFreeOptimizer::load_state`]. Nothing
    /// changes on error.
    pub fn set_placement(&mut self, placement: Placement) -> Result<(), CandleAdapterError> {
        let st = self.state()?;
        let (group, diagnostics) =
            with_driver!(&self.core, d => (d.opt.group_config(0), d.diagnostics_on()));
        let vars: Vec<(String, Var)> = self
            .vars()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        let tags = |name: &str| self.param_tags(name).unwrap_or_default();
        let mut core = Core::build(&self.config, vars, &tags, self.dtype(), placement)?;
        with_driver!(&mut core, d => {
            if let Some(g) = group {
                d.opt.set_group_config(0, g)?;
            }
            d.set_diagnostics(diagnostics);
            d.load_state(&self.config, &st)?;
        });
        self.core = core;
        Ok(())
    }

    /// Save the optimizer state (not the vars) to a safetensors file, atomically: slot
    /// tensors named `<param>/<slot>` in the optimizer's dtype, and the scalars (step
    /// counter `k`, `lr_max`, weight sum, mode, per-parameter updates) as JSON in the
    /// metadata (`state`; `preset` records the configuration for reference). To resume,
    /// rebuild the optimizer with the same preset and vars and call
    /// [`ScheduleFreeOptimizer::load`]; to also save the model, use
    /// [`ScheduleFreeOptimizer::save_checkpoint`].
    ///
    /// # Errors
    /// [`CandleAdapterError::Io`], [`CandleAdapterError::Safetensors`].
    pub fn save(&self, path: &Path) -> Result<(), CandleAdapterError> {
        state_file::save(path, &self.state()?, &self.config, &[])
    }

    /// Load a state written by [`ScheduleFreeOptimizer::save`]. The file must hold exactly
    /// this optimizer's parameters (names, shapes), slots and dtype, from the same preset
    /// composition. The vars are not touched: they must hold the values they had at the
    /// save (`y` if saved in train mode, `x` in eval mode).
    ///
    /// # Errors
    /// [`CandleAdapterError::Io`], [`CandleAdapterError::Safetensors`],
    /// [`CandleAdapterError::Metadata`]; [`CandleAdapterError::MissingTensor`],
    /// [`CandleAdapterError::UnexpectedTensor`], [`CandleAdapterError::TensorMismatch`] for
    /// the file's tensors; [`CandleAdapterError::State`] (from the core) when the state does
    /// not fit this optimizer. Nothing changes on error.
    pub fn load(&mut self, path: &Path) -> Result<(), CandleAdapterError> {
        let (st, _) = state_file::load(path)?;
        self.load_state(&st)
    }

    /// Restore a core state snapshot ([`ScheduleFreeOptimizer::state`]), including each
    /// var's tags (the state's tags replace those this optimizer was built with), the
    /// hypersphere radii and the learner's group state (AdaGrad-Norm's `b²`, Prodigy's `d`).
    /// The peak lr and weight decay stay as this optimizer has them.
    ///
    /// # Errors
    /// [`CandleAdapterError::State`]; [`CandleAdapterError::Param`] if the state's tags do not
    /// fit a var (a projection axis it lacks); nothing changes on error.
    pub fn load_state(&mut self, st: &OptimizerState) -> Result<(), CandleAdapterError> {
        let config = &self.config;
        with_driver!(&mut self.core, d => d.load_state(config, st))?;
        self.last = match st.groups.first() {
            Some(g) if g.k > 0 => {
                let group = with_driver!(&self.core, d => d.opt.group_info(0)).unwrap_or(g.last);
                // One group: the global norms are the group's.
                Some(StepInfo {
                    skipped: None,
                    group,
                    grad_l1: group.grad_l1,
                    grad_l2: group.grad_l2,
                })
            }
            _ => None,
        };
        self.rejected_lr = None;
        Ok(())
    }
}

impl candle_nn::Optimizer for ScheduleFreeOptimizer {
    type Config = PresetConfig;

    /// [`ScheduleFreeOptimizer::from_vars`]; errors are wrapped into `candle_core::Error`.
    fn new(vars: Vec<Var>, config: PresetConfig) -> candle_core::Result<Self> {
        Self::from_vars(vars, config).map_err(CandleAdapterError::into_candle)
    }

    /// [`ScheduleFreeOptimizer::try_step`]; errors are wrapped into `candle_core::Error`.
    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        self.try_step(grads)
            .map(|_| ())
            .map_err(CandleAdapterError::into_candle)
    }

    /// The peak lr of the parameter group (the last step's scheduled lr is in
    /// [`ScheduleFreeOptimizer::step_info`]).
    fn learning_rate(&self) -> f64 {
        with_driver!(&self.core, d => d.opt.group_config(0)).map_or(self.config.lr(), |g| g.lr)
    }

    /// [`ScheduleFreeOptimizer::try_set_learning_rate`]; an invalid lr is kept out and
    /// reported by the next step (this trait method cannot return an error).
    fn set_learning_rate(&mut self, lr: f64) {
        if let Err(CandleAdapterError::Config(e)) = self.try_set_learning_rate(lr) {
            self.rejected_lr = Some(e);
        }
    }
}

/// The vars of `varmap` with their names, sorted by name.
pub(crate) fn varmap_vars(varmap: &VarMap) -> Result<Vec<(String, Var)>, CandleAdapterError> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| CandleAdapterError::VarMapPoisoned)?;
    let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(vars)
}
