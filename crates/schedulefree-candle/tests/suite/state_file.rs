//! Optimizer state files: what they contain, and typed errors for files that do not fit.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;

use crate::common::{Mlp, sf_adamw, temp_dir};
use candle_core::{DType, Device};
use safetensors::SafeTensors;
use schedulefree::{PresetConfig, SgdScheduleFree, StateError};
use schedulefree_candle::{CandleAdapterError, OPTIMIZER_FORMAT, ScheduleFreeOptimizer};

/// A trained optimizer and the file it saved.
fn saved(test: &str) -> (Mlp, ScheduleFreeOptimizer, std::path::PathBuf) {
    let mlp = Mlp::new(11);
    let mut opt = ScheduleFreeOptimizer::from_varmap(&mlp.varmap, sf_adamw()).unwrap();
    for b in 0..3 {
        opt.try_step(&mlp.grads(b)).unwrap();
    }
    let path = temp_dir(test).join("opt.safetensors");
    opt.save(&path).unwrap();
    (mlp, opt, path)
}

type Entry = (String, safetensors::Dtype, Vec<usize>, Vec<u8>);

/// Rewrite the file at `path` through `edit` (tensors and metadata).
fn rewrite(path: &Path, edit: impl FnOnce(&mut Vec<Entry>, &mut HashMap<String, String>)) {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<Entry> = st
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                v.dtype(),
                v.shape().to_vec(),
                v.data().to_vec(),
            )
        })
        .collect();
    edit(&mut tensors, &mut meta);
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
}

fn fresh(mlp: &Mlp) -> ScheduleFreeOptimizer {
    ScheduleFreeOptimizer::from_varmap(&mlp.varmap, sf_adamw()).unwrap()
}

#[test]
fn file_holds_slot_tensors_and_scalar_metadata() {
    let (_, opt, path) = saved("state-contents");
    let bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort();
    assert_eq!(
        names,
        [
            "l1.bias/exp_avg_sq",
            "l1.bias/z",
            "l1.weight/exp_avg_sq",
            "l1.weight/z",
            "l2.bias/exp_avg_sq",
            "l2.bias/z",
            "l2.weight/exp_avg_sq",
            "l2.weight/z"
        ]
    );
    let z = st.tensor("l1.weight/z").unwrap();
    assert_eq!(z.dtype(), safetensors::Dtype::F32);
    assert_eq!(z.shape(), [5, 3]);
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().unwrap();
    assert_eq!(meta["format"], OPTIMIZER_FORMAT);
    let state: serde_json::Value = serde_json::from_str(&meta["state"]).unwrap();
    assert_eq!(state["groups"][0]["k"], 3);
    assert_eq!(state["groups"][0]["train_mode"], true);
    assert_eq!(state["params"]["l1.weight"]["updates"], 3);
    let preset: PresetConfig = serde_json::from_str(&meta["preset"]).unwrap();
    assert_eq!(&preset, opt.config());
}

#[test]
fn round_trip_restores_the_exact_state() {
    let (mlp, opt, path) = saved("state-round-trip");
    let mut other = fresh(&mlp);
    other.load(&path).unwrap();
    assert_eq!(other.state().unwrap(), opt.state().unwrap());
    assert_eq!(other.step_info(), opt.step_info());
}

#[test]
fn missing_tensor_is_a_typed_error() {
    let (mlp, _, path) = saved("state-missing");
    rewrite(&path, |t, _| t.retain(|e| e.0 != "l2.bias/z"));
    let err = fresh(&mlp).load(&path).unwrap_err();
    assert!(
        matches!(&err, CandleAdapterError::MissingTensor { name, .. } if name == "l2.bias/z"),
        "{err}"
    );
}

