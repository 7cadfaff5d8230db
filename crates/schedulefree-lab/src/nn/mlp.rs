//! Multilayer perceptron with LayerNorm for 28×28 greyscale images.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

use super::init::Init;

/// `d_in → hidden → hidden → classes`: each hidden layer is `Linear → LayerNorm → ReLU`;
/// the last layer is a plain `Linear` giving logits. Input pixels are flattened row-major.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Hidden affine layers, first to last.
    pub hidden: Vec<Linear>,
    /// LayerNorm after each hidden affine layer.
    pub norms: Vec<LayerNorm>,
    /// Output layer (`hidden → classes`).
    pub head: Linear,
}

/// Shape of an [`Mlp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MlpConfig {
    /// Input features (784 for 28×28 images).
    pub d_in: usize,
    /// Width of each hidden layer.
    pub hidden: usize,
    /// Number of hidden layers.
    pub depth: usize,
    /// Number of classes.
    pub classes: usize,
}

impl MlpConfig {
    /// A model with weights drawn from `init`.
    pub fn init(&self, init: &mut Init) -> Mlp {
        self.init_with(init, true)
    }

    /// A model with weights drawn from `init`; without `hidden_bias` the hidden affine layers
    /// have no bias, so each hidden weight matrix is exactly scale-invariant under its
    /// LayerNorm, `LN(c·W·x) = LN(W·x)` for `c > 0` (scale invariance; up to LayerNorm's
    /// `ε`). The weights are the same as [`MlpConfig::init`]'s (the biases are still drawn,
    /// then dropped).
    pub fn init_with(&self, init: &mut Init, hidden_bias: bool) -> Mlp {
        let mut hidden = Vec::with_capacity(self.depth);
        let mut norms = Vec::with_capacity(self.depth);
        let mut d = self.d_in;
        for _ in 0..self.depth {
            let mut layer = init.linear(d, self.hidden);
            if !hidden_bias {
                layer.bias = None;
            }
            hidden.push(layer);
            norms.push(LayerNormConfig::new(self.hidden).init(init.device()));
            d = self.hidden;
        }
        let head = init.linear(d, self.classes);
        Mlp {
            hidden,
            norms,
            head,
        }
    }
}

impl Mlp {
    /// Logits `[batch, classes]` of images `[batch, 1, h, w]` (flattened to `h·w`).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x: Tensor<2> = images.flatten(1, 3);
        for (linear, norm) in self.hidden.iter().zip(&self.norms) {
            x = relu(norm.forward(linear.forward(x)));
        }
        self.head.forward(x)
    }
}
