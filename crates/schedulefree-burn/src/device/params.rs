//! A burn module's float parameters as flattened tensors on their own devices, addressed by
//! module path: read with their gradients, written back with their ids, devices and autodiff
//! state. Nothing here moves element data to the host.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{DType, Tensor};

use crate::error::BurnAdapterError;
use crate::module_params::{GradSource, ModulePath, check_unique, restore_like};

/// One float parameter, flattened, without autodiff, as `f32` (the core's element type;
/// other float dtypes are cast, and cast back on write).
pub(crate) struct DeviceParam {
    /// Module path, fields joined by `.`.
    pub path: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// Type of the innermost module owning the parameter.
    pub owner: String,
    /// Values (only read for parameters with a gradient, or when asked for every value).
    pub value: Option<Tensor<1>>,
    /// Gradient, if present.
    pub grad: Option<Tensor<1>>,
}

struct Collect<'g, 'a> {
    at: ModulePath,
    grads: Option<&'g mut GradSource<'a>>,
    every_value: bool,
    out: Vec<DeviceParam>,
}

impl ModuleVisitor for Collect<'_, '_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.at.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.at.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let grad = self.grads.as_mut().and_then(|g| g.take::<D>(param.id));
        let flat = |t: Tensor<D>| {
            let n = t.shape().num_elements();
            let t = t.inner().reshape([n]);
            if t.dtype() == DType::F32 {
                t
            } else {
                t.cast(DType::F32)
            }
        };
        let value = (grad.is_some() || self.every_value).then(|| flat(param.val()));
        self.out.push(DeviceParam {
            path: self.at.path(),
            shape: param.lazy_shape().to_vec(),
            owner: self.at.owner(),
            value,
            grad: grad.map(flat),
        });
    }
}

/// Every float parameter of `module`; with `grads`, each with its gradient (taken out of it)
/// and, when it has one, its value; without, every value.
///
/// # Errors
/// [`BurnAdapterError::DuplicatePath`].
pub(crate) fn read<M: Module>(
    module: &M,
    grads: Option<&mut GradSource<'_>>,
) -> Result<Vec<DeviceParam>, BurnAdapterError> {
    let mut v = Collect {
        at: ModulePath::default(),
        every_value: grads.is_none(),
        grads,
        out: Vec::new(),
    };
    module.visit(&mut v);
    check_unique(v.out.iter().map(|p| p.path.as_str()))?;
    Ok(v.out)
}

/// Replaces the parameters named in `values` (flattened, on their devices) keeping ids,
/// shapes, dtypes and autodiff state.
struct WriteBack {
    at: ModulePath,
    values: HashMap<String, Tensor<1>>,
}

impl ModuleMapper for WriteBack {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.at.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.at.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(flat) = self.values.remove(&self.at.path()) else {
            return param;
        };
        let (id, old, mapper) = param.consume();
        let mut fresh = flat.reshape(old.dims());
        if fresh.dtype() != old.dtype() {
            fresh = fresh.cast(old.dtype());
        }
        let t = restore_like(&old, fresh, id);
        Param::from_mapped_value(id, t, mapper)
    }
}

/// `module` with the parameters named in `values` replaced; shapes were checked by the caller.
pub(crate) fn write<M: Module>(module: M, values: HashMap<String, Tensor<1>>) -> M {
    module.map(&mut WriteBack {
        at: ModulePath::default(),
        values,
    })
}