#[test]
fn extra_tensor_is_a_typed_error() {
    let (mlp, _, path) = saved("state-extra");
    rewrite(&path, |t, _| {
        t.push((
            "l2.bias/momentum".into(),
            safetensors::Dtype::F32,
            vec![2],
            vec![0; 8],
        ))
    });
    let err = fresh(&mlp).load(&path).unwrap_err();
    assert!(
        matches!(&err, CandleAdapterError::UnexpectedTensor { name, .. } if name == "l2.bias/momentum"),
        "{err}"
    );
}

#[test]
fn mis_shaped_tensor_is_a_typed_error() {
    let (mlp, _, path) = saved("state-shape");
    // Same element count, transposed shape.
    rewrite(&path, |t, _| {
        t.iter_mut()
            .filter(|e| e.0 == "l1.weight/z")
            .for_each(|e| e.2 = vec![3, 5])
    });
    let err = fresh(&mlp).load(&path).unwrap_err();
    assert!(
        matches!(&err, CandleAdapterError::TensorMismatch { name, .. } if name == "l1.weight/z"),
        "{err}"
    );
}

#[test]
fn wrong_dtype_tensor_is_a_typed_error() {
    let (mlp, _, path) = saved("state-dtype");
    rewrite(&path, |t, _| {
        for e in t.iter_mut().filter(|e| e.0 == "l2.bias/z") {
            e.1 = safetensors::Dtype::F64;
            e.3 = vec![0; 16];
        }
    });
    let err = fresh(&mlp).load(&path).unwrap_err();
    assert!(
        matches!(&err, CandleAdapterError::TensorMismatch { name, .. } if name == "l2.bias/z"),
        "{err}"
    );
}

#[test]
fn state_of_other_parameters_is_a_core_error_and_changes_nothing() {
    let (_, _, path) = saved("state-names");
    // A model with an extra parameter: the file lacks it.
    let mlp = Mlp::new(2);
    mlp.varmap
        .get(3, "extra", candle_nn::init::ZERO, DType::F32, &Device::Cpu)
        .unwrap();
    let mut opt = fresh(&mlp);
    opt.try_step(&mlp.grads(0)).unwrap();
    let before = opt.state().unwrap();
    let err = opt.load(&path).unwrap_err();
    assert!(
        matches!(&err, CandleAdapterError::State(StateError::Names { missing, .. }) if missing == &["extra".to_string()]),
        "{err}"
    );
    assert_eq!(opt.state().unwrap(), before);
}

#[test]
fn state_of_another_method_is_a_core_error() {
    let (mlp, _, path) = saved("state-method");
    let mut sgd = ScheduleFreeOptimizer::from_varmap(
        &mlp.varmap,
        PresetConfig::SgdScheduleFree(SgdScheduleFree::default()),
    )
    .unwrap();
    let err = sgd.load(&path).unwrap_err();
    assert!(
        matches!(err, CandleAdapterError::State(StateError::Method { .. })),
        "{err}"
    );
}

#[test]
fn f32_state_does_not_load_into_an_f64_optimizer() {
    let (_, _, path) = saved("state-f64");
    let mlp = Mlp::with_dtype(11, DType::F64);
    let err = fresh(&mlp).load(&path).unwrap_err();
    assert!(
        matches!(err, CandleAdapterError::State(StateError::Dtype { .. })),
        "{err}"
    );
}

#[test]
fn broken_metadata_and_files_are_typed_errors() {
    let (mlp, _, path) = saved("state-meta");
    rewrite(&path, |_, m| {
        m.remove("state");
    });
    let err = fresh(&mlp).load(&path).unwrap_err();
    assert!(
        matches!(&err, CandleAdapterError::Metadata { key, .. } if key == "state"),
        "{err}"
    );
    std::fs::write(&path, b"not a safetensors file").unwrap();
    assert!(matches!(
        fresh(&mlp).load(&path),
        Err(CandleAdapterError::Safetensors { .. })
    ));
    let gone = path.with_file_name("nothing-here.safetensors");
    assert!(matches!(
        fresh(&mlp).load(&gone),
        Err(CandleAdapterError::Io { .. })
    ));
}
