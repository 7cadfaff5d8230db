//! The module-level optimizer: one core optimizer over every float parameter of a burn module,
//! keyed by module path, so that it sees the whole parameter set (the eval point `x` of every
//! parameter, and later reductions over all of them). Modelled on how burn's L-BFGS walks a
//! module with its own visitor and mapper and keeps its own state.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use burn::module::Module;
use burn::optim::{GradientsParams, MultiGradientsParams};
use schedulefree::{
    DynOptimizer, GroupConfig, GroupStepInfo, OptimizerState, Param, ParamDiagnostics,
    PresetConfig, StepInfo, StepInputs,
};

use crate::device::DeviceOptimizer;
use crate::error::BurnAdapterError;
use crate::module_params::{GradSource, read_params, read_params_with_grads, write_params};
use crate::placement::Placement;
use crate::tags::TagRules;

/// A core optimizer behind the object-safe interface.
pub(crate) type Core = Box<dyn DynOptimizer<f32>>;
/// Registered module paths and their shapes.
pub(crate) type Shapes = BTreeMap<String, Vec<usize>>;

/// Version of the file layout [`ModelOptimizer::save`] writes.
pub const MODEL_OPTIMIZER_FILE_VERSION: u32 = 1;

/// What [`ModelOptimizer::save`] writes: the core state plus the group configuration (an lr
/// set with [`ModelOptimizer::set_lr`] is configuration, not core state, and resume must keep it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct OptimizerFile {
    pub format_version: u32,
    /// The preset that wrote the file (informative; the core checks the method on load).
    pub preset: PresetConfig,
    /// Group 0's lr and weight decay when saved.
    pub group: GroupConfig,
    /// The core state, in train mode (parameter buffers hold `y`).
    pub state: OptimizerState,
}

/// Schedule-Free (or any preset) over a whole burn module.
///
/// One core optimizer ([`schedulefree::DynOptimizer`] over `f32`) holds every float parameter
/// that has received a gradient, registered on its first gradient under its module path (burn's
/// field names joined by `.`, e.g. `"layers.0.weight"`, `"bias"` for an `Option` field). The
/// module always holds the training point `y`; the eval point `x` comes from
/// [`eval_module`](Self::eval_module). The returned module keeps its parameters' ids, devices,
/// dtypes and autodiff state (it stays trainable).
///
/// Each step runs on one of two paths ([`Placement`], chosen for you by default):
/// - **host path** (burn's flex CPU backend): [`step`](Self::step) copies parameters and
///   gradients to the host, steps the core's fused kernel once and writes the new values back;
/// - **device path** (any other backend: CUDA, ROCm, Metal, wgpu): the state stays burn tensors
///   on each parameter's device and the update runs there as burn tensor ops, as
///   [`DeviceOptimizer`] does; a step reads three numbers per parameter back, nothing
///   parameter-sized (Prodigy: two more, its pre-pass sums). The hypersphere projection of
///   `normalized` parameters stays on the host path (element programs do not cover it yet),
///   and norm [`diagnostics`](Self::diagnostics) are measured on the host path only.
///
/// [`Placement::Auto`] decides at every step from the module's devices and moves the state
/// (once) when the module moves; [`set_placement`](Self::set_placement) forces a path.
///
/// State is keyed by path, not by burn's `ParamId` (burn does not restore ids when a module is
/// loaded from a record, so id-keyed state would be silently orphaned).
///
/// ```
/// use burn::module::Module;
/// use burn::nn::{Linear, LinearConfig};
/// use burn::optim::GradientsParams;
/// use burn::tensor::{Device, Tensor};
/// use schedulefree::{AdamWScheduleFree, PresetConfig};
/// use schedulefree_burn::ModelOptimizer;
///
/// let device = Device::default().autodiff();
/// let mut model: Linear = LinearConfig::new(3, 1).init(&device);
/// let mut optim = ModelOptimizer::new(PresetConfig::AdamWScheduleFree(AdamWScheduleFree {
///     lr: 0.01,
///     warmup_steps: 5,
///     ..Default::default()
/// }))?;
/// let input = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &device);
/// for _ in 0..10 {
///     let loss = model.forward(input.clone()).powf_scalar(2.0).mean();
///     let grads = GradientsParams::from_grads(loss.backward(), &model);
///     let (next, _info) = optim.step(model, grads)?;
///     model = next;
/// }
/// let at_x = optim.eval_module(&model)?.valid(); // validate / export at x
/// # let _ = at_x;
/// # Ok::<(), schedulefree_burn::BurnAdapterError>(())
/// ```
#[derive(Debug)]
pub struct ModelOptimizer {
    preset: PresetConfig,
    core: Box<dyn DynOptimizer<f32>>,
    /// Registered paths and shapes (mirror of the core's registry).
    shapes: BTreeMap<String, Vec<usize>>,
    /// How parameters are tagged when they register.
    tag_rules: TagRules,
    /// Whether the core measures norm diagnostics.
    diagnostics: bool,
    /// Which path steps: the policy.
    placement: Placement,
    /// The device path, when it holds the state (then `core` and `shapes` are stale).
    device: Option<Box<DeviceOptimizer>>,
}

