//! burn models of the neural-network experiments (`sflab train`): an MLP with LayerNorm and
//! a small CNN with BatchNorm for 28×28 images ([`mlp`], [`cnn`]), and a small pre-LayerNorm
//! character-level transformer ([`transformer`]). Weights are drawn from the run's own seeded
//! generator ([`init`]); [`norms`] reads per-parameter weight and gradient norms.
//!
//! Every model maps its input to logits `[rows, classes]`; [`cross_entropy`] and
//! [`correct`] turn logits and integer targets `[rows]` into the mean loss and the number of
//! correct predictions.

pub mod cnn;
pub mod init;
pub mod mlp;
pub mod norms;
pub mod transformer;

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

pub use cnn::{Cnn, CnnConfig};
pub use init::Init;
pub use mlp::{Mlp, MlpConfig};
pub use transformer::{CharTransformer, TransformerConfig};

/// A model that maps a batch to logits, as used by the training loop.
pub trait Net: Module {
    /// The batch input: images `[batch, 1, h, w]` or token ids `[batch, t]`.
    type Input: Clone;

    /// Logits `[rows, classes]` (`rows` = batch for images, batch·t for tokens).
    fn logits(&self, input: Self::Input) -> Tensor<2>;
}

impl Net for Mlp {
    type Input = Tensor<4>;
    fn logits(&self, input: Tensor<4>) -> Tensor<2> {
        self.forward(input)
    }
}

impl Net for Cnn {
    type Input = Tensor<4>;
    fn logits(&self, input: Tensor<4>) -> Tensor<2> {
        self.forward(input)
    }
}

impl Net for CharTransformer {
    type Input = Tensor<2, Int>;
    fn logits(&self, input: Tensor<2, Int>) -> Tensor<2> {
        self.forward(input)
    }
}

/// Mean softmax cross-entropy (natural log) of `logits` `[rows, classes]` against class
/// indices `targets` `[rows]`; a one-element tensor.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let rows = targets.dims()[0];
    log_softmax(logits, 1)
        .gather(1, targets.reshape([rows, 1]))
        .mean()
        .neg()
}

/// Number of rows whose largest logit is at the target index (ties: the first maximum).
pub fn correct(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1, Int> {
    let rows = targets.dims()[0];
    logits
        .argmax(1)
        .equal(targets.reshape([rows, 1]))
        .int()
        .sum()
}
