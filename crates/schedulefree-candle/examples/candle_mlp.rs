//! Train a 4-32-3 MLP on iris with Schedule-Free AdamW; validate at x through the eval guard.
//! `cargo run --release -p schedulefree-candle --example candle_mlp`
use candle_core::{D, DType, Device, Tensor};
use candle_nn::{Module, Optimizer, VarBuilder, VarMap, linear, loss};
use schedulefree::AdamWScheduleFree;
use schedulefree_candle::{PresetConfig, ScheduleFreeOptimizer, seeded_init};

/// LIBSVM rows `label idx:value ...` (1-based indices) as dense features and labels.
fn read_libsvm(path: &str, dim: usize) -> Result<(Vec<f32>, Vec<u32>), Box<dyn std::error::Error>> {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for line in std::fs::read_to_string(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let mut fields = line.split_whitespace();
        ys.push(fields.next().ok_or("empty line")?.parse::<f32>()? as u32);
        let mut row = vec![0f32; dim];
        for kv in fields {
            let (k, v) = kv.split_once(':').ok_or("expected idx:value")?;
            row[k.parse::<usize>()? - 1] = v.parse()?;
        }
        xs.extend(row);
    }
    Ok((xs, ys))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dev = Device::Cpu;
    let (xs, ys) = read_libsvm(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/libsvm/iris.libsvm"),
        4,
    )?;
    let x = Tensor::from_vec(xs, (ys.len(), 4), &dev)?;
    let x = x
        .broadcast_sub(&x.mean_keepdim(0)?)?
        .broadcast_div(&x.var_keepdim(0)?.sqrt()?)?;
    let y = Tensor::from_vec(ys, x.dim(0)?, &dev)?;
    // Every fifth row validates.
    let (train, val): (Vec<u32>, Vec<u32>) = (0..y.dim(0)? as u32).partition(|i| i % 5 != 0);
    let split = |rows: Vec<u32>| -> candle_core::Result<(Tensor, Tensor)> {
        let idx = Tensor::new(rows, &dev)?;
        Ok((x.index_select(&idx, 0)?, y.index_select(&idx, 0)?))
    };
    let ((xt, yt), (xv, yv)) = (split(train)?, split(val)?);

    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let (l1, l2) = (linear(4, 32, vb.pp("l1"))?, linear(32, 3, vb.pp("l2"))?);
    seeded_init(&varmap, 0)?;
    let model = |x: &Tensor| l2.forward(&l1.forward(x)?.relu()?);
    let config = AdamWScheduleFree {
        lr: 0.01,
        warmup_steps: 20,
        weight_decay: 1e-4,
        ..Default::default()
    };
    let mut opt =
        ScheduleFreeOptimizer::from_varmap(&varmap, PresetConfig::AdamWScheduleFree(config))?;
    for step in 1..=300 {
        opt.backward_step(&loss::cross_entropy(&model(&xt)?, &yt)?)?;
        if step % 50 == 0 {
            let _at_x = opt.eval_guard()?; // validation at x; y comes back on drop
            let logits = model(&xv)?;
            let val_loss = loss::cross_entropy(&logits, &yv)?.to_scalar::<f32>()?;
            let acc = logits
                .argmax(D::Minus1)?
                .eq(&yv)?
                .to_dtype(DType::F32)?
                .mean_all()?
                .to_scalar::<f32>()?;
            println!("step {step:3}  val loss {val_loss:.4}  val acc {acc:.3}");
        }
    }
    Ok(())
}
