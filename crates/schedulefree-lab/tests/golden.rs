//! Golden parity: every fixture in `golden/` (copied from the reference PyTorch runs, see
//! `golden/README.md`) replayed through our public presets, open and closed loop, within
//! tolerance; and proof that `sflab golden` fails on a corrupted fixture.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use schedulefree::Element;
use schedulefree_lab::golden::{
    Fixture, FixtureDtype, FixtureReport, LoopMode, ReplayOptions, Status, collect_fixture_paths,
    quadratic_gradient, replay_all, replay_fixture,
};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../golden")
}

/// Every fixture, open and closed loop, with the eval()/train() round trip after each step.
fn reports() -> &'static [FixtureReport] {
    static REPORTS: OnceLock<Vec<FixtureReport>> = OnceLock::new();
    REPORTS.get_or_init(|| {
        replay_all(&[golden_dir()], &[LoopMode::Open, LoopMode::Closed], true)
            .expect("golden directory readable")
    })
}

fn describe(r: &FixtureReport) -> String {
    schedulefree_lab::golden::report::format_report(r, true)
}

#[test]
fn every_supported_fixture_agrees_within_tolerance_open_and_closed_loop() {
    let reports = reports();
    let files = collect_fixture_paths(&[golden_dir()]).expect("listing");
    assert!(
        files.len() >= 50,
        "expected the full fixture set, found {}",
        files.len()
    );
    assert_eq!(reports.len(), 2 * files.len());
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| r.failed())
        .map(describe)
        .collect();
    assert!(
        failed.is_empty(),
        "golden replays failed:\n{}",
        failed.join("\n")
    );
    for mode in [LoopMode::Open, LoopMode::Closed] {
        let passed = reports
            .iter()
            .filter(|r| r.mode == mode && r.status == Status::Pass)
            .count();
        assert!(passed >= 45, "{mode:?}: only {passed} fixtures passed");
    }
}

#[test]
fn every_schedulefree_and_torch_fixture_is_supported() {
    for r in reports() {
        let must = r.reference.starts_with("schedulefree.")
            || r.reference.starts_with("torch.optim.")
            || r.reference == "pytorch_optimizer.AdamC";
        if must {
            assert_eq!(r.status, Status::Pass, "{}", describe(r));
        } else if r.status == Status::Skipped {
            assert!(
                r.reference.starts_with("pytorch_optimizer."),
                "unexpected skip: {}",
                describe(r)
            );
        }
    }
    // Every family of the README is present and replayed.
    for prefix in [
        "sgd_sf_",
        "adamw_sf_",
        "radam_sf_",
        "schedulefreewrapper",
        "torch_adamw_",
        "torch_sgd_",
        "f32_",
        "adamc_",
        "sfplus_",
    ] {
        let n = reports()
            .iter()
            .filter(|r| r.name.starts_with(prefix) && r.status == Status::Pass)
            .count();
        assert!(n >= 2, "family {prefix}: {n} passing replays");
    }
    // The index lists exactly the fixture files.
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(golden_dir().join("index.json")).expect("index.json"),
    )
    .expect("json");
    let cases = index["cases"].as_array().expect("cases");
    let files = collect_fixture_paths(&[golden_dir()]).expect("listing");
    assert_eq!(cases.len(), files.len());
    for c in cases {
        let f = c["file"].as_str().expect("file");
        assert!(
            golden_dir().join(f).is_file(),
            "{f} listed in index.json is missing"
        );
    }
}

#[test]
fn eval_train_round_trip_is_exercised_for_schedule_free_fixtures() {
    for r in reports()
        .iter()
        .filter(|r| r.status == Status::Pass && r.reference.starts_with("schedulefree."))
    {
        let c = r.comparison().expect("compared");
        for q in ["y", "x", "x (eval())", "y (train())"] {
            let found = c.quantities.iter().find(|x| x.name == q);
            assert!(
                found.is_some_and(|x| x.count > 0),
                "{}: {q} not compared",
                r.name
            );
        }
        assert!(
            c.quantities.iter().any(|q| q.name.starts_with("state.")),
            "{}: no state compared",
            r.name
        );
        // The ScheduleFree+ fixtures record no `ckp1_derived` (their `weight_sum` is compared).
        assert!(
            r.name.contains("sfplus_")
                || c.quantities
                    .iter()
                    .any(|q| q.name == "group.c (ckp1_derived)"),
            "{}: c not compared",
            r.name
        );
    }
}

