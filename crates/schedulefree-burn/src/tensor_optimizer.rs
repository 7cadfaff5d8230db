//! The per-tensor path: a `burn::optim::Optimizer` for the elementwise presets, so that they
//! plug into burn's `ModuleOptimizer` (and so into burn-train's `Learner`) unchanged.
//!
//! burn calls `step(lr, tensor, grad, state)` once per parameter with a state that must be
//! plain data (`RecordState` rebuilds it without access to the optimizer). So the state holds
//! the core's per-parameter counters and its slots as burn tensors on the parameter's device;
//! each call builds a one-parameter core from the preset with those counters (no element
//! data), which decides the step from the gradient's sums (three numbers read back) and
//! returns its element program; the program runs as burn tensor ops where the tensor lives
//! (`crate::device`). The math is the core's; nothing parameter-sized leaves the device.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use burn::module::{Module, ModuleMapper, Param as BurnParam};
use burn::optim::{LearningRate, ModuleOptimizer, Optimizer, RecordState, StateSink, StateSource};
use burn::tensor::{DType, Device, Tensor, TensorData};
use burn_pack::Scalar;
use schedulefree::{
    DynOptimizer, ExternalParam, GroupConfig, GroupRecord, GroupStepInfo, OptimizerState,
    ParamRecord, PresetConfig, StepInputs,
};

use crate::device::{gradient_sums, program};
use crate::error::BurnAdapterError;
use crate::module_params::replace_value;

/// Name of the single parameter inside the per-tensor core optimizer.
const NAME: &str = "p";

/// A Schedule-Free (or any elementwise) preset as a burn per-tensor optimizer:
///
/// ```
/// use burn::optim::ModuleOptimizer;
/// use schedulefree::{AdamWScheduleFree, PresetConfig};
/// use schedulefree_burn::TensorOptimizer;
///
/// let preset = PresetConfig::AdamWScheduleFree(AdamWScheduleFree { warmup_steps: 100, ..Default::default() });
/// let optim: ModuleOptimizer = TensorOptimizer::new(preset)?.into();
/// // model = optim.step(0.0025, model, grads);  // burn's lr replaces the preset's `lr`
/// # Ok::<(), schedulefree_burn::BurnAdapterError>(())
/// ```
///
/// The lr burn passes to `step` (a constant or an `LrScheduler`, e.g. [`ScheduleLr`](crate::ScheduleLr))
/// is the peak lr of the step; the preset's own schedule and warmup still multiply it, and the
/// preset's `weight_decay` applies. The preset's `lr` field is not used.
///
/// # Deviations from [`ModelOptimizer`](crate::ModelOptimizer)
/// - Each tensor counts its own updates: the step counter `k` (warmup, averaging weights, Adam
///   bias correction) advances only when the tensor gets a gradient. With every parameter
///   receiving a gradient every step (the usual case) both paths are identical.
/// - burn keeps the state keyed by `ParamId`, which burn does not restore on load; record the
///   `ModuleOptimizer` only together with a module whose ids it created, or use
///   [`ModelOptimizer`](crate::ModelOptimizer), whose state is keyed by module path.
/// - The eval point `x` needs the state of every parameter, which burn does not expose from a
///   `ModuleOptimizer`: [`eval_module`](Self::eval_module) serializes the `ModuleOptimizer`
///   to get it (a full copy), fine every few hundred steps. For cheap validation at `x`, use
///   [`ModelOptimizer`](crate::ModelOptimizer) or [`DeviceOptimizer`](crate::DeviceOptimizer).
/// - Each call reads the gradient's three sums back to the host, one synchronisation per
///   tensor; [`DeviceOptimizer`](crate::DeviceOptimizer) reads all parameters' at once.
///
/// # Errors
/// burn's `Optimizer::step` cannot return errors. A step the core refuses (a non-finite or
/// negative lr from the scheduler, an lr so large that the averaging weight overflows) leaves
/// the tensor and its state unchanged and records the error; read it with
/// [`take_error`](Self::take_error) (clones share the record). Non-finite gradients skip the
/// tensor's step, as the core's default policy does.
#[derive(Debug, Clone)]
pub struct TensorOptimizer {
    preset: PresetConfig,
    weight_decay: f64,
    error: Arc<Mutex<Option<BurnAdapterError>>>,
}

