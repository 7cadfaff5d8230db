//! Resume is bit-exact (DESIGN.md §4): `N` steps equal `N/2` steps, `state()` → JSON →
//! `OptimizerState` → `load_state` into a freshly built optimizer → `N/2` steps, compared with
//! `to_bits` on every parameter and state buffer, for `f32` and `f64`; whatever order the
//! parameters are registered and passed in; through a file with `save_json` / `load_json`.
//! Loading mismatched state is a typed error naming the problem, and changes nothing.

use std::collections::BTreeMap;

use schedulefree::schedule::Cosine;
use schedulefree::{
    AdamW, AdamWScheduleFree, DynOptimizer, Element, OptimizerState, Param, RAdamScheduleFree,
    SgdScheduleFree, StateError,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    SgdSf,
    AdamWSfInnerMomentum,
    RAdamSf,
    AdamWCosine,
}

const METHODS: [Method; 4] = [
    Method::SgdSf,
    Method::AdamWSfInnerMomentum,
    Method::RAdamSf,
    Method::AdamWCosine,
];
const N: usize = 24;

fn build<T: Element>(m: Method) -> Box<dyn DynOptimizer<T>> {
    match m {
        Method::SgdSf => Box::new(
            SgdScheduleFree {
                lr: 0.2,
                weight_decay: 0.05,
                warmup_steps: 5,
                r: 0.5,
                ..Default::default()
            }
            .build::<T>()
            .expect("valid"),
        ),
        Method::AdamWSfInnerMomentum => Box::new(
            AdamWScheduleFree {
                lr: 0.05,
                weight_decay: 0.01,
                warmup_steps: 4,
                inner_momentum: 0.9,
                ..Default::default()
            }
            .build::<T>()
            .expect("valid"),
        ),
        Method::RAdamSf => Box::new(
            RAdamScheduleFree {
                lr: 0.05,
                weight_decay: 0.01,
                ..Default::default()
            }
            .build::<T>()
            .expect("valid"),
        ),
        Method::AdamWCosine => Box::new(
            AdamW {
                lr: 0.05,
                ..Default::default()
            }
            .build::<T, _>(Cosine::new(3, N as u64, 0.1).expect("valid"))
            .expect("valid"),
        ),
    }
}

/// The parameters: name, shape. "late" gets its first gradient after the resume point,
/// "never" never gets one.
const PARAMS: [(&str, &[usize]); 5] = [
    ("w", &[3, 2]),
    ("b", &[4]),
    ("empty", &[0]),
    ("late", &[2]),
    ("never", &[3]),
];

fn init<T: Element>() -> BTreeMap<String, Vec<T>> {
    PARAMS
        .iter()
        .enumerate()
        .map(|(p, (name, shape))| {
            let n: usize = shape.iter().product();
            (
                name.to_string(),
                (0..n)
                    .map(|i| T::of(((p * 5 + i) as f64 * 0.61).cos()))
                    .collect(),
            )
        })
        .collect()
}

/// Gradient of `½‖v − target‖²` plus a step-dependent term, evaluated at the buffer.
fn grad<T: Element>(step: usize, name: &str, v: &[T]) -> Option<Vec<T>> {
    match name {
        "never" => return None,
        "late" if step < N / 2 + 2 => return None,
        _ => {}
    }
    let salt = name.len() as f64;
    Some(
        v.iter()
            .enumerate()
            .map(|(i, &x)| x - T::of(0.3) + T::of(((step * 3 + i) as f64 + salt).sin()))
            .collect(),
    )
}

