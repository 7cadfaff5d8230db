//! A small MLP on the iris data set (150 flowers, 4 features, 3 classes; `data/libsvm/iris.libsvm`),
//! first with burn's AdamW, then with Schedule-Free AdamW through a one-line switch, validating
//! at the eval point `x`. Runs in about a second:
//! `cargo run --release -p schedulefree-burn --example burn_mlp`.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use schedulefree::{AdamWScheduleFree, PresetConfig};
use schedulefree_burn::{BurnAdapterError, TensorOptimizer};

#[derive(Module, Debug)]
struct Mlp {
    hidden: Linear,
    out: Linear,
}

impl Mlp {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.out.forward(relu(self.hidden.forward(x)))
    }
}

/// `(features, labels)` of the rows whose index satisfies `keep` (LIBSVM: `label i:v ...`).
fn load(
    keep: impl Fn(usize) -> bool,
    device: &Device,
) -> Result<(Tensor<2>, Tensor<1, Int>), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/libsvm/iris.libsvm"
    ))?;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (_, line) in text.lines().enumerate().filter(|(i, _)| keep(*i)) {
        let mut fields = line.split_whitespace();
        y.push(fields.next().ok_or("empty line")?.parse::<i64>()?);
        let mut row = [0.0_f32; 4];
        for f in fields {
            let (i, v) = f.split_once(':').ok_or("bad feature")?;
            row[i.parse::<usize>()? - 1] = v.parse()?;
        }
        x.extend(row);
    }
    let n = y.len();
    Ok((
        Tensor::from_data(TensorData::new(x, [n, 4]), device),
        Tensor::from_data(TensorData::new(y, [n]), device),
    ))
}

/// Full-batch training for 300 steps; `at_x` computes the validation model (identity for AdamW).
type ValidModel = Result<Mlp, BurnAdapterError>;

fn train(
    mut optim: ModuleOptimizer,
    at_x: impl Fn(&ModuleOptimizer, &Mlp) -> ValidModel,
) -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::default().autodiff();
    let (x, y) = load(|i| i % 5 != 0, &device)?; // 120 training rows
    let (vx, vy) = load(|i| i % 5 == 0, &Device::default())?; // 30 validation rows, no autodiff
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut model = Mlp {
        hidden: LinearConfig::new(4, 16).init(&device),
        out: LinearConfig::new(16, 3).init(&device),
    };
    for step in 1..=300 {
        let loss = loss_fn.forward(model.forward(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.clone().backward(), &model);
        model = optim.step(0.01, model, grads);
        if step % 100 == 0 {
            let valid = at_x(&optim, &model)?.valid();
            let correct: i64 = valid
                .forward(vx.clone())
                .argmax(1)
                .reshape([30])
                .equal(vy.clone())
                .int()
                .sum()
                .into_scalar();
            println!(
                "  step {step:3}: train loss {:.4}, validation accuracy {correct}/30",
                loss.into_scalar::<f32>()
            );
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("burn AdamW:");
    train(AdamWConfig::new().init(), |_, m| Ok(m.clone()))?;

    println!("Schedule-Free AdamW (validated at x):");
    let sf = TensorOptimizer::new(PresetConfig::AdamWScheduleFree(AdamWScheduleFree {
        warmup_steps: 20,
        ..Default::default()
    }))?;
    let optim: ModuleOptimizer = sf.clone().into(); // the one-line switch
    train(optim, |o, m| sf.eval_module(o, m))?;
    // Whole-model alternative with cheap eval at x, path-keyed checkpoints and BN recalibration:
    // `ModelOptimizer::new(preset)?`, `optim.step(model, grads)?`, `optim.eval_module(&model)?`.
    Ok(())
}
