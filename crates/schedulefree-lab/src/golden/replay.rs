//! Replaying a fixture through our optimizer, step by step, comparing every recorded
//! quantity.

use std::collections::BTreeSet;
use std::path::Path;

use schedulefree::{Element, GroupConfig, Param};
use serde_json::Value;

use super::driver::{self, param_name};
use super::fixture::{Fixture, FixtureDtype, GradientModel, NON_FIXTURE_FILES, StateValue};
use super::method::{self, Plan, Support};
use super::report::{
    Comparison, ErrorTable, FixtureReport, Location, LoopMode, Outcome, ScheduleCheck,
};
use super::torch_scheduler;

/// How to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Open or closed loop.
    pub mode: LoopMode,
    /// After every step also switch to eval mode with `eval()` (compared with the recorded
    /// `x`) and back with `train()` (compared with the recorded `y`), then restore our `y`
    /// bits, as the generator did.
    pub roundtrip: bool,
}

/// The closed-loop gradient `g[r] = ((Σ_c A[r][c]·y[c]) − b[r]) + noise[r]`, summed left to
/// right from 0 in `T`, no FMA (README "Gradient model"). `a` is `n × n`, `b`, `noise`, `y` and
/// `out` have length `n`.
///
/// # Panics
/// If `a` has fewer rows than `out` or a row is shorter than `y` (the replay checks shapes
/// before calling).
pub fn quadratic_gradient<T: Element>(
    a: &[Vec<f64>],
    b: &[f64],
    noise: &[f64],
    y: &[T],
    out: &mut [T],
) {
    for (r, o) in out.iter_mut().enumerate() {
        let mut acc = T::zero();
        for (c, yc) in y.iter().enumerate() {
            acc = acc + T::of(a[r][c]) * *yc;
        }
        *o = (acc - T::of(b[r])) + T::of(noise[r]);
    }
}

fn gradient_into<T: Element>(
    model: &GradientModel,
    s: usize,
    y: &[Vec<T>],
    out: &mut [Vec<T>],
) -> anyhow::Result<()> {
    let noise = model
        .noise
        .get(s)
        .ok_or_else(|| anyhow::anyhow!("no noise for step {}", s + 1))?;
    for (i, (yi, oi)) in y.iter().zip(out.iter_mut()).enumerate() {
        let (a, b, n) = (&model.a[i], &model.b[i], &noise[i]);
        anyhow::ensure!(
            a.len() == yi.len()
                && a.iter().all(|row| row.len() == yi.len())
                && b.len() == yi.len()
                && n.len() == yi.len(),
            "gradient model of tensor {i} does not match its length {}",
            yi.len()
        );
        quadratic_gradient(a, b, n, yi, oi);
    }
    Ok(())
}

/// The ScheduleFree+ fixtures' loss at `y` (`record_semantics`): `f_offset + Σ_i q_i` with
/// `q_i = 0.5·yᵀA_i y − bᵀy + noiseᵀy`, each dot product summed left to right in `f64`
/// (numpy's order differs by rounding only).
fn quadratic_loss<T: Element>(
    model: &GradientModel,
    s: usize,
    y: &[Vec<T>],
) -> anyhow::Result<f64> {
    let noise = model
        .noise
        .get(s)
        .ok_or_else(|| anyhow::anyhow!("no noise for step {}", s + 1))?;
    let offset = model
        .f_offset
        .ok_or_else(|| anyhow::anyhow!("the gradient model has no f_offset"))?;
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).fold(0.0, |acc, (x, y)| acc + x * y);
    let mut f = offset;
    for (i, yi) in y.iter().enumerate() {
        let yi = widen(yi);
        let ay: Vec<f64> = model.a[i].iter().map(|row| dot(row, &yi)).collect();
        f += 0.5 * dot(&yi, &ay) - dot(&model.b[i], &yi) + dot(&noise[i], &yi);
    }
    Ok(f)
}