/// Run `steps` steps from `from`; params passed in `order` (a permutation of PARAMS).
fn run<T: Element>(
    opt: &mut dyn DynOptimizer<T>,
    bufs: &mut BTreeMap<String, Vec<T>>,
    steps: std::ops::Range<usize>,
    order: &[usize],
) {
    for step in steps {
        let grads: BTreeMap<String, Option<Vec<T>>> = bufs
            .iter()
            .map(|(n, v)| (n.clone(), grad(step, n, v)))
            .collect();
        // Split the map into disjoint &mut borrows, in the requested order.
        let mut slots: Vec<Option<(&String, &mut Vec<T>)>> = bufs.iter_mut().map(Some).collect();
        let names: Vec<&str> = PARAMS.iter().map(|p| p.0).collect();
        let mut params = Vec::new();
        for &i in order {
            let idx = slots
                .iter()
                .position(|s| s.as_ref().is_some_and(|(n, _)| n.as_str() == names[i]))
                .expect("name");
            let (n, v) = slots[idx].take().expect("once");
            let p = match &grads[n] {
                Some(g) => Param::new(n, v, g),
                None => Param::no_grad(n, v),
            };
            params.push(p);
        }
        let info = opt.step(&mut params).expect("train mode");
        assert!(info.skipped.is_none());
    }
}

fn register<T: Element>(opt: &mut dyn DynOptimizer<T>, order: &[usize]) {
    for &i in order {
        let (name, shape) = PARAMS[i];
        opt.add_param_to(0, name, shape).expect("new name");
    }
}

/// Compare two states bit for bit (PartialEq on f64 would equate 0.0 and −0.0).
fn assert_state_bits(a: &OptimizerState, b: &OptimizerState, what: &str) {
    assert_eq!(
        (&a.method, a.dtype, &a.slots, a.format_version),
        (&b.method, b.dtype, &b.slots, b.format_version),
        "{what}"
    );
    assert_eq!(a.groups.len(), b.groups.len());
    for (ga, gb) in a.groups.iter().zip(&b.groups) {
        assert_eq!(
            (
                ga.k,
                ga.lr_max.to_bits(),
                ga.weight_sum.to_bits(),
                ga.train_mode
            ),
            (
                gb.k,
                gb.lr_max.to_bits(),
                gb.weight_sum.to_bits(),
                gb.train_mode
            ),
            "{what}: group"
        );
    }
    assert_eq!(
        a.params.keys().collect::<Vec<_>>(),
        b.params.keys().collect::<Vec<_>>(),
        "{what}"
    );
    for (name, pa) in &a.params {
        let pb = &b.params[name];
        assert_eq!(
            (pa.group, &pa.shape, pa.updates),
            (pb.group, &pb.shape, pb.updates),
            "{what}: {name}"
        );
        assert_eq!(
            pa.buffers.keys().collect::<Vec<_>>(),
            pb.buffers.keys().collect::<Vec<_>>(),
            "{what}: {name}"
        );
        for (slot, va) in &pa.buffers {
            let vb = &pb.buffers[slot];
            let (ba, bb): (Vec<u64>, Vec<u64>) = (
                va.iter().map(|v| v.to_bits()).collect(),
                vb.iter().map(|v| v.to_bits()).collect(),
            );
            assert_eq!(ba, bb, "{what}: {name}.{slot}");
        }
    }
}

fn assert_bufs_bits<T: Element>(
    a: &BTreeMap<String, Vec<T>>,
    b: &BTreeMap<String, Vec<T>>,
    what: &str,
) {
    for (name, va) in a {
        let ba: Vec<u64> = va.iter().map(|v| v.f64().to_bits()).collect();
        let bb: Vec<u64> = b[name].iter().map(|v| v.f64().to_bits()).collect();
        assert_eq!(ba, bb, "{what}: parameter {name}");
    }
}

/// How the state travels between the two optimizers.
#[derive(Debug, Clone, Copy)]
enum Transport {
    JsonString,
    File,
}

