//! Small decoder-only, pre-LayerNorm transformer for character-level language modelling.

use burn::module::{Module, Param};
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::{Embedding, Initializer, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::gelu;
use burn::tensor::{Bool, Int, Tensor};

use super::init::{EMBEDDING_STD, Init};

/// One pre-LN block: `x + Attn(LN(x))`, then `x + W2·GELU(W1·LN(x))` (causal attention,
/// no dropout; GPT-2's layout, arXiv 2002.04745 for pre-LN).
#[derive(Module, Debug)]
pub struct Block {
    /// LayerNorm before attention.
    pub ln_attn: LayerNorm,
    /// Causal multi-head self-attention.
    pub attn: MultiHeadAttention,
    /// LayerNorm before the feed-forward part.
    pub ln_mlp: LayerNorm,
    /// Feed-forward expansion `d → 4d`.
    pub fc_in: Linear,
    /// Feed-forward projection `4d → d`.
    pub fc_out: Linear,
}

/// Token embedding + learned positions, [`Block`]s, a final LayerNorm and a linear head.
#[derive(Module, Debug)]
pub struct CharTransformer {
    /// Token embedding `[vocab, d_model]`.
    pub token: Embedding,
    /// Learned position embedding `[context, d_model]`.
    pub position: Param<Tensor<2>>,
    /// Transformer blocks.
    pub blocks: Vec<Block>,
    /// Final LayerNorm.
    pub ln_final: LayerNorm,
    /// Output layer `d_model → vocab`.
    pub head: Linear,
}

/// Shape of a [`CharTransformer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TransformerConfig {
    /// Vocabulary size.
    pub vocab: usize,
    /// Maximum sequence length.
    pub context: usize,
    /// Model width; must be divisible by `heads`.
    pub d_model: usize,
    /// Number of blocks.
    pub layers: usize,
    /// Attention heads per block.
    pub heads: usize,
}

impl TransformerConfig {
    /// A model with weights drawn from `init`.
    pub fn init(&self, init: &mut Init) -> CharTransformer {
        let d = self.d_model;
        let token = init.embedding(self.vocab, d);
        let position = init.uniform([self.context, d], 3f64.sqrt() * EMBEDDING_STD);
        let blocks = (0..self.layers)
            .map(|_| {
                let mut attn = MultiHeadAttentionConfig::new(d, self.heads)
                    .with_dropout(0.0)
                    .with_initializer(Initializer::Zeros)
                    .init(init.device());
                attn.query = init.linear(d, d);
                attn.key = init.linear(d, d);
                attn.value = init.linear(d, d);
                attn.output = init.linear(d, d);
                Block {
                    ln_attn: LayerNormConfig::new(d).init(init.device()),
                    attn,
                    ln_mlp: LayerNormConfig::new(d).init(init.device()),
                    fc_in: init.linear(d, 4 * d),
                    fc_out: init.linear(4 * d, d),
                }
            })
            .collect();
        CharTransformer {
            token,
            position,
            blocks,
            ln_final: LayerNormConfig::new(d).init(init.device()),
            head: init.linear(d, self.vocab),
        }
    }
}

impl Block {
    fn forward(&self, x: Tensor<3>, mask: Tensor<3, Bool>) -> Tensor<3> {
        let a = self
            .attn
            .forward(MhaInput::self_attn(self.ln_attn.forward(x.clone())).mask_attn(mask))
            .context;
        let x = x + a;
        let m = self
            .fc_out
            .forward(gelu(self.fc_in.forward(self.ln_mlp.forward(x.clone()))));
        x + m
    }
}

impl CharTransformer {
    /// Next-token logits `[batch · t, vocab]` (row `b·t + i` predicts the token after
    /// position `i` of sequence `b`) of token ids `[batch, t]`, `t ≤ context`.
    ///
    /// # Panics
    /// If `t` exceeds the context length.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<2> {
        let [batch, t] = tokens.dims();
        let device = tokens.device();
        let pos = self.position.val().narrow(0, 0, t).unsqueeze::<3>();
        let mut x = self.token.forward(tokens) + pos;
        let mask = burn::nn::attention::generate_autoregressive_mask(batch, t, &device);
        for block in &self.blocks {
            x = block.forward(x, mask.clone());
        }
        let logits = self.head.forward(self.ln_final.forward(x));
        let vocab = logits.dims()[2];
        logits.reshape([batch * t, vocab])
    }
}