fn cast<T: Element>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::of(x)).collect()
}

fn widen<T: Element>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.f64()).collect()
}

/// A recorded per-tensor quantity of step `s` (e.g. `y`), checked for shape.
fn tensors<'a>(
    what: &str,
    s: usize,
    v: Option<&'a Vec<Vec<f64>>>,
    n: usize,
) -> anyhow::Result<&'a [Vec<f64>]> {
    let v = v.ok_or_else(|| anyhow::anyhow!("steps[{s}] has no `{what}`"))?;
    anyhow::ensure!(
        v.len() == n,
        "steps[{s}].{what} has {} tensors, expected {n}",
        v.len()
    );
    Ok(v)
}

/// Group scalars of the fixture and our counterpart (`k` is `step` in pytorch_optimizer).
const GROUP_SCALARS: [(&str, &str); 5] = [
    ("k", "group.k"),
    ("lr_max", "group.lr_max"),
    ("weight_sum", "group.weight_sum"),
    ("scheduled_lr", "group.scheduled_lr"),
    ("ckp1_derived", "group.c (ckp1_derived)"),
];

fn replay_typed<T: Element>(
    fx: &Fixture,
    plan: &Plan,
    opts: ReplayOptions,
) -> anyhow::Result<Comparison> {
    let n = fx.params.len();
    let members = fx.members();
    let shapes: Vec<Vec<usize>> = fx.params.iter().map(|p| p.shape.clone()).collect();
    let mut opt = driver::build::<T>(plan, &members, &shapes)?;
    let sf = fx.record_kind.is_schedule_free();
    let names: Vec<String> = (0..n).map(param_name).collect();
    let mut y: Vec<Vec<T>> = fx.params.iter().map(|p| cast(&p.init)).collect();
    let mut grads: Vec<Vec<T>> = y.iter().map(|v| vec![T::zero(); v.len()]).collect();
    let mut x: Vec<Vec<T>> = grads.clone();
    let mut table = ErrorTable::default();
    let mut not_compared = BTreeSet::new();
    let mut compared_slots = BTreeSet::new();

    for (s, rec) in fx.steps.iter().enumerate() {
        let t = s + 1;
        // Schedule-free presets have their warmup built in; a torch scheduler acting on
        // group['lr'] is replayed by setting the group's lr before the step, as a user would.
        if sf {
            for (g, &lr) in rec.lr_group_before_step.iter().enumerate() {
                let cfg = opt
                    .group_config(g)
                    .ok_or_else(|| anyhow::anyhow!("group {g} missing"))?;
                if cfg.lr != lr {
                    opt.set_group_config(g, GroupConfig { lr, ..cfg })?;
                }
            }
        }
        // ScheduleFree+ takes the loss at y (recorded; recomputed from our y in closed loop).
        let mut loss = rec.function_value;
        match opts.mode {
            LoopMode::Open => {
                for (g, r) in grads.iter_mut().zip(&rec.grad) {
                    *g = cast(r);
                }
            }
            LoopMode::Closed => {
                gradient_into(&fx.gradient, s, &y, &mut grads)?;
                for (i, (g, r)) in grads.iter().zip(&rec.grad).enumerate() {
                    table.record_tensor("grad", t, i, &widen(g), r);
                }
                if let Some(want) = loss {
                    let ours = quadratic_loss(&fx.gradient, s, &y)?;
                    let at = Location {
                        step: t,
                        index: 0,
                        element: 0,
                    };
                    table.record("function_value", at, ours, want);
                    loss = Some(ours);
                }
            }
        }
        {
            let mut params: Vec<Param<'_, T>> = names
                .iter()
                .zip(y.iter_mut())
                .zip(&grads)
                .map(|((nm, v), g)| Param::new(nm, v, g))
                .collect();
            let info = match loss {
                Some(f) => opt.step_with_loss(&mut params, f)?,
                None => opt.step(&mut params)?,
            };
            anyhow::ensure!(
                info.skipped.is_none(),
                "step {t} was skipped: {:?}",
                info.skipped
            );
        }

        // Points.
        if sf {
            let ry = tensors("y", s, rec.y.as_ref(), n)?;
            let rx = tensors("x", s, rec.x.as_ref(), n)?;
            for i in 0..n {
                opt.eval_params_into(&names[i], &y[i], &mut x[i])?;
                table.record_tensor("y", t, i, &widen(&y[i]), &ry[i]);
                table.record_tensor("x", t, i, &widen(&x[i]), &rx[i]);
            }
            if opts.roundtrip && opt.has_modes() {
                let saved = y.clone();
                {
                    let mut params: Vec<Param<'_, T>> = names
                        .iter()
                        .zip(y.iter_mut())
                        .map(|(nm, v)| Param::no_grad(nm, v))
                        .collect();
                    opt.eval(&mut params)?;
                }
                for i in 0..n {
                    table.record_tensor("x (eval())", t, i, &widen(&y[i]), &rx[i]);
                }
                {
                    let mut params: Vec<Param<'_, T>> = names
                        .iter()
                        .zip(y.iter_mut())
                        .map(|(nm, v)| Param::no_grad(nm, v))
                        .collect();
                    opt.train(&mut params)?;
                }
                for i in 0..n {
                    table.record_tensor("y (train())", t, i, &widen(&y[i]), &ry[i]);
                }
                // Continue from our exact y bits (the generator restored its own the same way).
                y = saved;
            }
        } else {
            let rp = tensors("params", s, rec.params.as_ref(), n)?;
            for i in 0..n {
                table.record_tensor("params", t, i, &widen(&y[i]), &rp[i]);
            }
        }

        // State buffers.
        for (i, st) in rec.state.iter().enumerate().take(n) {
            for (key, val) in st {
                match val {
                    StateValue::Tensor(v) => match opt.state_buffer(&names[i], key) {
                        Some(ours) => {
                            table.record_tensor(&format!("state.{key}"), t, i, &widen(&ours), v);
                            compared_slots.insert(key.clone());
                        }
                        None => {
                            not_compared.insert(format!("state.{key} (we keep no such buffer)"));
                        }
                    },
                    StateValue::Scalar(_) | StateValue::Other(_) => {
                        not_compared.insert(format!("state.{key} (scalar)"));
                    }
                }
            }
        }

        // Group scalars; learner group state recorded under the same name (ScheduleFree+'s
        // `grad_l1_ema`).
        let learner_state = if rec.groups.iter().any(|rg| rg.contains_key("grad_l1_ema")) {
            opt.state().groups
        } else {
            Vec::new()
        };
        for (g, rg) in rec.groups.iter().enumerate() {
            if let (Some(want), Some(ours)) = (
                rg.get("grad_l1_ema").and_then(Value::as_f64),
                learner_state
                    .get(g)
                    .and_then(|r| r.learner_state.get("grad_l1_ema")),
            ) {
                let at = Location {
                    step: t,
                    index: g,
                    element: 0,
                };
                table.record("group.grad_l1_ema", at, *ours, want);
            }
            let info = opt
                .group_info(g)
                .ok_or_else(|| anyhow::anyhow!("group {g} missing"))?;
            let at = Location {
                step: t,
                index: g,
                element: 0,
            };
            for (key, name) in GROUP_SCALARS {
                let key = if key == "k" && !rg.contains_key("k") {
                    "step"
                } else {
                    key
                };
                let Some(want) = rg.get(key).and_then(Value::as_f64) else {
                    continue;
                };
                let ours = match key {
                    "k" | "step" => info.k as f64,
                    "lr_max" => info.lr_max,
                    "weight_sum" => info.weight_sum,
                    "scheduled_lr" => info.lr,
                    _ => info.c,
                };
                table.record(name, at, ours, want);
            }
        }
        // The lr of step t: the scheduled lr for torch cases; the base lr for schedule-free.
        for (g, &want) in rec.lr_group_before_step.iter().enumerate() {
            let ours = if sf {
                opt.group_config(g).map_or(f64::NAN, |c| c.lr)
            } else {
                opt.group_info(g).map_or(f64::NAN, |i| i.lr)
            };
            table.record(
                "group.lr",
                Location {
                    step: t,
                    index: g,
                    element: 0,
                },
                ours,
                want,
            );
        }
    }

    for slot in opt.state().slots {
        if !compared_slots.contains(&slot) {
            not_compared.insert(format!("our slot `{slot}` (not recorded)"));
        }
    }
    let schedule_check = fx
        .scheduler
        .as_ref()
        .filter(|_| !sf)
        .map(|d| schedule_check(fx, plan, d));
    Ok(Comparison {
        mapping: format!("{:?}", plan.method),
        steps: fx.steps.len(),
        quantities: table.into_vec(),
        not_compared: not_compared.into_iter().collect(),
        schedule_check,
    })
}