impl TensorOptimizer {
    /// Wrap `preset` (validated here, once).
    ///
    /// # Errors
    /// [`BurnAdapterError::Config`] for invalid hyperparameters.
    pub fn new(preset: PresetConfig) -> Result<Self, BurnAdapterError> {
        let core = preset.build_dyn::<f32>()?;
        if core.needs_loss()
            || core
                .state()
                .groups
                .iter()
                .any(|g| !g.learner_state.is_empty())
        {
            return Err(BurnAdapterError::Config(schedulefree::ConfigError::Unsupported(
                "learners with global reductions (AdaGrad-Norm, Polyak, Prodigy) need every tensor of the step \
                 at once; use ModelOptimizer (burn's per-tensor Optimizer sees one tensor at a time)"
                    .into(),
            )));
        }
        let weight_decay = core.group_config(0).map_or(0.0, |g| g.weight_decay);
        Ok(TensorOptimizer {
            preset,
            weight_decay,
            error: Arc::new(Mutex::new(None)),
        })
    }

    /// The preset.
    pub fn preset(&self) -> &PresetConfig {
        &self.preset
    }

    /// The first error a step met since the last call (see the type's docs), if any.
    pub fn take_error(&self) -> Option<BurnAdapterError> {
        self.error.lock().ok().and_then(|mut e| e.take())
    }

    fn record_error(&self, e: BurnAdapterError) {
        if let Ok(mut slot) = self.error.lock()
            && slot.is_none()
        {
            *slot = Some(e);
        }
    }

