//! Checkpoints: weights exported at x, resume bit-exact into a freshly built model (other
//! ParamIds), and state that does not match the module is an error, never silently dropped.

use crate::common;

use crate::common::{Mlp, grads, max_rel_diff, presets, same_bits, temp_dir, values};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Device;
use schedulefree_burn::{
    BurnAdapterError, ModelOptimizer, checkpoint_model_path, load_checkpoint, save_checkpoint,
};

const STEPS: usize = 10;
const SAVE_AT: usize = 5;

#[test]
fn resume_from_checkpoint_is_bit_exact_and_exports_x() {
    let device = Device::default().autodiff();
    for preset in presets() {
        let start = Mlp::new(&device, &[4, 8, 3]);
        // Uninterrupted run.
        let mut model = start.clone();
        let mut optim = ModelOptimizer::new(preset.clone()).expect("valid");
        optim.set_lr(preset.lr() * 0.5).expect("lr"); // configuration the checkpoint must keep
        for step in 0..STEPS {
            model = optim
                .step(model.clone(), grads(&model, step, &device))
                .expect("step")
                .0;
        }
        let want_y = values(&model);
        let want_x = values(&optim.eval_module(&model).expect("x"));

        // Interrupted run.
        let dir = temp_dir("ckpt");
        let mut model = start.clone();
        let mut optim = ModelOptimizer::new(preset.clone()).expect("valid");
        optim.set_lr(preset.lr() * 0.5).expect("lr");
        for step in 0..SAVE_AT {
            model = optim
                .step(model.clone(), grads(&model, step, &device))
                .expect("step")
                .0;
        }
        save_checkpoint(&model, &optim, &dir).expect("save");
        save_checkpoint(&model, &optim, &dir).expect("saving twice replaces the checkpoint");
        let records = std::fs::read_dir(&dir).expect("dir").filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".bpk"))
        });
        assert_eq!(
            records.count(),
            2,
            "older records are removed after the commit (one at x, one at y)"
        );

        let ckpt: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join(schedulefree_burn::CHECKPOINT_FILE)).expect("read"),
        )
        .expect("json");
        let train_file = ckpt["train_file"].as_str().expect("names the record at y");
        assert!(dir.join(train_file).is_file(), "the record at y exists");
        // The exported weights are x.
        let exported = Mlp::new(&device, &[4, 8, 3])
            .load_file(checkpoint_model_path(&dir).expect("model path"));
        assert!(same_bits(
            &values(&exported),
            &values(&optim.eval_module(&model).expect("x"))
        ));
        // (RAdam's first updates are rectified to zero, so there x = y still.)
        if preset.has_modes() && preset.name() != "radam_schedule_free" {
            assert!(
                max_rel_diff(&values(&exported), &values(&model)) > 0.0,
                "{}: export is x, not y",
                preset.name()
            );
        }

        // Resume in a fresh model (new ParamIds) and a fresh optimizer.
        let mut optim = ModelOptimizer::new(preset.clone()).expect("valid");
        let fresh = Mlp::new(&device, &[4, 8, 3]);
        assert_ne!(fresh.layers[0].weight.id, model.layers[0].weight.id);
        let mut model2 = load_checkpoint(fresh, &mut optim, &dir).expect("load");
        assert!(
            same_bits(&values(&model2), &values(&model)),
            "{}: y restored bit for bit",
            preset.name()
        );
        assert_eq!(optim.group_config().map(|g| g.lr), Some(preset.lr() * 0.5));
        for step in SAVE_AT..STEPS {
            model2 = optim
                .step(model2.clone(), grads(&model2, step, &device))
                .expect("step")
                .0;
        }
        assert!(
            same_bits(&values(&model2), &want_y),
            "{}: resumed y differs",
            preset.name()
        );
        assert!(
            same_bits(&values(&optim.eval_module(&model2).expect("x")), &want_x),
            "{}: resumed x differs",
            preset.name()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A module with other parameter paths.
#[derive(Module, Debug)]
struct Other {
    first: Linear,
}

#[test]
fn unmatched_state_is_an_error() {
    let device = Device::default().autodiff();
    let preset = presets().remove(0);
    let mut model = Mlp::new(&device, &[4, 8, 3]);
    let mut optim = ModelOptimizer::new(preset.clone()).expect("valid");
    model = optim
        .step(model.clone(), grads(&model, 0, &device))
        .expect("step")
        .0;

    // State loaded into an optimizer that then meets a module with other paths.
    let mut other_optim = ModelOptimizer::new(preset.clone()).expect("valid");
    other_optim
        .load_state(&optim.state().expect("state"))
        .expect("state loads");
    let other = Other {
        first: LinearConfig::new(4, 3).init(&device),
    };
    let x = common::matrix(6, 4, 1, &device);
    let g =
        burn::optim::GradientsParams::from_grads(other.first.forward(x).mean().backward(), &other);
    match other_optim.step(other.clone(), g) {
        Err(BurnAdapterError::UnmatchedState { paths, available }) => {
            assert_eq!(paths.len(), 4, "{paths:?}");
            assert!(available.contains(&"first.weight".to_string()));
        }
        r => panic!("expected UnmatchedState, got {:?}", r.map(|(_, i)| i)),
    }

    // Same paths, other shapes.
    let wide = Mlp::new(&device, &[4, 6, 3]);
    let g = grads(&wide, 0, &device);
    assert!(matches!(
        other_optim.step(wide, g),
        Err(BurnAdapterError::Shape { .. })
    ));

    // A checkpoint loaded into the wrong architecture.
    let dir = temp_dir("unmatched");
    save_checkpoint(&model, &optim, &dir).expect("save");
    let mut fresh = ModelOptimizer::new(preset).expect("valid");
    let before = fresh.state().expect("state");
    let err = load_checkpoint(
        Other {
            first: LinearConfig::new(4, 3).init(&device),
        },
        &mut fresh,
        &dir,
    );
    assert!(
        err.is_err(),
        "a record for other paths must not load silently"
    );
    assert_eq!(
        fresh.state().expect("state"),
        before,
        "the optimizer is unchanged on error"
    );
    // An eval-mode state is refused by load_state (it has no module to recover y from).
    let ckpt: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join(schedulefree_burn::CHECKPOINT_FILE)).expect("read"),
    )
    .expect("json");
    let st: schedulefree::OptimizerState =
        serde_json::from_value(ckpt["optimizer"]["state"].clone()).expect("state");
    assert!(matches!(
        fresh.load_state(&st),
        Err(BurnAdapterError::EvalModeState)
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