fn schedule_check(fx: &Fixture, plan: &Plan, desc: &str) -> ScheduleCheck {
    let bases = method::initial_lrs(fx, plan);
    let result = (|| {
        let mut worst = 0.0_f64;
        for (g, &base) in bases.iter().enumerate() {
            let s = torch_scheduler::parse(desc, base)?;
            for (k, rec) in fx.steps.iter().enumerate() {
                worst = worst.max((base * s.value(k as u64) - rec.lr_group_before_step[g]).abs());
            }
        }
        Ok(worst)
    })();
    ScheduleCheck {
        description: desc.to_string(),
        result,
    }
}

/// Replay a parsed fixture in one mode.
pub fn replay_fixture(fx: &Fixture, file: &str, opts: ReplayOptions) -> FixtureReport {
    let outcome = match method::resolve(fx) {
        Err(e) => Outcome::Error {
            message: format!("{e:#}"),
        },
        Ok(Support::Skipped(reason)) => Outcome::Skipped { reason },
        Ok(Support::Supported(plan)) => {
            let r = match fx.dtype {
                FixtureDtype::Float64 => replay_typed::<f64>(fx, &plan, opts),
                FixtureDtype::Float32 => replay_typed::<f32>(fx, &plan, opts),
            };
            match r {
                Ok(c) => Outcome::Compared(c),
                Err(e) => Outcome::Error {
                    message: format!("{e:#}"),
                },
            }
        }
    };
    FixtureReport::new(
        file.to_string(),
        fx.name.clone(),
        fx.reference.clone(),
        Some(fx.dtype),
        opts.mode,
        outcome,
    )
}

