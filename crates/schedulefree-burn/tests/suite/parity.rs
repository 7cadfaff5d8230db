//! On the same gradients, both adapter paths hold exactly the core's parameters: the training
//! point `y` after every step and the eval point `x`, with a save/load of the optimizer state
//! half way.

use crate::common;

use std::collections::BTreeMap;

use crate::common::{Mlp, grad_values, grads, max_rel_diff, presets, same_bits, temp_dir, values};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use schedulefree::{DynOptimizer, Param, PresetConfig};
use schedulefree_burn::{ModelOptimizer, TensorOptimizer};

const STEPS: usize = 8;
const SAVE_AT: usize = 4;

/// The core over `Vec<f32>` buffers named by path: the oracle.
struct Core {
    opt: Box<dyn DynOptimizer<f32>>,
    y: BTreeMap<String, Vec<f32>>,
}

impl Core {
    fn new(
        preset: &PresetConfig,
        y: BTreeMap<String, Vec<f32>>,
        shapes: &BTreeMap<String, Vec<usize>>,
    ) -> Self {
        let mut opt = preset.build_dyn::<f32>().expect("valid preset");
        for (name, shape) in shapes {
            opt.add_param_to(0, name, shape).expect("new name");
        }
        Core { opt, y }
    }
    fn step(&mut self, g: &BTreeMap<String, Vec<f32>>) {
        let mut ps: Vec<Param<'_, f32>> = self
            .y
            .iter_mut()
            .map(|(n, v)| Param::new(n, v, &g[n]))
            .collect();
        self.opt.step(&mut ps).expect("train mode");
    }
    fn x(&self) -> BTreeMap<String, Vec<f32>> {
        self.y
            .iter()
            .map(|(n, v)| {
                let mut out = vec![0.0; v.len()];
                self.opt
                    .eval_params_into(n, v, &mut out)
                    .expect("registered");
                (n.clone(), out)
            })
            .collect()
    }
}

fn shapes(m: &Mlp) -> BTreeMap<String, Vec<usize>> {
    let mut s = BTreeMap::new();
    for (i, l) in m.layers.iter().enumerate() {
        s.insert(format!("layers.{i}.weight"), l.weight.val().dims().to_vec());
        if let Some(b) = &l.bias {
            s.insert(format!("layers.{i}.bias"), b.val().dims().to_vec());
        }
    }
    s
}

fn assert_equal(
    what: &str,
    preset: &PresetConfig,
    step: usize,
    got: &BTreeMap<String, Vec<f32>>,
    want: &BTreeMap<String, Vec<f32>>,
) {
    // Same inputs through the same core code: equal to the last bit (the brief's bound is f32
    // rounding; equality is stronger and holds).
    assert!(
        same_bits(got, want),
        "{} {what} differs from the core after step {step}: max rel diff {:e}",
        preset.name(),
        max_rel_diff(got, want)
    );
}

#[test]
fn model_optimizer_matches_core_for_y_and_x_across_save_load() {
    let device = Device::default().autodiff();
    for preset in presets() {
        let mut model = Mlp::new(&device, &[4, 8, 3]);
        let mut core = Core::new(&preset, values(&model), &shapes(&model));
        let mut optim = ModelOptimizer::new(preset.clone()).expect("valid preset");
        let file = temp_dir("parity-model").join("optim.json");
        for step in 0..STEPS {
            if step == SAVE_AT {
                optim.save(&file).expect("save");
                optim = ModelOptimizer::new(preset.clone()).expect("valid preset");
                optim.load(&file).expect("load");
            }
            let g = grads(&model, step, &device);
            let host_g = grad_values(&model, &g);
            assert_eq!(host_g.len(), 4, "every parameter has a gradient");
            let (next, info) = optim.step(model, g).expect("step");
            model = next;
            core.step(&host_g);
            assert_eq!(info.group.k, step as u64 + 1);
            assert_equal("y", &preset, step, &values(&model), &core.y);
            let x = optim.eval_module(&model).expect("eval point");
            assert_equal("x", &preset, step, &values(&x), &core.x());
            assert!(
                model.layers[0].weight.val().is_require_grad(),
                "the stepped module stays trainable"
            );
            // The eval copy validates without autodiff.
            let _ = x
                .valid()
                .forward(common::matrix(2, 4, 99, &Device::default()));
        }
        if preset.has_modes() {
            assert!(
                max_rel_diff(
                    &values(&optim.eval_module(&model).expect("x")),
                    &values(&model)
                ) > 0.0,
                "x differs from y"
            );
        }
    }
}

#[test]
fn tensor_optimizer_matches_core_for_y_and_x_across_save_load() {
    let device = Device::default().autodiff();
    for preset in presets() {
        let mut model = Mlp::new(&device, &[4, 8, 3]);
        let mut core = Core::new(&preset, values(&model), &shapes(&model));
        let tensor_optim = TensorOptimizer::new(preset.clone()).expect("valid preset");
        let mut optim: ModuleOptimizer = tensor_optim.clone().into();
        for step in 0..STEPS {
            if step == SAVE_AT {
                // Through burn's own record format (burnpack bytes) into a fresh ModuleOptimizer.
                let bytes = optim.into_bytes().expect("record");
                let fresh: ModuleOptimizer =
                    TensorOptimizer::new(preset.clone()).expect("valid").into();
                optim = fresh.from_bytes(bytes).expect("load record");
            }
            let g = grads(&model, step, &device);
            let host_g = grad_values(&model, &g);
            model = optim.step(preset.lr(), model, g);
            core.step(&host_g);
            assert!(tensor_optim.take_error().is_none());
            assert_equal("y", &preset, step, &values(&model), &core.y);
            let x = tensor_optim
                .eval_module(&optim, &model)
                .expect("eval point");
            assert_equal("x", &preset, step, &values(&x), &core.x());
            assert!(
                model.layers[1].weight.val().is_require_grad(),
                "the stepped module stays trainable"
            );
        }
    }
}