fn resume_case<T: Element>(m: Method, order2: &[usize], transport: Transport) {
    let natural: Vec<usize> = (0..PARAMS.len()).collect();
    // Uninterrupted run.
    let mut full = build::<T>(m);
    register(&mut *full, &natural);
    let mut bufs_full = init::<T>();
    run(&mut *full, &mut bufs_full, 0..N, &natural);

    // First half, save.
    let mut first = build::<T>(m);
    register(&mut *first, &natural);
    let mut bufs = init::<T>();
    run(&mut *first, &mut bufs, 0..N / 2, &natural);
    let state = match transport {
        Transport::JsonString => {
            let json = serde_json::to_string(&first.state()).expect("serialize");
            serde_json::from_str::<OptimizerState>(&json).expect("parse")
        }
        Transport::File => {
            let path = std::env::temp_dir().join(format!(
                "schedulefree-resume-{}-{m:?}-{:?}.json",
                std::process::id(),
                T::DTYPE
            ));
            first.state().save_json(&path).expect("write");
            let st = OptimizerState::load_json(&path).expect("read");
            std::fs::remove_file(&path).expect("clean up");
            st
        }
    };
    assert_state_bits(&state, &first.state(), "serialization round trip");
    // The parameter buffers travel too (as f64, exact for f32).
    let saved: BTreeMap<String, Vec<f64>> = bufs
        .iter()
        .map(|(n, v)| (n.clone(), v.iter().map(|x| x.f64()).collect()))
        .collect();
    let json = serde_json::to_string(&saved).expect("serialize");
    let saved: BTreeMap<String, Vec<f64>> = serde_json::from_str(&json).expect("parse");
    drop(first);

    // Fresh optimizer, possibly registered and stepped in another order.
    let mut second = build::<T>(m);
    register(&mut *second, order2);
    second.load_state(&state).expect("compatible state");
    assert_state_bits(&second.state(), &state, "after load");
    let mut bufs2: BTreeMap<String, Vec<T>> = saved
        .into_iter()
        .map(|(n, v)| (n, v.into_iter().map(T::of).collect()))
        .collect();
    run(&mut *second, &mut bufs2, N / 2..N, order2);

    let what = format!("{m:?} {:?} order {order2:?} {transport:?}", T::DTYPE);
    assert_bufs_bits(&bufs_full, &bufs2, &what);
    assert_state_bits(&full.state(), &second.state(), &what);
    assert!(
        full.state_buffer("late", full.state().slots[0].as_str())
            .is_some(),
        "late got state after resume"
    );
    assert_eq!(full.group_info(0), second.group_info(0), "{what}");
}

#[test]
fn resume_is_bit_exact_f64() {
    for m in METHODS {
        resume_case::<f64>(m, &[0, 1, 2, 3, 4], Transport::JsonString);
    }
}

#[test]
fn resume_is_bit_exact_f32() {
    for m in METHODS {
        resume_case::<f32>(m, &[0, 1, 2, 3, 4], Transport::JsonString);
    }
}

#[test]
fn resume_is_bit_exact_in_another_order() {
    for m in METHODS {
        resume_case::<f64>(m, &[4, 2, 0, 3, 1], Transport::JsonString);
        resume_case::<f32>(m, &[3, 1, 4, 0, 2], Transport::JsonString);
    }
}

#[test]
fn resume_through_a_file_is_bit_exact() {
    for m in METHODS {
        resume_case::<f64>(m, &[1, 0, 2, 3, 4], Transport::File);
        resume_case::<f32>(m, &[0, 1, 2, 3, 4], Transport::File);
    }
}

/// Saving in eval mode restores eval mode; the buffers then hold `x` and must go back with
/// `train()` before stepping.
#[test]
fn resume_from_eval_mode() {
    let natural: Vec<usize> = (0..PARAMS.len()).collect();
    let mut a = build::<f64>(Method::AdamWSfInnerMomentum);
    register(&mut *a, &natural);
    let mut bufs = init::<f64>();
    run(&mut *a, &mut bufs, 0..5, &natural);
    let mut frozen: Vec<Param<'_, f64>> =
        bufs.iter_mut().map(|(n, v)| Param::no_grad(n, v)).collect();
    a.eval(&mut frozen).expect("all passed");
    drop(frozen);
    let st = a.state();
    assert!(!st.groups[0].train_mode);
    let mut b = build::<f64>(Method::AdamWSfInnerMomentum);
    register(&mut *b, &natural);
    b.load_state(&st).expect("load");
    let mut bufs_b = bufs.clone();
    for (o, bs) in [(&mut a, &mut bufs), (&mut b, &mut bufs_b)] {
        let g = vec![0.0; 6];
        let err = o
            .step(&mut [Param::new("w", bs.get_mut("w").expect("w"), &g)])
            .expect_err("eval mode");
        assert!(matches!(err, schedulefree::StepError::EvalMode { .. }));
        let mut frozen: Vec<Param<'_, f64>> =
            bs.iter_mut().map(|(n, v)| Param::no_grad(n, v)).collect();
        o.train(&mut frozen).expect("all passed");
    }
    assert_bufs_bits(&bufs, &bufs_b, "after train()");
    run(&mut *a, &mut bufs, 5..10, &natural);
    run(&mut *b, &mut bufs_b, 5..10, &natural);
    assert_bufs_bits(&bufs, &bufs_b, "continued");
    assert_state_bits(&a.state(), &b.state(), "continued");
}

