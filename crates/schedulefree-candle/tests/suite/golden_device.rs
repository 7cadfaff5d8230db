//! The golden trajectories recorded from the reference PyTorch code (`golden/`, format in its
//! README) replayed through the device path (`Placement::Device`) on candle vars: every
//! fixture of a preset without a torch scheduler or parameter groups, fed its recorded
//! gradients (and, for ScheduleFree+, losses) open loop, must give the recorded training point `y` (or parameters) and
//! eval point `x` at every step: within `1e-12` relative in `f64`, `1e-6` in `f32`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use schedulefree::PresetConfig;
use schedulefree_candle::{Placement, ScheduleFreeOptimizer};
use serde_json::{Map, Value, json};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../golden")
}

/// The preset of a fixture's reference class and constructor arguments; `None` for classes
/// this replay does not map (closures, wrappers, third-party ports but the decoupled
/// `ScheduleFreeAdamW`, schedulers, groups).
fn preset(fx: &Value) -> Option<PresetConfig> {
    if !fx["scheduler"].is_null() || !fx["param_groups"].is_null() {
        return None;
    }
    let mut kwargs: Map<String, Value> = fx["optimizer_kwargs"].as_object()?.clone();
    kwargs.remove("foreach");
    let config = match fx["reference"].as_str()? {
        "schedulefree.SGDScheduleFree" => with_method("sgd_schedule_free", kwargs),
        "schedulefree.SGDScheduleFreeReference" => {
            with_method("sgd_schedule_free_reference", kwargs)
        }
        "schedulefree.AdamWScheduleFree" => with_method("adamw_schedule_free", kwargs),
        "schedulefree.AdamWScheduleFreePaper" => with_method("adamw_schedule_free_paper", kwargs),
        "schedulefree.RAdamScheduleFree" => with_method("radam_schedule_free", kwargs),
        "schedulefree.AdamWScheduleFreeReference" => {
            let decay_at_z = kwargs.remove("decay_at_z")?;
            json!({"method": "adamw_schedule_free_reference", "config": kwargs, "decay_at_z": decay_at_z})
        }
        // pytorch_optimizer's port, for its decoupled averaging weight (Refined SF-AdamW).
        "pytorch_optimizer.ScheduleFreeAdamW" if kwargs.contains_key("decoupling_c") => {
            with_method("adamw_schedule_free", kwargs)
        }
        // ScheduleFree+, with the reference's stored-corrected L1 EMA, and patched to keep it raw.
        "schedulefree.AdamCScheduleFreePlusPaper" => {
            kwargs.insert("ema".into(), json!("reference"));
            with_method("schedule_free_plus", kwargs)
        }
        "schedulefree.AdamCScheduleFreePlusPaper (grad_l1_ema stored raw)" => {
            with_method("schedule_free_plus", kwargs)
        }
        "torch.optim.AdamW" => json!({"method": "adamw", "config": kwargs}),
        "torch.optim.SGD" => json!({"method": "sgd", "config": kwargs}),
        _ => return None,
    };
    Some(serde_json::from_value(config).unwrap())
}

fn with_method(method: &str, mut kwargs: Map<String, Value>) -> Value {
    kwargs.insert("method".into(), json!(method));
    Value::Object(kwargs)
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn check(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}[{i}]: {g} vs recorded {w}"
        );
    }
}

/// Replay one fixture; returns whether it was mapped.
fn replay(file: &str, fx: &Value) -> bool {
    let Some(config) = preset(fx) else {
        return false;
    };
    let (dtype, tol) = match fx["dtype"].as_str().unwrap() {
        "float32" => (DType::F32, 1e-6),
        _ => (DType::F64, 1e-12),
    };
    let vars: Vec<Var> = fx["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let shape: Vec<usize> = p["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let t = Tensor::from_vec(floats(&p["init"]), shape, &Device::Cpu).unwrap();
            Var::from_tensor(&t.to_dtype(dtype).unwrap()).unwrap()
        })
        .collect();
    let mut opt = ScheduleFreeOptimizer::from_vars(vars.clone(), config).unwrap();
    opt.set_placement(Placement::Device).unwrap();
    let plain = fx["record_kind"] == "plain";
    for (t, rec) in fx["steps"].as_array().unwrap().iter().enumerate() {
        let mut grads = GradStore::default();
        for (i, v) in vars.iter().enumerate() {
            let g = Tensor::from_vec(floats(&rec["grad"][i]), v.shape(), &Device::Cpu).unwrap();
            grads.insert(v.as_tensor(), g.to_dtype(dtype).unwrap());
        }
        // ScheduleFree+ records the loss it was fed.
        let info = match rec["function_value"].as_f64() {
            Some(f) => opt.try_step_with_loss(&grads, f).unwrap(),
            None => opt.try_step(&grads).unwrap(),
        };
        assert!(info.skipped.is_none(), "{file}: step {t}");
        let x = opt.eval_point().unwrap();
        for (i, v) in vars.iter().enumerate() {
            let what = |p: &str| format!("{file}: step {} {p}[{i}]", t + 1);
            if plain {
                check(
                    &what("params"),
                    &values(v.as_tensor()),
                    &floats(&rec["params"][i]),
                    tol,
                );
            } else {
                check(
                    &what("y"),
                    &values(v.as_tensor()),
                    &floats(&rec["y"][i]),
                    tol,
                );
                check(&what("x"), &values(&x[i].1), &floats(&rec["x"][i]), tol);
            }
        }
    }
    true
}

#[test]
fn golden_trajectories_replay_through_the_device_path() {
    let mut replayed = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    entries.sort();
    for path in entries {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let fx: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if fx.get("steps").is_some() && replay(&file, &fx) {
            replayed.push(file);
        }
    }
    // Every Schedule-Free class of the reference package and torch's AdamW / SGD.
    for prefix in [
        "sgd_sf_m",
        "sgd_sf_reference",
        "f32_sgd_sf",
        "adamw_sf_b",
        "adamw_sf_paper",
        "adamw_sf_reference",
        "radam_sf",
        "kz_schedulefree_adamw_decoupling_c",
        "sfplus_defaults",
        "sfplus_wd0.5_pb0.9",
        "sfplus_fixedema_wd0.5",
        "f32_sfplus",
        "torch_adamw_const",
        "torch_sgd_plain",
    ] {
        assert!(
            replayed.iter().any(|f| f.starts_with(prefix)),
            "no `{prefix}*` fixture replayed: {replayed:?}"
        );
    }
    assert!(replayed.len() >= 35, "{} replayed", replayed.len());
}
