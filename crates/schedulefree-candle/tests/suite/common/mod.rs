//! Shared fixtures: a small MLP on fixed data, and the core driven directly over `Vec<f32>`.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Linear, Module, VarBuilder, VarMap, linear};
use schedulefree::{DynOptimizer, Param, PresetConfig, StepInfo};
use schedulefree_candle::seeded_init;

/// A 3-5-2 ReLU MLP in a fresh VarMap (vars `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias`).
pub struct Mlp {
    pub varmap: VarMap,
    l1: Linear,
    l2: Linear,
}

impl Mlp {
    pub fn new(seed: u64) -> Self {
        Self::with_dtype(seed, DType::F32)
    }

    pub fn with_dtype(seed: u64, dtype: DType) -> Self {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu);
        let l1 = linear(3, 5, vb.pp("l1")).unwrap();
        let l2 = linear(5, 2, vb.pp("l2")).unwrap();
        seeded_init(&varmap, seed).unwrap();
        Mlp { varmap, l1, l2 }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.l2
            .forward(&self.l1.forward(x).unwrap().relu().unwrap())
            .unwrap()
    }

    /// Mean squared error on batch `b` of the fixed data (batches differ, so gradients vary).
    pub fn loss(&self, b: usize) -> Tensor {
        let dtype = self.varmap.all_vars()[0].dtype();
        let (x, y) = batch(b);
        let x = x.to_dtype(dtype).unwrap();
        let y = y.to_dtype(dtype).unwrap();
        candle_nn::loss::mse(&self.forward(&x), &y).unwrap()
    }

    pub fn grads(&self, b: usize) -> GradStore {
        self.loss(b).backward().unwrap()
    }

    /// (name, var) sorted by name.
    pub fn vars(&self) -> Vec<(String, Var)> {
        let mut v: Vec<(String, Var)> = self
            .varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Every var's values, sorted by name.
    pub fn values(&self) -> Vec<Vec<f32>> {
        self.vars()
            .iter()
            .map(|(_, v)| f32s(v.as_tensor()))
            .collect()
    }

    /// Copy every var's values from `other` (same architecture).
    pub fn copy_from(&self, other: &Mlp) {
        for ((_, a), (_, b)) in self.vars().iter().zip(other.vars()) {
            a.set(&b.as_tensor().copy().unwrap()).unwrap();
        }
    }
}

/// Batch `b` of 8 rows: inputs in [-1, 1], targets a fixed nonlinear function.
pub fn batch(b: usize) -> (Tensor, Tensor) {
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for i in 0..8 {
        let t = (b * 8 + i) as f32;
        let x = [
            (t * 0.37).sin(),
            (t * 0.91).cos(),
            ((t * 0.13).sin() * 2.0).tanh(),
        ];
        ys.extend([x[0] * x[1] + 0.5 * x[2], (x[0] - x[2]).abs() - 0.3]);
        xs.extend(x);
    }
    (
        Tensor::from_vec(xs, (8, 3), &Device::Cpu).unwrap(),
        Tensor::from_vec(ys, (8, 2), &Device::Cpu).unwrap(),
    )
}

pub fn f32s(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

pub fn f64s(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

/// Bitwise equality of two lists of buffers, with a message naming the first difference.
pub fn assert_bits_eq(a: &[Vec<f32>], b: &[Vec<f32>], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: buffer count");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.len(), y.len(), "{what}: buffer {i} length");
        for (j, (p, q)) in x.iter().zip(y).enumerate() {
            assert_eq!(
                p.to_bits(),
                q.to_bits(),
                "{what}: buffer {i} element {j}: {p} vs {q}"
            );
        }
    }
}

/// The core optimizer over plain `Vec<f32>` buffers, named like the adapter's vars.
pub struct CoreRun {
    pub opt: Box<dyn DynOptimizer<f32>>,
    pub names: Vec<String>,
    pub bufs: Vec<Vec<f32>>,
}

impl CoreRun {
    pub fn new(config: &PresetConfig, mlp: &Mlp) -> Self {
        let mut opt = config.build_dyn::<f32>().unwrap();
        let mut names = Vec::new();
        let mut bufs = Vec::new();
        for (name, var) in mlp.vars() {
            opt.add_param_to(0, &name, var.dims()).unwrap();
            names.push(name);
            bufs.push(f32s(var.as_tensor()));
        }
        CoreRun { opt, names, bufs }
    }

    /// One core step with the gradients candle computed for `mlp`'s vars.
    pub fn step(&mut self, mlp: &Mlp, grads: &GradStore) -> StepInfo {
        let gs: Vec<Option<Vec<f32>>> = mlp
            .vars()
            .iter()
            .map(|(_, v)| grads.get(v.as_tensor()).map(f32s))
            .collect();
        let mut params: Vec<Param<'_, f32>> = self
            .names
            .iter()
            .zip(self.bufs.iter_mut())
            .zip(&gs)
            .filter_map(|((n, b), g)| g.as_ref().map(|g| Param::new(n, b, g)))
            .collect();
        self.opt.step(&mut params).unwrap()
    }

    /// The core's evaluation point `x` of every buffer.
    pub fn eval_point(&self) -> Vec<Vec<f32>> {
        self.names
            .iter()
            .zip(&self.bufs)
            .map(|(n, y)| {
                let mut x = vec![0.0; y.len()];
                self.opt.eval_params_into(n, y, &mut x).unwrap();
                x
            })
            .collect()
    }

    pub fn switch(&mut self, to_train: bool) {
        let mut params: Vec<Param<'_, f32>> = self
            .names
            .iter()
            .zip(self.bufs.iter_mut())
            .map(|(n, b)| Param::no_grad(n, b))
            .collect();
        if to_train {
            self.opt.train(&mut params).unwrap()
        } else {
            self.opt.eval(&mut params).unwrap()
        }
    }
}

/// A fresh, empty temporary directory for one test.
pub fn temp_dir(test: &str) -> PathBuf {
    // One process runs every test: a sequence number keeps equal names apart.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("sf-candle-{test}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Schedule-Free AdamW with warmup and decay, large enough steps to move every value.
pub fn sf_adamw() -> PresetConfig {
    PresetConfig::AdamWScheduleFree(schedulefree::AdamWScheduleFree {
        lr: 0.05,
        warmup_steps: 3,
        weight_decay: 0.01,
        ..Default::default()
    })
}