/// pytorch_optimizer's `decoupling_c` (the averaging weight rescaled to
/// `min(1, c·(1 − β)·C)`) is replayed through `AdamWScheduleFree { decoupling_c, .. }`, open
/// and closed loop, `y`, `x` and `z` compared within 1e-12.
#[test]
fn decoupling_c_fixture_is_replayed_and_passes() {
    for mode in [LoopMode::Open, LoopMode::Closed] {
        let r = reports()
            .iter()
            .find(|r| r.name == "kz_schedulefree_adamw_decoupling_c" && r.mode == mode)
            .expect("fixture replayed");
        assert_eq!(r.status, Status::Pass, "{}", describe(r));
        let c = r.comparison().expect("compared, not skipped");
        assert!(c.mapping.contains("decoupling_c: 50"), "{}", c.mapping);
        for q in ["y", "x", "state.z"] {
            let found = c.quantities.iter().find(|x| x.name == q);
            assert!(
                found.is_some_and(|x| x.count > 0),
                "[{mode:?}]: {q} not compared"
            );
        }
    }
}

/// ScheduleFree+ (`sf_plus`): every fixture is replayed through `ScheduleFreePlus`, stepped
/// with the recorded loss (closed loop: the loss recomputed at our `y`), the official class
/// with the reference's stored-corrected L1 EMA and the patched one with our default raw EMA;
/// points, state, the Polyak step and the EMA compared.
#[test]
fn schedule_free_plus_fixtures_replay_with_both_ema_rules() {
    let plus: Vec<&FixtureReport> = reports()
        .iter()
        .filter(|r| r.name.contains("sfplus_"))
        .collect();
    assert!(plus.len() >= 12, "{} ScheduleFree+ replays", plus.len());
    for r in plus {
        assert_eq!(r.status, Status::Pass, "{}", describe(r));
        let c = r.comparison().expect("compared, not skipped");
        let ema = if r.reference.ends_with("(grad_l1_ema stored raw)") {
            "ema: Raw"
        } else {
            "ema: Reference"
        };
        assert!(c.mapping.contains(ema), "{}: {}", r.name, c.mapping);
        let mut wanted = vec![
            "y",
            "x",
            "state.z",
            "state.exp_avg",
            "state.exp_avg_sq",
            "group.grad_l1_ema",
            "group.scheduled_lr",
        ];
        if r.mode == LoopMode::Closed {
            wanted.push("function_value");
        }
        for q in wanted {
            let found = c.quantities.iter().find(|x| x.name == q);
            assert!(
                found.is_some_and(|x| x.count > 0),
                "{} [{:?}]: {q} not compared",
                r.name,
                r.mode
            );
        }
    }
}

/// pytorch_optimizer's AdamC (corrected decay `λ·γ_t²/γ_max` on groups flagged `normalized`,
/// ε before the bias correction) is replayed through `presets::AdamC`, not skipped: both
/// fixtures, open and closed loop, every recorded quantity compared within 1e-12.
#[test]
fn adamc_fixtures_are_replayed_and_pass() {
    for name in [
        "adamc_const_normalized",
        "adamc_warmup5_cosine30_two_groups",
    ] {
        for mode in [LoopMode::Open, LoopMode::Closed] {
            let r = reports()
                .iter()
                .find(|r| r.name == name && r.mode == mode)
                .expect("fixture replayed");
            assert_eq!(r.reference, "pytorch_optimizer.AdamC");
            assert_eq!(r.status, Status::Pass, "{}", describe(r));
            let c = r.comparison().expect("compared, not skipped");
            assert!(c.mapping.starts_with("AdamC("), "{}", c.mapping);
            for q in [
                "params",
                "state.exp_avg",
                "state.exp_avg_sq",
                "group.k",
                "group.lr",
            ] {
                let found = c.quantities.iter().find(|x| x.name == q);
                assert!(
                    found.is_some_and(|x| x.count > 0),
                    "{name} [{mode:?}]: {q} not compared"
                );
            }
            let groups = if name.ends_with("two_groups") { 2 } else { 1 };
            let lr = c
                .quantities
                .iter()
                .find(|q| q.name == "group.lr")
                .expect("lr compared");
            assert_eq!(
                lr.count,
                groups * c.steps,
                "{name}: every group's lr compared"
            );
        }
    }
}