    /// A copy of `module` whose parameters hold the eval point `x`, computed by the core from
    /// the states `optim` (a `ModuleOptimizer` built from this optimizer) keeps for it; `module`
    /// (at `y`) is untouched. Parameters without state (never stepped, or stepped by another
    /// optimizer of a group) are copied unchanged; presets without modes give an identity copy.
    ///
    /// burn does not expose a `ModuleOptimizer`'s states, so this serializes them
    /// (`ModuleOptimizer::into_bytes`, a full copy) and reads them back by `ParamId`: fine for
    /// validation every few hundred steps; [`ModelOptimizer::eval_module`](crate::ModelOptimizer::eval_module)
    /// is the cheap way. The ids must be those `optim` stepped (same module lineage, same process).
    ///
    /// # Errors
    /// [`BurnAdapterError::Record`] if burn cannot serialize the states, [`BurnAdapterError::Tensor`],
    /// the core's errors.
    pub fn eval_module<M: Module>(
        &self,
        optim: &ModuleOptimizer,
        module: &M,
    ) -> Result<M, BurnAdapterError> {
        if !self.preset.has_modes() {
            return Ok(module.clone());
        }
        let record_err = |e: &dyn std::fmt::Display| BurnAdapterError::Record {
            path: "ModuleOptimizer".into(),
            message: e.to_string(),
        };
        let bytes = optim.into_bytes().map_err(|e| record_err(&e))?;
        let reader = burn_pack::Reader::from_bytes(bytes).map_err(|e| record_err(&e))?;
        let mut source = StateSource::new(reader.scalars().clone());
        for t in reader.into_tensors().map_err(|e| record_err(&e))? {
            let (name, dtype, shape, _id, bytes) = t.into_parts().map_err(|e| record_err(&e))?;
            source.insert_tensor(name, TensorData::from_bytes(bytes, shape, dtype));
        }
        let mut mapper = EvalMapper {
            optim: self,
            source,
            error: None,
        };
        let out = module.clone().map(&mut mapper);
        match mapper.error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// `x` for one tensor at `y` = `value` with `state`, by the core.
    fn eval_host(
        &self,
        shape: &[usize],
        value: &[f32],
        state: &HostState,
    ) -> Result<Vec<f32>, BurnAdapterError> {
        let mut core = self.preset.build_dyn::<f32>()?;
        core.add_param_to(0, NAME, shape)?;
        let n = state.slots.len();
        load_record(core.as_mut(), shape, &state.scalars, Some(&state.slots), n)?;
        let mut x = vec![0.0_f32; value.len()];
        core.eval_params_into(NAME, value, &mut x)?;
        Ok(x)
    }

    /// The core's step for one tensor where it lives: the gradient's sums are read back (three
    /// numbers), the core decides the step and its element program runs as burn tensor ops on
    /// the tensor's device (in `f32`; the value is cast back to the tensor's dtype). `None` if
    /// the core skipped the step (non-finite gradient).
    fn step_device<const D: usize>(
        &self,
        lr: f64,
        tensor: &Tensor<D>,
        grad: Tensor<D>,
        state: Option<&TensorState<D>>,
    ) -> Result<Option<(Tensor<D>, TensorState<D>)>, BurnAdapterError> {
        let dims = tensor.dims();
        let n = tensor.shape().num_elements();
        let mut core = self.preset.build_dyn::<f32>()?;
        core.add_param_to(0, NAME, &dims)?;
        if let Some(st) = state {
            load_record(core.as_mut(), &dims, &st.scalars, None, st.slots.len())?;
            if let Some(t) = st.slots.iter().find(|t| t.dims() != dims) {
                return Err(BurnAdapterError::Shape {
                    path: "state slot".into(),
                    found: t.dims().to_vec(),
                    expected: dims.to_vec(),
                });
            }
        }
        core.set_group_config(
            0,
            GroupConfig {
                lr,
                weight_decay: self.weight_decay,
            },
        )?;
        let flat = |t: Tensor<D>| {
            let t = if t.dtype() == DType::F32 {
                t
            } else {
                t.cast(DType::F32)
            };
            t.reshape([n])
        };
        let (value, grad) = (flat(tensor.clone()), flat(grad));
        let sums = gradient_sums(std::iter::once((NAME, &grad)))?;
        let param = ExternalParam {
            name: NAME,
            grad: sums.first().copied(),
        };
        let out = core.step_programs(&[param], StepInputs::default())?;
        let Some(pp) = out.programs.first() else {
            return Ok(None); // skipped
        };
        let mut slots: Vec<Tensor<1>> = state
            .map(|s| s.slots.iter().map(|t| flat(t.clone())).collect())
            .unwrap_or_default();
        if let Some(init) = &pp.init {
            let zeros: Vec<Tensor<1>> = (0..init.n_slots()).map(|_| value.zeros_like()).collect();
            slots = program::run(init, &value, None, zeros).slots;
        }
        let o = program::run(&pp.update, &value, Some(&grad), slots);
        let mut next = o.value.reshape(dims);
        if next.dtype() != tensor.dtype() {
            next = next.cast(tensor.dtype());
        }
        let st = core.state();
        Ok(Some((
            next,
            TensorState {
                scalars: scalars_of(&st)?,
                slots: o.slots.into_iter().map(|t| t.reshape(dims)).collect(),
            },
        )))
    }
}

/// The core's per-parameter state of a single-parameter optimizer, in host memory.
struct HostState {
    scalars: Scalars,
    /// Slot buffers in the core's slot order.
    slots: Vec<Vec<f32>>,
}

/// The scalar part of [`TensorState`]: the group's counters (the tensor is its own group).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scalars {
    k: u64,
    updates: u64,
    lr_max: f64,
    weight_sum: f64,
    last: GroupStepInfo,
}