/// Load a fixture and replay it in each of `modes` (an unreadable file gives one error
/// report per mode; `index.json` and `schedules.json`, which are not trajectories, one
/// skipped report per mode).
pub fn replay_path(path: &Path, modes: &[LoopMode], roundtrip: bool) -> Vec<FixtureReport> {
    let file = path.display().to_string();
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if NON_FIXTURE_FILES.contains(&file_name) {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let reason =
            format!("{file_name} is not a trajectory fixture (skipped, as in a directory listing)");
        return modes
            .iter()
            .map(|&mode| {
                FixtureReport::new(
                    file.clone(),
                    name.clone(),
                    String::new(),
                    None,
                    mode,
                    Outcome::Skipped {
                        reason: reason.clone(),
                    },
                )
            })
            .collect();
    }
    match Fixture::load(path) {
        Ok(fx) => modes
            .iter()
            .map(|&mode| replay_fixture(&fx, &file, ReplayOptions { mode, roundtrip }))
            .collect(),
        Err(e) => {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            modes
                .iter()
                .map(|&mode| {
                    FixtureReport::new(
                        file.clone(),
                        name.clone(),
                        String::new(),
                        None,
                        mode,
                        Outcome::Error {
                            message: format!("{e:#}"),
                        },
                    )
                })
                .collect()
        }
    }
}
