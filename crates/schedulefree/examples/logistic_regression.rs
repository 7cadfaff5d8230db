//! A plain-Rust training loop with Schedule-Free AdamW: softmax regression on the bundled
//! iris dataset (LIBSVM format), minibatches of 16, evaluation at the averaged point `x`.
//!
//! ```sh
//! cargo run --release -p schedulefree --example logistic_regression [-- PATH.libsvm]
//! ```
//!
//! The loop is what any framework integration does: compute the gradient at the parameter
//! buffer (the training point `y` in train mode), call `step`, and switch to eval mode (the
//! buffer then holds `x`) to evaluate or checkpoint.

use std::error::Error;
use std::path::{Path, PathBuf};

use schedulefree::{AdamWScheduleFree, Param};

/// Labels and dense feature rows.
type Rows = (Vec<usize>, Vec<Vec<f64>>);

/// Rows of a LIBSVM file: (labels, dense features). Feature indices are 1-based.
fn read_libsvm(path: &Path) -> Result<Rows, Box<dyn Error>> {
    let text = std::fs::read_to_string(path)?;
    let (mut labels, mut rows) = (Vec::new(), Vec::new());
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let mut fields = line.split_whitespace();
        let label: f64 = fields.next().ok_or("empty line")?.parse()?;
        let mut row = Vec::new();
        for f in fields {
            let (i, v) = f
                .split_once(':')
                .ok_or_else(|| format!("line {}: {f:?}", n + 1))?;
            let i: usize = i.parse()?;
            if i == 0 {
                return Err(format!("line {}: feature index 0", n + 1).into());
            }
            if row.len() < i {
                row.resize(i, 0.0);
            }
            row[i - 1] = v.parse()?;
        }
        labels.push(label);
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(format!("{}: no rows", path.display()).into());
    }
    let d = rows.iter().map(Vec::len).max().unwrap_or(0);
    rows.iter_mut().for_each(|r| r.resize(d, 0.0));
    // Labels as class indices 0..k in sorted order (LIBSVM files use -1/1, 1..k or 0..k-1).
    let mut classes = labels.clone();
    classes.sort_by(f64::total_cmp);
    classes.dedup();
    let index = |l: &f64| classes.iter().position(|c| c == l).unwrap_or(0);
    Ok((labels.iter().map(index).collect(), rows))
}

/// Mean cross-entropy of softmax regression `θ = [W (k×d) | b (k)]` over `batch`, and its
/// gradient into `grad`.
fn loss_grad(
    theta: &[f32],
    x: &[Vec<f64>],
    y: &[usize],
    batch: &[usize],
    k: usize,
    grad: &mut [f32],
) -> f64 {
    let d = x[0].len();
    grad.fill(0.0);
    let mut loss = 0.0;
    for &i in batch {
        let logits: Vec<f64> = (0..k)
            .map(|c| {
                let w = &theta[c * d..(c + 1) * d];
                f64::from(theta[k * d + c])
                    + w.iter()
                        .zip(&x[i])
                        .map(|(w, v)| f64::from(*w) * v)
                        .sum::<f64>()
            })
            .collect();
        let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = logits.iter().map(|l| (l - max).exp()).sum();
        loss += z.ln() + max - logits[y[i]];
        for c in 0..k {
            let p = (logits[c] - max).exp() / z - f64::from(u8::from(c == y[i]));
            let s = p / batch.len() as f64;
            for (g, v) in grad[c * d..(c + 1) * d].iter_mut().zip(&x[i]) {
                *g += (s * v) as f32;
            }
            grad[k * d + c] += s as f32;
        }
    }
    loss / batch.len() as f64
}

fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/libsvm/iris.libsvm")
        });
    let (y, mut x) = read_libsvm(&path)?;
    let (n, d, k) = (x.len(), x[0].len(), y.iter().max().map_or(0, |m| m + 1));
    // Standardise each feature (Schedule-Free, like any first-order method, prefers it).
    for j in 0..d {
        let mean = x.iter().map(|r| r[j]).sum::<f64>() / n as f64;
        let sd = (x.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / n as f64)
            .sqrt()
            .max(1e-12);
        x.iter_mut().for_each(|r| r[j] = (r[j] - mean) / sd);
    }

    let mut opt = AdamWScheduleFree {
        lr: 0.01,
        warmup_steps: 50,
        ..Default::default()
    }
    .build::<f32>()?;
    opt.add_param("theta", &[k * d + k])?;
    let mut theta = vec![0.0f32; k * d + k];
    let mut grad = vec![0.0f32; k * d + k];
    let all: Vec<usize> = (0..n).collect();
    // A fixed pseudo-random row order per epoch (a small LCG keeps the example dependency-free).
    let mut order = all.clone();
    let mut seed = 0x2545_F491_4F6C_DD1D_u64;
    for epoch in 1..=30 {
        for i in (1..n).rev() {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            order.swap(i, (seed >> 33) as usize % (i + 1));
        }
        for batch in order.chunks(16) {
            loss_grad(&theta, &x, &y, batch, k, &mut grad);
            opt.step(&mut [Param::new("theta", &mut theta, &grad)])?;
        }
        if epoch % 10 == 0 {
            // Evaluate at x: eval mode swaps the buffer to the averaged point.
            opt.eval(&mut [Param::no_grad("theta", &mut theta)])?;
            let loss = loss_grad(&theta, &x, &y, &all, k, &mut grad);
            println!("epoch {epoch:2}: train loss at x {loss:.4}");
            opt.train(&mut [Param::no_grad("theta", &mut theta)])?;
        }
    }
    Ok(())
}