/// The counters of the single parameter's group and the parameter in `st`.
fn scalars_of(st: &OptimizerState) -> Result<Scalars, BurnAdapterError> {
    let missing = |what: &str| BurnAdapterError::Tensor {
        path: NAME.into(),
        message: format!("core state lacks {what}"),
    };
    let g = st.groups.first().ok_or_else(|| missing("group 0"))?;
    let p = st
        .params
        .get(NAME)
        .ok_or_else(|| missing("the parameter"))?;
    Ok(Scalars {
        k: g.k,
        updates: p.updates,
        lr_max: g.lr_max,
        weight_sum: g.weight_sum,
        last: g.last,
    })
}

/// Load the single parameter's counters into `core`, with its slot buffers on the host
/// (`slots`), or marked external (the slots stay burn tensors; `n_slots` of them).
fn load_record(
    core: &mut dyn DynOptimizer<f32>,
    shape: &[usize],
    c: &Scalars,
    slots: Option<&[Vec<f32>]>,
    n_slots: usize,
) -> Result<(), BurnAdapterError> {
    let mut s = core.state();
    if s.slots.len() != n_slots {
        return Err(BurnAdapterError::Tensor {
            path: NAME.into(),
            message: format!(
                "state has {n_slots} slot buffers, the preset has {:?}",
                s.slots
            ),
        });
    }
    s.groups = vec![GroupRecord {
        k: c.k,
        lr_max: c.lr_max,
        weight_sum: c.weight_sum,
        train_mode: true,
        last: c.last,
        learner_state: BTreeMap::new(),
    }];
    let buffers: BTreeMap<String, Vec<f64>> = slots
        .map(|b| {
            s.slots
                .iter()
                .zip(b)
                .map(|(n, b)| (n.clone(), b.iter().map(|&v| f64::from(v)).collect()))
                .collect()
        })
        .unwrap_or_default();
    s.params.insert(
        NAME.to_string(),
        ParamRecord {
            group: 0,
            shape: shape.to_vec(),
            updates: c.updates,
            has_state: true,
            buffers,
            tags: Default::default(),
            radius: None,
            external: slots.is_none(),
        },
    );
    core.load_state(&s)?;
    Ok(())
}

/// The per-parameter state [`TensorOptimizer`] keeps in burn's `ModuleOptimizer`: the core's
/// counters for this tensor and its slot buffers (`z`, `exp_avg_sq`, ... in the core's slot
/// order, each of the parameter's shape, `f32`). Recorded as scalars `k`, `updates`, `lr_max`,
/// `weight_sum`, `last_*` and tensors `slot.0`, `slot.1`, ... with a count `slots`.
#[derive(Debug, Clone)]
pub struct TensorState<const D: usize> {
    scalars: Scalars,
    slots: Vec<Tensor<D>>,
}

impl<const D: usize> TensorState<D> {
    /// Completed updates of this tensor.
    pub fn step_count(&self) -> u64 {
        self.scalars.k
    }
    /// The slot buffers, in the core's slot order.
    pub fn slots(&self) -> &[Tensor<D>] {
        &self.slots
    }
}

fn scalar<T: TryFrom<Scalar>>(src: &mut StateSource, prefix: &str, leaf: &str) -> Option<T> {
    T::try_from(src.take_scalar(prefix, leaf)?).ok()
}