// ---------------------------------------------------------------------------------------
// Mismatches.
// ---------------------------------------------------------------------------------------

/// A stepped optimizer of method `m` with params "w" [3] and "b" [2].
fn stepped<T: Element>(m: Method, names: &[(&str, &[usize])]) -> Box<dyn DynOptimizer<T>> {
    let mut o = build::<T>(m);
    for (n, s) in names {
        o.add_param_to(0, n, s).expect("new");
    }
    let mut bufs: Vec<Vec<T>> = names
        .iter()
        .map(|(_, s)| vec![T::of(0.5); s.iter().product()])
        .collect();
    for k in 0..3 {
        let grads: Vec<Vec<T>> = bufs
            .iter()
            .map(|b| b.iter().map(|&v| v + T::of(k as f64)).collect())
            .collect();
        let mut params: Vec<Param<'_, T>> = bufs
            .iter_mut()
            .zip(&grads)
            .zip(names)
            .map(|((b, g), (n, _))| Param::new(n, b, g))
            .collect();
        o.step(&mut params).expect("train");
    }
    o
}

const WB: [(&str, &[usize]); 2] = [("w", &[3]), ("b", &[2])];

/// Load `st` into `target`, expect an error, and check that `target` is unchanged.
fn refused<T: Element>(target: &mut dyn DynOptimizer<T>, st: &OptimizerState) -> StateError {
    let before = target.state();
    let info = target.group_info(0);
    let err = target.load_state(st).expect_err("mismatch must be refused");
    assert_state_bits(&target.state(), &before, "unchanged after a failed load");
    assert_eq!(target.group_info(0), info);
    err
}

#[test]
fn unknown_and_missing_names_are_reported() {
    let src = stepped::<f64>(Method::SgdSf, &[("w", &[3]), ("extra", &[2])]);
    let mut dst = stepped::<f64>(Method::SgdSf, &WB);
    match refused(&mut *dst, &src.state()) {
        StateError::Names {
            missing,
            unexpected,
        } => {
            assert_eq!(missing, ["b"]);
            assert_eq!(unexpected, ["extra"]);
        }
        e => panic!("expected Names, got {e:?}"),
    }
    let msg = refused(&mut *dst, &src.state()).to_string();
    assert!(msg.contains("\"b\"") && msg.contains("\"extra\""), "{msg}");
}

#[test]
fn wrong_shape_is_reported() {
    let src = stepped::<f64>(Method::SgdSf, &[("w", &[3]), ("b", &[1, 2])]);
    let mut dst = stepped::<f64>(Method::SgdSf, &WB);
    match refused(&mut *dst, &src.state()) {
        StateError::Param { name, what } => {
            assert_eq!(name, "b");
            assert!(
                what.contains("shape") && what.contains("[1, 2]") && what.contains("[2]"),
                "{what}"
            );
        }
        e => panic!("expected Param, got {e:?}"),
    }
    // A buffer whose length disagrees with its shape (a hand-edited file).
    let mut st = dst.state();
    st.params
        .get_mut("w")
        .expect("w")
        .buffers
        .get_mut("z")
        .expect("z")
        .pop();
    match refused(&mut *dst, &st) {
        StateError::Param { name, what } => {
            assert!(name == "w" && what.contains("`z`"), "{name}: {what}")
        }
        e => panic!("expected Param, got {e:?}"),
    }
    // A missing buffer (one of several: an empty set means "no state yet" and is valid).
    let mut dst = stepped::<f64>(Method::AdamWSfInnerMomentum, &WB);
    let mut st = dst.state();
    st.params.get_mut("w").expect("w").buffers.remove("exp_avg");
    match refused(&mut *dst, &st) {
        StateError::Param { name, what } => {
            assert!(name == "w" && what.contains("exp_avg"), "{name}: {what}")
        }
        e => panic!("expected Param, got {e:?}"),
    }
    // An extra buffer.
    let mut st = dst.state();
    st.params
        .get_mut("b")
        .expect("b")
        .buffers
        .insert("momentum_buffer".into(), vec![0.0; 2]);
    assert!(matches!(refused(&mut *dst, &st), StateError::Param { name, .. } if name == "b"));
}