fn check_gradient_model<T: Element>(fx: &Fixture) {
    // The gradient at the recorded training point reproduces the recorded gradient bit for bit
    // (README "Gradient model"): y before step 1 is `init`, before step t+1 the recorded y
    // (or params) of step t.
    let mut points: Vec<Vec<f64>> = fx.params.iter().map(|p| p.init.clone()).collect();
    for (s, rec) in fx.steps.iter().enumerate() {
        for (i, y) in points.iter().enumerate() {
            let y: Vec<T> = y.iter().map(|v| T::of(*v)).collect();
            let mut g = vec![T::zero(); y.len()];
            quadratic_gradient(
                &fx.gradient.a[i],
                &fx.gradient.b[i],
                &fx.gradient.noise[s][i],
                &y,
                &mut g,
            );
            let got: Vec<f64> = g.iter().map(|v| v.f64()).collect();
            assert_eq!(
                got,
                rec.grad[i],
                "{}: gradient of p{i} at step {}",
                fx.name,
                s + 1
            );
        }
        points = rec
            .y
            .clone()
            .or_else(|| rec.params.clone())
            .expect("y or params recorded");
    }
}

#[test]
fn closed_loop_gradient_model_is_bit_exact_at_the_recorded_points() {
    for path in collect_fixture_paths(&[golden_dir()]).expect("listing") {
        let fx = Fixture::load(&path).expect("fixture parses");
        match fx.dtype {
            FixtureDtype::Float64 => check_gradient_model::<f64>(&fx),
            FixtureDtype::Float32 => check_gradient_model::<f32>(&fx),
        }
    }
}

/// Split the parameters of a one-group fixture into two groups with identical settings
/// (`param_groups` overrides): groups are independent, so the trajectory is unchanged. Exercises
/// `add_group` / `add_param_to` and per-group scalars.
fn two_group_copy(file: &str, lr: f64, wd_key: &str, wd: f64) -> Fixture {
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(golden_dir().join(file)).expect("read"))
            .expect("json");
    v["param_groups"] = serde_json::json!([
        {"params": [0, 1], "lr": lr, wd_key: wd},
        {"params": [2], "lr": lr, wd_key: wd},
    ]);
    v["group_members"] = serde_json::json!([[0, 1], [2]]);
    for step in v["steps"].as_array_mut().expect("steps") {
        let lr = step["lr_group_before_step"][0].clone();
        step["lr_group_before_step"] = serde_json::json!([lr.clone(), lr]);
        let g = step["groups"][0].clone();
        step["groups"] = serde_json::json!([g.clone(), g]);
    }
    serde_json::from_value(v).expect("fixture")
}

#[test]
fn parameter_groups_with_overrides_replay_identically() {
    let cases = [
        two_group_copy(
            "sgd_sf_m0.9_w5_wd0.01_r0_wlp2.json",
            0.2,
            "weight_decay",
            0.01,
        ),
        two_group_copy(
            "adamw_sf_reference_w5_wd0.01_decayatz1.json",
            0.05,
            "weight_decay",
            0.01,
        ),
        two_group_copy(
            "radam_sf_silent1_wd0.01_r1_wlp2.json",
            0.05,
            "weight_decay",
            0.01,
        ),
        two_group_copy(
            "schedulefreewrapper_sgd.json",
            0.2,
            "weight_decay_at_y",
            0.01,
        ),
        two_group_copy(
            "torch_adamw_warmup5_cosine30.json",
            0.05,
            "weight_decay",
            0.01,
        ),
        two_group_copy(
            "torch_sgd_momentum_lineardecay.json",
            0.1,
            "weight_decay",
            0.001,
        ),
    ];
    for fx in &cases {
        for mode in [LoopMode::Open, LoopMode::Closed] {
            let r = replay_fixture(
                fx,
                &fx.name,
                ReplayOptions {
                    mode,
                    roundtrip: true,
                },
            );
            assert_eq!(r.status, Status::Pass, "{}", describe(&r));
            let c = r.comparison().expect("compared");
            let lr = c
                .quantities
                .iter()
                .find(|q| q.name == "group.lr")
                .expect("lr compared");
            assert_eq!(
                lr.count,
                2 * fx.steps.len(),
                "{}: both groups compared",
                fx.name
            );
        }
    }
}

fn sflab(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sflab"))
        .arg("golden")
        .args(args)
        .output()
        .expect("sflab runs")
}

