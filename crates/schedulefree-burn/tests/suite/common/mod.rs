//! Shared fixtures: a small MLP, deterministic data, and host views of parameters and
//! gradients by module path.
#![allow(dead_code)]

use std::collections::BTreeMap;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use schedulefree::schedule::ScheduleConfig;
use schedulefree::{
    AdamW, AdamWScheduleFree, AdamWScheduleFreeReference, PresetConfig, RAdamScheduleFree,
    SgdScheduleFree,
};

/// Linear layers with ReLU between them.
#[derive(Module, Debug)]
pub struct Mlp {
    pub layers: Vec<Linear>,
}

impl Mlp {
    /// Deterministic weights (scaled like burn's default init) and biases: tests compare
    /// runs and expect losses to fall, whatever the process's random state, which parallel
    /// tests share.
    pub fn new(device: &Device, dims: &[usize]) -> Self {
        Mlp {
            layers: dims
                .windows(2)
                .enumerate()
                .map(|(k, w)| {
                    let mut l: Linear = LinearConfig::new(w[0], w[1]).init(device);
                    let scale = 1.0 / (w[0] as f32).sqrt();
                    let weight = matrix(w[0], w[1], 100 + k, device).mul_scalar(scale);
                    let bias = matrix(1, w[1], 200 + k, device)
                        .mul_scalar(scale)
                        .reshape([w[1]]);
                    l.weight = Param::from_tensor(weight);
                    l.bias = Some(Param::from_tensor(bias));
                    l
                })
                .collect(),
        }
    }
    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        let n = self.layers.len();
        for (i, l) in self.layers.iter().enumerate() {
            x = l.forward(x);
            if i + 1 < n {
                x = relu(x);
            }
        }
        x
    }
}

/// A deterministic `[rows, cols]` matrix, different for each `seed`.
pub fn matrix(rows: usize, cols: usize, seed: usize, device: &Device) -> Tensor<2> {
    let v: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 7 + seed * 13) as f32 * 0.37).sin() + 0.1 * ((i + seed) as f32 * 1.3).cos())
        .collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

/// Mean squared error of `model` on batch `seed`, as a `[1]` tensor.
pub fn mse(model: &Mlp, seed: usize, device: &Device) -> Tensor<1> {
    let din = model.layers[0].weight.val().dims()[0];
    let dout = model.layers.last().map_or(1, |l| l.weight.val().dims()[1]);
    let x = matrix(6, din, seed, device);
    let t = matrix(6, dout, seed + 1000, device);
    (model.forward(x) - t).powf_scalar(2.0).mean()
}

/// Gradients of [`mse`] on batch `seed`.
pub fn grads(model: &Mlp, seed: usize, device: &Device) -> GradientsParams {
    GradientsParams::from_grads(mse(model, seed, device).backward(), model)
}

struct Collect<'g> {
    stack: Vec<String>,
    grads: Option<&'g GradientsParams>,
    out: BTreeMap<String, Vec<f32>>,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.stack.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.stack.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = match self.grads {
            Some(g) => match g.get::<D>(param.id) {
                Some(t) => t,
                None => return,
            },
            None => param.val(),
        };
        let v = t.inner().try_into_vec_as::<f32>().expect("readable");
        self.out.insert(self.stack.join("."), v);
    }
}

/// Every float parameter's values, by path.
pub fn values<M: Module>(m: &M) -> BTreeMap<String, Vec<f32>> {
    let mut c = Collect {
        stack: Vec::new(),
        grads: None,
        out: BTreeMap::new(),
    };
    m.visit(&mut c);
    c.out
}

/// Every gradient in `g` of a parameter of `m`, by path.
pub fn grad_values<M: Module>(m: &M, g: &GradientsParams) -> BTreeMap<String, Vec<f32>> {
    let mut c = Collect {
        stack: Vec::new(),
        grads: Some(g),
        out: BTreeMap::new(),
    };
    m.visit(&mut c);
    c.out
}

/// Largest elementwise |a − b| / (1 + |b|) over two path maps with equal keys.
pub fn max_rel_diff(a: &BTreeMap<String, Vec<f32>>, b: &BTreeMap<String, Vec<f32>>) -> f64 {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter()
        .flat_map(|(k, va)| {
            va.iter()
                .zip(&b[k])
                .map(|(x, y)| f64::from((x - y).abs()) / (1.0 + f64::from(y.abs())))
        })
        .fold(0.0, f64::max)
}

/// Whether two path maps are equal bit for bit.
pub fn same_bits(a: &BTreeMap<String, Vec<f32>>, b: &BTreeMap<String, Vec<f32>>) -> bool {
    a.len() == b.len()
        && a.iter().all(|(k, va)| {
            b.get(k).is_some_and(|vb| {
                va.len() == vb.len() && va.iter().zip(vb).all(|(x, y)| x.to_bits() == y.to_bits())
            })
        })
}

/// The elementwise presets, with warmup and weight decay so that every code path matters.
pub fn presets() -> Vec<PresetConfig> {
    vec![
        PresetConfig::AdamWScheduleFree(AdamWScheduleFree {
            lr: 0.02,
            warmup_steps: 3,
            weight_decay: 0.01,
            ..Default::default()
        }),
        PresetConfig::AdamWScheduleFreePaper(AdamWScheduleFree {
            lr: 0.02,
            warmup_steps: 3,
            ..Default::default()
        }),
        PresetConfig::AdamWScheduleFreeReference(AdamWScheduleFreeReference {
            config: AdamWScheduleFree {
                lr: 0.02,
                warmup_steps: 2,
                weight_decay: 0.01,
                ..Default::default()
            },
            decay_at_z: true,
        }),
        PresetConfig::SgdScheduleFree(SgdScheduleFree {
            lr: 0.5,
            warmup_steps: 2,
            weight_decay: 0.001,
            // The decoupled averaging weight, on the host and device paths alike.
            decoupling_c: 20.0,
            ..Default::default()
        }),
        PresetConfig::RAdamScheduleFree(RAdamScheduleFree {
            lr: 0.02,
            ..Default::default()
        }),
        PresetConfig::AdamW {
            config: AdamW {
                lr: 0.01,
                ..Default::default()
            },
            schedule: ScheduleConfig::Cosine {
                warmup: 2,
                total: 12,
                end: 0.0,
            },
        },
    ]
}

/// A fresh, unique temporary folder.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("sf-burn-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