impl ModelOptimizer {
    /// An optimizer for `preset` with no parameters yet (they register on their first gradient).
    ///
    /// # Errors
    /// [`BurnAdapterError::Config`] for invalid hyperparameters.
    pub fn new(preset: PresetConfig) -> Result<Self, BurnAdapterError> {
        let core = preset.build_dyn::<f32>()?;
        Ok(ModelOptimizer {
            preset,
            core,
            shapes: BTreeMap::new(),
            tag_rules: TagRules::new(),
            diagnostics: false,
            placement: Placement::Auto,
            device: None,
        })
    }

    /// Tag parameters by `rules` when they register (on their first gradient): `normalized`
    /// ones get the decay policy's corrected decay or projection, `no_decay` ones no decay.
    /// Set it before the first step; [`select_tags`](crate::select_tags) shows what it selects.
    pub fn with_tag_rules(mut self, rules: TagRules) -> Self {
        self.device = self
            .device
            .take()
            .map(|d| Box::new(d.with_tag_rules(rules.clone())));
        self.tag_rules = rules;
        self
    }

    /// This optimizer with `placement` ([`set_placement`](Self::set_placement)).
    pub fn with_placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// Choose the path of the next steps ([`Placement::Auto`] by default). The state moves to
    /// the chosen path at the next [`step`](Self::step) (read back to the host, or uploaded to
    /// each parameter's device, once).
    pub fn set_placement(&mut self, placement: Placement) {
        self.placement = placement;
    }

    /// The placement policy.
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// Whether the device path holds the state now (decided at each step).
    pub fn on_device(&self) -> bool {
        self.device.is_some()
    }

    /// The core holding the live state.
    fn live(&self) -> &dyn DynOptimizer<f32> {
        match &self.device {
            Some(d) => d.core(),
            None => self.core.as_ref(),
        }
    }