#[test]
fn wrong_dtype_is_reported() {
    let src = stepped::<f32>(Method::AdamWSfInnerMomentum, &WB);
    let mut dst = stepped::<f64>(Method::AdamWSfInnerMomentum, &WB);
    let err = refused(&mut *dst, &src.state());
    assert!(matches!(err, StateError::Dtype { .. }), "{err:?}");
    assert!(
        err.to_string().contains("F32") && err.to_string().contains("F64"),
        "{err}"
    );
    // And the reverse: an f64 state into an f32 optimizer.
    let src = stepped::<f64>(Method::AdamWSfInnerMomentum, &WB);
    let mut dst = stepped::<f32>(Method::AdamWSfInnerMomentum, &WB);
    assert!(matches!(
        refused(&mut *dst, &src.state()),
        StateError::Dtype { .. }
    ));
    // A hand-edited f32 state holding values that are not f32.
    let mut st = dst.state();
    st.params
        .get_mut("w")
        .expect("w")
        .buffers
        .get_mut("z")
        .expect("z")[0] = 0.1;
    assert!(matches!(refused(&mut *dst, &st), StateError::Param { name, .. } if name == "w"));
}

#[test]
fn wrong_method_is_reported() {
    let src = stepped::<f64>(Method::SgdSf, &WB);
    let mut dst = stepped::<f64>(Method::AdamWSfInnerMomentum, &WB);
    let err = refused(&mut *dst, &src.state());
    match &err {
        StateError::Method { found, expected } => {
            assert!(
                found.contains("sgd") && expected.contains("adam"),
                "{found} / {expected}"
            );
        }
        e => panic!("expected Method, got {e:?}"),
    }
    // Same learner, different conversion (last iterate vs Schedule-Free).
    let src = stepped::<f64>(Method::AdamWCosine, &WB);
    assert!(matches!(
        refused(&mut *dst, &src.state()),
        StateError::Method { .. }
    ));
    // Same names, but the inner momentum changes the slot set.
    let plain = AdamWScheduleFree::default().build::<f64>().expect("valid");
    let mut plain: Box<dyn DynOptimizer<f64>> = Box::new(plain);
    for (n, s) in WB {
        plain.add_param_to(0, n, s).expect("new");
    }
    assert!(matches!(
        refused(&mut *plain, &dst.state()),
        StateError::Method { .. }
    ));
}

#[test]
fn wrong_version_and_group_count_are_reported() {
    let mut dst = stepped::<f64>(Method::SgdSf, &WB);
    let mut st = dst.state();
    st.format_version += 1;
    assert!(matches!(
        refused(&mut *dst, &st),
        StateError::Version { .. }
    ));
    let mut st = dst.state();
    st.groups.push(st.groups[0].clone());
    assert!(matches!(
        refused(&mut *dst, &st),
        StateError::Groups {
            found: 2,
            expected: 1
        }
    ));
}

