//! Small convolutional network with BatchNorm for 28×28 greyscale images.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

use super::init::Init;

/// Two blocks `Conv 3×3 (same) → BatchNorm → ReLU → MaxPool 2×2`, then a `Linear` on the
/// flattened feature map giving logits. BatchNorm uses batch statistics while training on
/// an autodiff device and its running statistics otherwise (see `burn::nn::BatchNorm`).
#[derive(Module, Debug)]
pub struct Cnn {
    /// Convolutions, first to last.
    pub convs: Vec<Conv2d>,
    /// BatchNorm after each convolution.
    pub norms: Vec<BatchNorm>,
    /// 2×2 max pooling with stride 2 (no parameters).
    pub pool: MaxPool2d,
    /// Output layer.
    pub head: Linear,
}

/// Shape of a [`Cnn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CnnConfig {
    /// Image side (28); must be divisible by 4.
    pub side: usize,
    /// Channels of the two convolutions.
    pub channels: [usize; 2],
    /// Number of classes.
    pub classes: usize,
}

impl CnnConfig {
    /// A model with weights drawn from `init`.
    pub fn init(&self, init: &mut Init) -> Cnn {
        let [c1, c2] = self.channels;
        let convs = vec![init.conv2d_same(1, c1, 3), init.conv2d_same(c1, c2, 3)];
        let norms = vec![
            BatchNormConfig::new(c1).init(init.device()),
            BatchNormConfig::new(c2).init(init.device()),
        ];
        let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
        let side = self.side / 4;
        let head = init.linear(c2 * side * side, self.classes);
        Cnn {
            convs,
            norms,
            pool,
            head,
        }
    }
}

impl Cnn {
    /// Logits `[batch, classes]` of images `[batch, 1, side, side]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = images;
        for (conv, norm) in self.convs.iter().zip(&self.norms) {
            x = self.pool.forward(relu(norm.forward(conv.forward(x))));
        }
        self.head.forward(x.flatten(1, 3))
    }
}