impl<const D: usize> RecordState for TensorState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        let c = &self.scalars;
        out.push_scalar(prefix, "k", Scalar::from(c.k));
        out.push_scalar(prefix, "updates", Scalar::from(c.updates));
        out.push_scalar(prefix, "lr_max", Scalar::from(c.lr_max));
        out.push_scalar(prefix, "weight_sum", Scalar::from(c.weight_sum));
        out.push_scalar(prefix, "last_k", Scalar::from(c.last.k));
        out.push_scalar(prefix, "last_lr", Scalar::from(c.last.lr));
        out.push_scalar(prefix, "last_c", Scalar::from(c.last.c));
        out.push_scalar(prefix, "last_lr_max", Scalar::from(c.last.lr_max));
        out.push_scalar(prefix, "last_weight_sum", Scalar::from(c.last.weight_sum));
        out.push_scalar(prefix, "last_grad_l1", Scalar::from(c.last.grad_l1));
        out.push_scalar(prefix, "last_grad_l2", Scalar::from(c.last.grad_l2));
        out.push_scalar(prefix, "last_lr_factor", Scalar::from(c.last.lr_factor));
        out.push_scalar(
            prefix,
            "last_skipped_steps",
            Scalar::from(c.last.skipped_steps),
        );
        out.push_scalar(prefix, "slots", Scalar::from(self.slots.len()));
        for (i, t) in self.slots.iter().enumerate() {
            out.push_tensor(prefix, &format!("slot.{i}"), t.to_data());
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let scalars = Scalars {
            k: scalar(src, prefix, "k")?,
            updates: scalar(src, prefix, "updates")?,
            lr_max: scalar(src, prefix, "lr_max")?,
            weight_sum: scalar(src, prefix, "weight_sum")?,
            last: GroupStepInfo {
                k: scalar(src, prefix, "last_k")?,
                lr: scalar(src, prefix, "last_lr")?,
                c: scalar(src, prefix, "last_c")?,
                lr_max: scalar(src, prefix, "last_lr_max")?,
                weight_sum: scalar(src, prefix, "last_weight_sum")?,
                grad_l1: scalar(src, prefix, "last_grad_l1")?,
                grad_l2: scalar(src, prefix, "last_grad_l2")?,
                lr_factor: scalar(src, prefix, "last_lr_factor").unwrap_or(1.0),
                skipped_steps: scalar(src, prefix, "last_skipped_steps").unwrap_or(0),
            },
        };
        let n: usize = scalar(src, prefix, "slots")?;
        let slots = (0..n)
            .map(|i| {
                src.take_tensor(prefix, &format!("slot.{i}"))
                    .map(|d| Tensor::from_data(d, device))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(TensorState { scalars, slots })
    }
}

fn host<const D: usize>(t: Tensor<D>, what: &str) -> Result<Vec<f32>, BurnAdapterError> {
    t.try_into_vec_as::<f32>()
        .map_err(|e| BurnAdapterError::Tensor {
            path: what.into(),
            message: e.to_string(),
        })
}

impl Optimizer for TensorOptimizer {
    type State<const D: usize> = TensorState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        match self.step_device(lr, &tensor, grad, state.as_ref()) {
            Ok(Some((t, s))) => (t, Some(s)),
            Ok(None) => (tensor, state),
            Err(e) => {
                self.record_error(e);
                (tensor, state)
            }
        }
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        TensorState {
            scalars: state.scalars,
            slots: state
                .slots
                .into_iter()
                .map(|t| t.to_device(device))
                .collect(),
        }
    }
}

/// Replaces each parameter that has a [`TensorState`] in `source` by its eval point.
struct EvalMapper<'o> {
    optim: &'o TensorOptimizer,
    source: StateSource,
    error: Option<BurnAdapterError>,
}

impl ModuleMapper for EvalMapper<'_> {
    fn map_float<const D: usize>(&mut self, param: BurnParam<Tensor<D>>) -> BurnParam<Tensor<D>> {
        if self.error.is_some() {
            return param;
        }
        let prefix = param.id.val().to_string();
        let Some(state) =
            TensorState::<D>::state_unflatten(&prefix, &mut self.source, &Device::default())
        else {
            return param;
        };
        let attempt = || -> Result<Vec<f32>, BurnAdapterError> {
            let value = host(param.val(), "parameter")?;
            let slots = state
                .slots
                .iter()
                .map(|t| host(t.clone(), "state slot"))
                .collect::<Result<_, _>>()?;
            let dims = param.lazy_shape().to_vec();
            self.optim.eval_host(
                &dims,
                &value,
                &HostState {
                    scalars: state.scalars,
                    slots,
                },
            )
        };
        match attempt() {
            Ok(x) => replace_value(param, x),
            Err(e) => {
                self.error = Some(e);
                param
            }
        }
    }
}