#[test]
fn sflab_golden_exits_non_zero_on_a_corrupted_fixture() {
    let src = golden_dir().join("sgd_sf_m0.9_w5_wd0.01_r0_wlp2.json");
    let mut fx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&src).expect("read")).expect("json");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("golden-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");

    // The untouched copy passes ...
    let good = dir.join("good.json");
    std::fs::write(&good, serde_json::to_vec(&fx).expect("serialize")).expect("write");
    let out = sflab(&[good.as_os_str()]);
    assert!(
        out.status.success(),
        "clean copy failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // ... and a relative change of 1e-9 in one recorded x value (1000x the tolerance) fails.
    let v = &mut fx["steps"][10]["x"][1][2];
    let old = v.as_f64().expect("number");
    *v = serde_json::json!(old * (1.0 + 1e-9) + 1e-9);
    let bad = dir.join("bad.json");
    std::fs::write(&bad, serde_json::to_vec(&fx).expect("serialize")).expect("write");
    let out = sflab(&[bad.as_os_str(), "--mode".as_ref(), "open".as_ref()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "corrupted fixture passed:\n{stdout}");
    assert!(
        stdout.contains("FAIL") && stdout.contains("exceeds tolerance"),
        "{stdout}"
    );
    assert!(
        stdout.contains("step 11 p1[2]"),
        "worst location not reported:\n{stdout}"
    );

    // --json is machine readable and says FAIL too.
    let out = sflab(&[bad.as_os_str(), "--json".as_ref()]);
    assert!(!out.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json output");
    assert!(
        j.as_array()
            .expect("array")
            .iter()
            .all(|r| r["status"] == "FAIL"),
        "{j}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn directory_arguments_skip_index_and_schedules() {
    let files = collect_fixture_paths(&[golden_dir()]).expect("listing");
    assert!(files.iter().all(|f| {
        let n = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        n != "index.json" && n != "schedules.json" && n.ends_with(".json")
    }));
    assert!(collect_fixture_paths(&[golden_dir().join("does-not-exist.json")]).is_err());
}

#[test]
fn truncated_or_empty_trajectories_are_errors() {
    let src = golden_dir().join("sgd_sf_m0.9_w5_wd0.01_r0_wlp2.json");
    let fx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&src).expect("read")).expect("json");
    assert_eq!(fx["num_steps"], 30);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("golden-truncated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");

    let mut short = fx.clone();
    short["steps"].as_array_mut().expect("steps").truncate(10);
    let mut empty = fx.clone();
    empty["steps"] = serde_json::json!([]);
    let mut zero = empty.clone();
    zero["num_steps"] = serde_json::json!(0);
    for (name, v, message) in [
        ("short", short, "steps has 10 records, num_steps is 30"),
        ("empty", empty, "steps has 0 records, num_steps is 30"),
        ("zero", zero, "num_steps is 0"),
    ] {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_vec(&v).expect("serialize")).expect("write");
        let out = sflab(&[path.as_os_str()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success(),
            "{name}: exit 0 for an incomplete trajectory:\n{stdout}"
        );
        assert!(
            stdout.contains("ERROR") && stdout.contains(message),
            "{name}:\n{stdout}"
        );
        assert!(!stdout.contains("PASS"), "{name}:\n{stdout}");
    }

    // Per-step, per-parameter arrays of the wrong size are rejected before any replay.
    let good: Fixture = serde_json::from_value(fx).expect("fixture");
    good.validate().expect("the original fixture is consistent");
    let mut bad = good.clone();
    bad.steps[3].y.as_mut().expect("y")[1].pop();
    let e = bad.validate().expect_err("short y");
    assert!(
        format!("{e:#}").contains("steps[3].y[1] has 5 values, expected 6"),
        "{e:#}"
    );
    let mut bad = good.clone();
    bad.steps[7].x = None;
    let e = bad.validate().expect_err("missing x");
    assert!(format!("{e:#}").contains("steps[7].x is missing"), "{e:#}");
    let mut bad = good;
    bad.gradient.noise[29].pop();
    let e = bad.validate().expect_err("short noise");
    assert!(
        format!("{e:#}").contains("gradient.noise[29] has 2 tensors, expected 3"),
        "{e:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn naming_index_or_schedules_skips_them_with_a_note() {
    let index = golden_dir().join("index.json");
    let schedules = golden_dir().join("schedules.json");
    let out = sflab(&[index.as_os_str(), schedules.as_os_str()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains("missing field") && !stdout.contains("ERROR"),
        "{stdout}"
    );
    assert!(
        stdout.contains("index.json is not a trajectory fixture"),
        "{stdout}"
    );
    assert!(
        stdout.contains("schedules.json is not a trajectory fixture"),
        "{stdout}"
    );

    // Next to a real fixture, only that one is replayed.
    let fixture = golden_dir().join("sgd_sf_m0.9_w5_wd0.01_r0_wlp2.json");
    let reports = replay_all(&[index, fixture], &[LoopMode::Open], true).expect("replay");
    let statuses: Vec<Status> = reports.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Status::Skipped, Status::Pass]);
}
