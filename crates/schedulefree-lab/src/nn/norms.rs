//! Per-parameter weight and gradient L2 norms, named by module path (`hidden.0.weight`).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// Norms of one parameter tensor.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ParamNorm {
    /// Dotted module path, e.g. `blocks.0.attn.query.weight`.
    pub name: String,
    /// `‖w‖₂` of the values.
    pub weight: f64,
    /// `‖g‖₂` of the gradient.
    pub grad: f64,
}

struct NormVisitor<'a> {
    path: Vec<String>,
    grads: &'a GradientsParams,
    out: Vec<ParamNorm>,
}

fn l2<const D: usize>(t: Tensor<D>) -> f64 {
    f64::from(t.powi_scalar(2).sum().into_scalar::<f32>()).sqrt()
}

impl ModuleVisitor for NormVisitor<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // Parameters without a gradient (BatchNorm running statistics) are not reported.
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.out.push(ParamNorm {
                name: self.path.join("."),
                weight: l2(param.val().detach()),
                grad: l2(g),
            });
        }
    }
}

/// Weight and gradient norms of every parameter of `module` that has a gradient in `grads`,
/// in module order. Reads each tensor once (cost of a forward pass of a small model).
pub fn param_norms<M: Module>(module: &M, grads: &GradientsParams) -> Vec<ParamNorm> {
    let mut v = NormVisitor {
        path: Vec::new(),
        grads,
        out: Vec::new(),
    };
    module.visit(&mut v);
    v.out
}
