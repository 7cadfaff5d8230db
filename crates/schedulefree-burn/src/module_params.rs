//! A burn module's float parameters addressed by module path (`"layers.0.weight"`), copied to
//! and from host `Vec<f32>` buffers. Paths, not `ParamId`s, name parameters because burn does
//! not restore ids when a module is loaded from a record, while paths are stable.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsParams, MultiGradientsParams};
use burn::tensor::{Tensor, TensorData};

use crate::error::BurnAdapterError;

/// One float parameter copied to the host.
#[derive(Debug, Clone)]
pub(crate) struct HostParam {
    /// Module path, fields joined by `.`.
    pub path: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// Values, as `f32`.
    pub value: Vec<f32>,
    /// Gradient, if one was requested and present.
    pub grad: Option<Vec<f32>>,
    /// Type of the innermost module owning the parameter (`"Linear"`, `"LayerNorm"`; the root
    /// module's type for its own fields).
    pub owner: String,
}

/// Where gradients come from: one replica, or several whose gradients burn sums.
pub(crate) enum GradSource<'a> {
    /// Gradients of one forward/backward pass.
    Single(&'a mut GradientsParams),
    /// Gradients of several devices, summed by burn on the parameter's device.
    Multi(&'a mut MultiGradientsParams),
}

impl GradSource<'_> {
    pub(crate) fn take<const D: usize>(&mut self, id: ParamId) -> Option<Tensor<D>> {
        match self {
            GradSource::Single(g) => g.remove::<D>(id),
            GradSource::Multi(g) => g.remove::<D>(id).map(|(t, _device)| t),
        }
    }
}

fn host_values<const D: usize>(t: Tensor<D>, path: &str) -> Result<Vec<f32>, BurnAdapterError> {
    t.inner()
        .try_into_vec_as::<f32>()
        .map_err(|e| BurnAdapterError::Tensor {
            path: path.to_string(),
            message: e.to_string(),
        })
}

/// Where a module visitor is: the field names along the path and the types owning them.
#[derive(Default)]
pub(crate) struct ModulePath {
    stack: Vec<String>,
    /// Container types along the path (`Struct:` stripped; "" for collections).
    types: Vec<String>,
}

impl ModulePath {
    /// Entering field `name` of a container of type `container_type`: burn passes the type
    /// of the struct (or enum) that owns the field, and bare "Vec", "Array", "Tuple" for
    /// collections, which are not owners.
    pub(crate) fn enter(&mut self, name: &str, container_type: &str) {
        self.stack.push(name.to_string());
        let owner = match container_type {
            "Vec" | "Array" | "Tuple" => "",
            t => t
                .strip_prefix("Struct:")
                .or_else(|| t.strip_prefix("Enum:"))
                .unwrap_or(t),
        };
        self.types.push(owner.to_string());
    }

    /// Leaving the innermost field.
    pub(crate) fn exit(&mut self) {
        self.stack.pop();
        self.types.pop();
    }

    /// The module path, fields joined by `.`.
    pub(crate) fn path(&self) -> String {
        self.stack.join(".")
    }

    /// The innermost owning struct type (the root module's for its own fields).
    pub(crate) fn owner(&self) -> String {
        self.types
            .iter()
            .rev()
            .find(|t| !t.is_empty())
            .cloned()
            .unwrap_or_default()
    }
}

/// [`BurnAdapterError::DuplicatePath`] for the first path seen twice.
pub(crate) fn check_unique<'p>(
    paths: impl Iterator<Item = &'p str>,
) -> Result<(), BurnAdapterError> {
    let mut seen = std::collections::HashSet::new();
    for p in paths {
        if !seen.insert(p) {
            return Err(BurnAdapterError::DuplicatePath(p.to_string()));
        }
    }
    Ok(())
}

/// A float parameter's path, owner and shape, read without touching its data.
pub(crate) struct ParamMeta {
    /// Module path, fields joined by `.`.
    pub path: String,
    /// Type of the innermost module owning the parameter.
    pub owner: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
}

struct CollectMeta {
    at: ModulePath,
    out: Vec<ParamMeta>,
}

impl ModuleVisitor for CollectMeta {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.at.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.at.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.out.push(ParamMeta {
            path: self.at.path(),
            owner: self.at.owner(),
            shape: param.lazy_shape().to_vec(),
        });
    }
}

/// Every float parameter of `module` (in module visit order), without reading any tensor.
pub(crate) fn param_meta<M: Module>(module: &M) -> Vec<ParamMeta> {
    let mut v = CollectMeta {
        at: ModulePath::default(),
        out: Vec::new(),
    };
    module.visit(&mut v);
    v.out
}

/// Collects every float parameter (and, with a source, its gradient) with its path.
struct Collect<'g, 'a> {
    at: ModulePath,
    grads: Option<&'g mut GradSource<'a>>,
    /// Read values only for parameters with a gradient (the step needs nothing else).
    values_only_with_grad: bool,
    out: Vec<HostParam>,
    error: Option<BurnAdapterError>,
}