    /// Put the state on the path `self.placement` chooses for `module`.
    fn place<M: Module>(&mut self, module: &M) -> Result<(), BurnAdapterError> {
        let device = self
            .placement
            .wants_device(module, self.live(), &self.tag_rules);
        match (device, self.device.take()) {
            (true, Some(d)) => self.device = Some(d),
            (false, None) => {}
            (true, None) => {
                let mut d = DeviceOptimizer::new(self.preset.clone())?
                    .with_tag_rules(self.tag_rules.clone());
                d.load_from(self)?;
                self.device = Some(Box::new(d));
            }
            (false, Some(d)) => {
                let host = d
                    .state()
                    .and_then(|st| build_core(&self.preset, d.group_config(), &st));
                match host {
                    Ok((mut core, shapes)) => {
                        core.set_diagnostics(self.diagnostics);
                        (self.core, self.shapes) = (core, shapes);
                    }
                    Err(e) => {
                        self.device = Some(d);
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// The tag rules.
    pub fn tag_rules(&self) -> &TagRules {
        &self.tag_rules
    }

    /// Measure per-parameter norms in every step ([`schedulefree::Optimizer::set_diagnostics`]).
    pub fn set_diagnostics(&mut self, on: bool) {
        self.diagnostics = on;
        self.core.set_diagnostics(on);
    }

    /// Norms of the latest step per module path (empty unless diagnostics are on, and on the
    /// device path, which does not measure them).
    pub fn diagnostics(&self) -> Vec<ParamDiagnostics> {
        self.live().diagnostics()
    }

    /// The preset this optimizer was built from.
    pub fn preset(&self) -> &PresetConfig {
        &self.preset
    }

    /// Registered module paths with their shapes.
    pub fn param_shapes(&self) -> &BTreeMap<String, Vec<usize>> {
        match &self.device {
            Some(d) => d.param_shapes(),
            None => &self.shapes,
        }
    }

    /// The core optimizer holding the state (read-only: e.g. [`DynOptimizer::state_buffer`]
    /// for diagnostics). On the device path its buffers are held on the devices: its
    /// `state_buffer` and `slot` are `None` there; read the state with
    /// [`state`](Self::state).
    pub fn core(&self) -> &dyn DynOptimizer<f32> {
        self.live()
    }

    /// One update at `y`: reads the gradient of every float parameter of `module` from `grads`,
    /// steps the core once over all of them and returns the updated module with the core's
    /// [`StepInfo`]. Parameters without a gradient (frozen ones, batch-norm running statistics)
    /// are left untouched and get no state. A step skipped by the core (non-finite gradient)
    /// returns the module unchanged with `info.skipped` set.
    ///
    /// # Errors
    /// [`BurnAdapterError::Shape`] if a registered path changed shape,
    /// [`BurnAdapterError::UnmatchedState`] if the optimizer holds paths the module lacks (e.g.
    /// state loaded from another architecture), [`BurnAdapterError::DuplicatePath`],
    /// [`BurnAdapterError::Tensor`], and the core's [`BurnAdapterError::Step`]. No value or
    /// state changes on error (parameters seen for the first time may stay registered, without
    /// state, as after a step in which they had no gradient), except that the state may have
    /// moved to the path [`Placement`] chose, its values exact.
    pub fn step<M: Module>(
        &mut self,
        module: M,
        mut grads: GradientsParams,
    ) -> Result<(M, StepInfo), BurnAdapterError> {
        self.step_from(module, GradSource::Single(&mut grads), None)
    }

    /// [`step`](Self::step) with the loss at the current parameters (the Polyak learner needs
    /// it; others ignore it). Pass the loss of the same batch as the gradients.
    ///
    /// # Errors
    /// As [`step`](Self::step).
    pub fn step_with_loss<M: Module>(
        &mut self,
        module: M,
        mut grads: GradientsParams,
        loss: f64,
    ) -> Result<(M, StepInfo), BurnAdapterError> {
        self.step_from(module, GradSource::Single(&mut grads), Some(loss))
    }

    /// [`step`](Self::step) with gradients from several devices (data parallel), summed per
    /// parameter by burn's [`MultiGradientsParams::remove`] exactly as `ModuleOptimizer::step_multi`
    /// does. Each replica's loss should be scaled so that the sum is the gradient of the whole
    /// batch (e.g. sum of per-example losses divided by the total batch size).
    ///
    /// # Errors
    /// As [`step`](Self::step).
    pub fn step_multi<M: Module>(
        &mut self,
        module: M,
        mut grads: MultiGradientsParams,
    ) -> Result<(M, StepInfo), BurnAdapterError> {
        self.step_from(module, GradSource::Multi(&mut grads), None)
    }

    fn step_from<M: Module>(
        &mut self,
        module: M,
        mut grads: GradSource<'_>,
        loss: Option<f64>,
    ) -> Result<(M, StepInfo), BurnAdapterError> {
        self.place(&module)?;
        if let Some(d) = &mut self.device {
            return d.step_from(module, grads, loss);
        }
        let mut params = read_params_with_grads(&module, &mut grads)?;
        check_shapes(
            &self.shapes,
            params.iter().map(|p| (p.path.as_str(), p.shape.as_slice())),
        )?;
        params.retain(|p| p.grad.is_some());
        for p in &params {
            if !self.shapes.contains_key(&p.path) {
                let tags = self.tag_rules.tags_for(&p.path, &p.owner);
                self.core.add_param_tagged(0, &p.path, &p.shape, tags)?;
                self.shapes.insert(p.path.clone(), p.shape.clone());
            }
        }
        let mut core_params: Vec<Param<'_, f32>> = params
            .iter_mut()
            .filter_map(|p| Some(Param::new(&p.path, &mut p.value, p.grad.as_deref()?)))
            .collect();
        let info = self.core.step_with(
            &mut core_params,
            StepInputs {
                loss,
                all_reduce: None,
            },
        )?;
        drop(core_params);
        if info.skipped.is_some() {
            return Ok((module, info));
        }
        let values: HashMap<String, Vec<f32>> =
            params.into_iter().map(|p| (p.path, p.value)).collect();
        Ok((write_params(module, values), info))
    }

    /// A copy of `module` whose parameters hold the eval point `x` (Schedule-Free's returned
    /// point, `x = y + (1 − 1/β)(z − y)` computed by the core); `module` (at `y`) is untouched.
    /// Use it for validation (`.valid()`), export and checkpoints. An identity copy for presets
    /// without modes; parameters never stepped are copied unchanged.
    ///
    /// This is PyTorch's `optimizer.eval()` … `optimizer.train()` swap as a scoped value: burn
    /// modules are values, so the copy at `x` is used and dropped and the training module never
    /// leaves `y` (no round trip through `x`, so no rounding drift of `y` either).
    ///
    /// Note: burn's `RunningState` buffers (batch-norm statistics) are shared between a module
    /// and its clones; they are copied as they are (statistics at `y`), see
    /// [`recalibrate_batch_norm`](crate::recalibrate_batch_norm).
    ///
    /// # Errors
    /// [`BurnAdapterError::Shape`] if a registered path has another shape in `module`,
    /// [`BurnAdapterError::Tensor`], [`BurnAdapterError::DuplicatePath`].
    pub fn eval_module<M: Module>(&self, module: &M) -> Result<M, BurnAdapterError> {
        if let Some(d) = &self.device {
            return d.eval_module(module);
        }
        if !self.core.has_modes() || self.shapes.is_empty() {
            return Ok(module.clone());
        }
        let params = read_params(module)?;
        let mut values = HashMap::new();
        for p in params {
            let Some(expected) = self.shapes.get(&p.path) else {
                continue;
            };
            if *expected != p.shape {
                return Err(BurnAdapterError::Shape {
                    path: p.path,
                    found: p.shape,
                    expected: expected.clone(),
                });
            }
            let mut x = vec![0.0_f32; p.value.len()];
            self.core.eval_params_into(&p.path, &p.value, &mut x)?;
            values.insert(p.path, x);
        }
        Ok(write_params(module.clone(), values))
    }

    /// Whether the preset evaluates at a point other than its training buffer (Schedule-Free:
    /// yes; last-iterate AdamW/SGD: no).
    pub fn has_modes(&self) -> bool {
        self.core.has_modes()
    }

    /// Group 0's values from the latest step: completed updates `k`, scheduled lr, averaging
    /// weight `c`, `lr_max`, weight sum. `Some(default)` before the first step.
    pub fn group_info(&self) -> Option<GroupStepInfo> {
        self.live().group_info(0)
    }

    /// Group 0's configuration (peak lr and weight decay).
    pub fn group_config(&self) -> Option<GroupConfig> {
        self.live().group_config(0)
    }

    /// Replace group 0's configuration (peak lr and weight decay).
    ///
    /// # Errors
    /// [`BurnAdapterError::Config`] for a negative or non-finite value.
    pub fn set_group_config(&mut self, config: GroupConfig) -> Result<(), BurnAdapterError> {
        match &mut self.device {
            Some(d) => d.set_group_config(config),
            None => Ok(self.core.set_group_config(0, config)?),
        }
    }

    /// Override the peak lr of group 0 (the preset's own schedule and warmup still multiply it),
    /// e.g. each step from a [`ScheduleLr`](crate::ScheduleLr).
    ///
    /// # Errors
    /// [`BurnAdapterError::Config`] for a negative or non-finite lr.
    pub fn set_lr(&mut self, lr: f64) -> Result<(), BurnAdapterError> {
        let weight_decay = self.group_config().map_or(0.0, |g| g.weight_decay);
        self.set_group_config(GroupConfig { lr, weight_decay })
    }

    /// Snapshot of the core state (train mode; keyed by module path). Together with the module
    /// at `y` it resumes bit-exactly; for checkpoints at `x` use
    /// [`save_checkpoint`](crate::save_checkpoint). On the device path every slot is read back
    /// to the host (a full copy; not for every step).
    ///
    /// # Errors
    /// [`BurnAdapterError::Tensor`] if a slot cannot be read back from its device.
    pub fn state(&self) -> Result<OptimizerState, BurnAdapterError> {
        match &self.device {
            Some(d) => d.state(),
            None => Ok(self.core.state()),
        }
    }

    /// Replace the state with `state` (keyed by module path): the parameters it names are
    /// registered with their shapes. The next [`step`](Self::step) checks them against the
    /// module and refuses unmatched paths ([`BurnAdapterError::UnmatchedState`]).
    ///
    /// # Errors
    /// The core's [`BurnAdapterError::State`] (version, method, dtype, groups) or
    /// [`BurnAdapterError::Param`]; [`BurnAdapterError::EvalModeState`] for a state saved in
    /// eval mode (load those with [`load_checkpoint`](crate::load_checkpoint), which has the
    /// module's `x`). The optimizer is unchanged on error.
    pub fn load_state(&mut self, state: &OptimizerState) -> Result<(), BurnAdapterError> {
        if state.groups.iter().any(|g| !g.train_mode) {
            return Err(BurnAdapterError::EvalModeState);
        }
        let (core, shapes) = self.core_from_state(state)?;
        self.replace_core(core, shapes);
        Ok(())
    }

    /// A fresh core for this preset with `state` loaded (any mode), keeping group 0's config.
    pub(crate) fn core_from_state(
        &self,
        state: &OptimizerState,
    ) -> Result<(Core, Shapes), BurnAdapterError> {
        if let Some((path, _)) = state.params.iter().find(|(_, r)| r.external) {
            return Err(BurnAdapterError::StateWithoutSlots { path: path.clone() });
        }
        let (mut core, shapes) = build_core(&self.preset, self.group_config(), state)?;
        core.set_diagnostics(self.diagnostics);
        Ok((core, shapes))
    }

    /// Replace the state with a host core (after a load); the next step places it.
    pub(crate) fn replace_core(&mut self, core: Core, shapes: Shapes) {
        self.core = core;
        self.shapes = shapes;
        self.device = None;
    }

    /// Write the state and group 0's configuration to `path` as JSON, atomically (temporary
    /// sibling, fsync, rename). Buffers are written as `f64` (exact for `f32`).
    ///
    /// # Errors
    /// [`BurnAdapterError::Io`]; [`BurnAdapterError::Tensor`] if a slot cannot be read back
    /// from its device.
    pub fn save(&self, path: &Path) -> Result<(), BurnAdapterError> {
        let file = self.to_file()?;
        write_json(path, &file)
    }

    pub(crate) fn to_file(&self) -> Result<OptimizerFile, BurnAdapterError> {
        Ok(OptimizerFile {
            format_version: MODEL_OPTIMIZER_FILE_VERSION,
            preset: self.preset.clone(),
            group: self.group_config().ok_or_else(|| BurnAdapterError::Io {
                path: String::new(),
                message: "the optimizer has no group 0".into(),
            })?,
            state: self.state()?,
        })
    }

    /// Read a file written by [`save`](Self::save) and load it (state and group 0's lr / weight
    /// decay; call [`set_lr`](Self::set_lr) afterwards to change the lr).
    ///
    /// # Errors
    /// [`BurnAdapterError::Io`] (unreadable, unparsable, other format version), then as
    /// [`load_state`](Self::load_state).
    pub fn load(&mut self, path: &Path) -> Result<(), BurnAdapterError> {
        let file = OptimizerFile::read(path)?;
        if file.state.groups.iter().any(|g| !g.train_mode) {
            return Err(BurnAdapterError::EvalModeState);
        }
        let (mut core, shapes) = self.core_from_state(&file.state)?;
        core.set_group_config(0, file.group)?;
        self.replace_core(core, shapes);
        Ok(())
    }
}

/// A fresh core for `preset` with group 0's config `group` and `state` loaded (any mode): every
/// parameter of the state registered with its group, shape and tags.
///
/// # Errors
/// The core's [`BurnAdapterError::Config`], [`BurnAdapterError::Param`],
/// [`BurnAdapterError::State`].
pub(crate) fn build_core(
    preset: &PresetConfig,
    group: Option<GroupConfig>,
    state: &OptimizerState,
) -> Result<(Core, Shapes), BurnAdapterError> {
    let mut core = preset.build_dyn::<f32>()?;
    if let Some(g) = group {
        core.set_group_config(0, g)?;
    }
    let mut shapes = BTreeMap::new();
    for (name, rec) in &state.params {
        core.add_param_tagged(rec.group, name, &rec.shape, rec.tags)?;
        shapes.insert(name.clone(), rec.shape.clone());
    }
    core.load_state(state)?;
    Ok((core, shapes))
}

impl OptimizerFile {
    /// Read and parse a file written by [`ModelOptimizer::save`] (or
    /// [`DeviceOptimizer::save`](crate::DeviceOptimizer::save)), checking its version.
    ///
    /// # Errors
    /// [`BurnAdapterError::Io`]: unreadable, unparsable, or another format version.
    pub(crate) fn read(path: &Path) -> Result<Self, BurnAdapterError> {
        let file: OptimizerFile = read_json(path)?;
        if file.format_version != MODEL_OPTIMIZER_FILE_VERSION {
            return Err(io_err(
                path,
                format!(
                    "file format version {} is not supported (this build reads \
                     {MODEL_OPTIMIZER_FILE_VERSION})",
                    file.format_version
                ),
            ));
        }
        Ok(file)
    }
}

pub(crate) fn io_err(path: &Path, message: impl std::fmt::Display) -> BurnAdapterError {
    BurnAdapterError::Io {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Serialize `value` as JSON and write it atomically.
pub(crate) fn write_json<T: serde::Serialize>(
    path: &Path,
    value: &T,
) -> Result<(), BurnAdapterError> {
    let bytes = serde_json::to_vec(value).map_err(|e| io_err(path, e))?;
    schedulefree::write_atomic(path, &bytes).map_err(|e| io_err(path, e))
}

/// Read and parse a JSON file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<T, BurnAdapterError> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| io_err(path, e))
}

/// Check that every path in `shapes` is a float parameter of the module (its paths and shapes
/// from `module`) with the same shape.
///
/// # Errors
/// [`BurnAdapterError::Shape`], [`BurnAdapterError::UnmatchedState`].
pub(crate) fn check_shapes<'p>(
    shapes: &Shapes,
    module: impl Iterator<Item = (&'p str, &'p [usize])>,
) -> Result<(), BurnAdapterError> {
    let mut seen = HashSet::with_capacity(shapes.len());
    let mut available = Vec::new();
    for (path, shape) in module {
        available.push(path.to_string());
        if let Some(expected) = shapes.get(path) {
            if expected.as_slice() != shape {
                return Err(BurnAdapterError::Shape {
                    path: path.to_string(),
                    found: shape.to_vec(),
                    expected: expected.clone(),
                });
            }
            seen.insert(path);
        }
    }
    let unmatched: Vec<String> = shapes
        .keys()
        .filter(|p| !seen.contains(p.as_str()))
        .cloned()
        .collect();
    if unmatched.is_empty() {
        Ok(())
    } else {
        Err(BurnAdapterError::UnmatchedState {
            paths: unmatched,
            available,
        })
    }
}