/// After a refused load the optimizer continues exactly as if the attempt never happened.
#[test]
fn failed_load_leaves_the_trajectory_untouched() {
    let mut a = stepped::<f64>(Method::AdamWSfInnerMomentum, &WB);
    let mut b = stepped::<f64>(Method::AdamWSfInnerMomentum, &WB);
    // A state whose first parameter is fine and second is not: nothing may be written.
    let mut st = stepped::<f64>(Method::AdamWSfInnerMomentum, &WB).state();
    for r in st.params.values_mut() {
        for buf in r.buffers.values_mut() {
            buf.iter_mut().for_each(|v| *v += 1.0);
        }
    }
    st.params.get_mut("w").expect("w").shape = vec![4];
    st.groups[0].k += 100;
    refused(&mut *b, &st);
    let (mut wa, mut ba, mut wb, mut bb) = (vec![0.1; 3], vec![0.2; 2], vec![0.1; 3], vec![0.2; 2]);
    for k in 0..4 {
        let (gw, gb) = (vec![k as f64; 3], vec![1.0 - k as f64; 2]);
        a.step(&mut [Param::new("w", &mut wa, &gw), Param::new("b", &mut ba, &gb)])
            .expect("train");
        b.step(&mut [Param::new("b", &mut bb, &gb), Param::new("w", &mut wb, &gw)])
            .expect("train");
    }
    assert_eq!((wa, ba), (wb, bb));
    assert_state_bits(&a.state(), &b.state(), "continued");
}

/// Concurrent saves to one path never interleave: the file is always one complete state.
#[test]
fn concurrent_saves_to_one_path_stay_whole() {
    let path = std::env::temp_dir().join(format!(
        "schedulefree-concurrent-{}.json",
        std::process::id()
    ));
    let states: Vec<OptimizerState> = (0..4)
        .map(|i| {
            let names: Vec<(String, Vec<usize>)> =
                (0..20).map(|j| (format!("p{j}"), vec![50 + i])).collect();
            let names: Vec<(&str, &[usize])> = names
                .iter()
                .map(|(n, s)| (n.as_str(), s.as_slice()))
                .collect();
            stepped::<f64>(Method::AdamWSfInnerMomentum, &names).state()
        })
        .collect();
    std::thread::scope(|s| {
        for st in &states {
            let path = &path;
            s.spawn(move || {
                for _ in 0..10 {
                    st.save_json(path).expect("write");
                }
            });
        }
    });
    let back = OptimizerState::load_json(&path).expect("a whole state");
    assert!(states.contains(&back));
    std::fs::remove_file(&path).expect("clean up");
    let leftovers = std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!(".schedulefree-concurrent-{}", std::process::id()))
        })
        .count();
    assert_eq!(leftovers, 0, "no temporary files left behind");
}

#[test]
fn non_finite_buffers_round_trip_through_json() {
    // A diverged run (huge finite gradients) leaves ±inf in the state; the checkpoint must
    // still load.
    let mut opt = schedulefree::SgdScheduleFree {
        lr: 10.0,
        ..Default::default()
    }
    .build::<f64>()
    .expect("config");
    opt.add_param("w", &[2]).expect("name");
    let mut w = vec![1.0, -1.0];
    let g = vec![1e308, -1e308];
    opt.step(&mut [Param::new("w", &mut w, &g)]).expect("step");
    let st = opt.state();
    assert!(
        st.params["w"].buffers["z"].iter().any(|v| !v.is_finite()),
        "test needs a non-finite buffer"
    );
    let json = serde_json::to_string(&st).expect("serialize");
    let back: OptimizerState = serde_json::from_str(&json).expect("non-finite values load back");
    for (a, b) in st.params["w"].buffers["z"]
        .iter()
        .zip(&back.params["w"].buffers["z"])
    {
        assert!(
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            "{a} vs {b}"
        );
    }
}

#[test]
fn group_info_and_slotless_state_survive_a_resume() {
    let build = || {
        let mut o = schedulefree::presets::TorchSgd {
            lr: 0.1,
            ..Default::default()
        }
        .build::<f64, _>(schedulefree::schedule::Constant)
        .expect("config");
        o.add_param("w", &[2]).expect("name");
        o
    };
    let mut a = build();
    let mut w = vec![1.0, 2.0];
    let g = vec![0.5, 0.5];
    a.step(&mut [Param::new("w", &mut w, &g)]).expect("step");
    let mut b = build();
    b.load_state(&a.state()).expect("load");
    assert_eq!(a.group_info(0), b.group_info(0));
    assert_eq!(b.group_info(0).expect("group").k, 1);
    // Last-iterate SGD keeps no slots, but the parameter has been trained: a mode switch
    // that omits it must still be refused after the resume.
    assert!(
        matches!(b.eval(&mut []), Err(schedulefree::StepError::MissingParameter(n)) if n == "w")
    );
}