impl ModuleVisitor for Collect<'_, '_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.at.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.at.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.error.is_some() {
            return;
        }
        let path = self.at.path();
        let grad = self.grads.as_mut().and_then(|g| g.take::<D>(param.id));
        let shape = param.lazy_shape().to_vec();
        let wanted = grad.is_some() || !self.values_only_with_grad;
        let grad = match grad.map(|g| host_values(g, &path)).transpose() {
            Ok(g) => g,
            Err(e) => {
                self.error = Some(e);
                return;
            }
        };
        let value = if wanted {
            match host_values(param.val(), &path) {
                Ok(v) => v,
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
        } else {
            Vec::new()
        };
        self.out.push(HostParam {
            path,
            shape,
            value,
            grad,
            owner: self.at.owner(),
        });
    }
}

/// Every float parameter of `module` with its values (in module visit order).
///
/// # Errors
/// [`BurnAdapterError::Tensor`] if a read fails, [`BurnAdapterError::DuplicatePath`].
pub(crate) fn read_params<M: Module>(module: &M) -> Result<Vec<HostParam>, BurnAdapterError> {
    let mut v = Collect {
        at: ModulePath::default(),
        grads: None,
        values_only_with_grad: false,
        out: Vec::new(),
        error: None,
    };
    module.visit(&mut v);
    if let Some(e) = v.error {
        return Err(e);
    }
    check_unique(v.out.iter().map(|p| p.path.as_str()))?;
    Ok(v.out)
}

/// Every float parameter of `module`, with value and gradient for those that have a gradient
/// in `grads` (taken out of it); the others have empty values and `grad: None`.
///
/// # Errors
/// As [`read_params`].
pub(crate) fn read_params_with_grads<M: Module>(
    module: &M,
    grads: &mut GradSource<'_>,
) -> Result<Vec<HostParam>, BurnAdapterError> {
    let mut v = Collect {
        at: ModulePath::default(),
        grads: Some(grads),
        values_only_with_grad: true,
        out: Vec::new(),
        error: None,
    };
    module.visit(&mut v);
    if let Some(e) = v.error {
        return Err(e);
    }
    check_unique(v.out.iter().map(|p| p.path.as_str()))?;
    Ok(v.out)
}

/// `new_inner` (a tensor without autodiff on the parameter's device) dressed with the autodiff
/// state `old` carried: autodiff association and checkpointing strategy, gradient retention,
/// distributed marking. burn's own `ParameterContext` does the same for `ModuleOptimizer`, but
/// it is crate-private.
pub(crate) fn restore_like<const D: usize>(
    old: &Tensor<D>,
    new_inner: Tensor<D>,
    id: ParamId,
) -> Tensor<D> {
    let Some(strategy) = old.gradient_checkpointing_strategy() else {
        return new_inner; // `old` had no autodiff (e.g. a `valid()` module): neither has the copy.
    };
    let mut t = Tensor::from_inner(new_inner).with_gradient_checkpointing_strategy(strategy);
    if old.is_require_grad() {
        t = t.require_grad();
    }
    if old.is_distributed() {
        t = t.set_distributed(id);
    }
    t
}

/// Replaces the values of the parameters named in `values` (path → row-major `f32`), keeping
/// ids, devices, dtypes and autodiff state; other parameters are passed through.
struct WriteBack<'v> {
    at: ModulePath,
    values: &'v mut HashMap<String, Vec<f32>>,
}

impl ModuleMapper for WriteBack<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.at.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.at.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.at.path();
        let Some(values) = self.values.remove(&path) else {
            return param;
        };
        replace_value(param, values)
    }
}

/// `param` holding `values` (row-major, its number of elements) instead, with its id, device,
/// dtype and autodiff state.
pub(crate) fn replace_value<const D: usize>(
    param: Param<Tensor<D>>,
    values: Vec<f32>,
) -> Param<Tensor<D>> {
    let (id, old, mapper) = param.consume();
    let dims = old.dims();
    let dtype = old.dtype();
    let device = old.device().inner();
    let mut fresh = Tensor::<D>::from_data(TensorData::new(values, dims), &device);
    if fresh.dtype() != dtype {
        fresh = fresh.cast(dtype);
    }
    let t = restore_like(&old, fresh, id);
    Param::from_mapped_value(id, t, mapper)
}

/// `module` with the parameters named in `values` replaced (see [`WriteBack`]). Lengths must
/// have been checked against the shapes by the caller.
pub(crate) fn write_params<M: Module>(module: M, mut values: HashMap<String, Vec<f32>>) -> M {
    let mut m = WriteBack {
        at: ModulePath::default(),
        values: &mut values,
    };
    module.map(&mut m)
}
