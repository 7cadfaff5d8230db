//! Per-group averaging settings (`Optimizer::set_group_averaging`): a group with its own `r`,
//! `weight_lr_power` or `c_warmup` follows, bit for bit, an optimizer built with those values
//! for all its parameters; settings a conversion does not have are typed errors.

use schedulefree::conversion::{
    AveragingWeights, GroupAveraging, LastIterate, PolyakAverage, ScheduleFree,
};
use schedulefree::decay::DecoupledAtY;
use schedulefree::learner::Sgd;
use schedulefree::schedule::Constant;
use schedulefree::{ConfigError, GroupConfig, Optimizer, Param};

type Sf = Optimizer<f64, Sgd, ScheduleFree, DecoupledAtY, Constant>;

fn sf(weights: AveragingWeights, c_warmup: u64) -> Sf {
    let conv = ScheduleFree {
        weights,
        c_warmup,
        ..Default::default()
    };
    let group = GroupConfig {
        lr: 0.3,
        weight_decay: 0.01,
    };
    Optimizer::new(Sgd::plain(), conv, DecoupledAtY, Constant, group).expect("valid")
}

fn grad(w: &[f64], s: usize) -> Vec<f64> {
    w.iter()
        .enumerate()
        .map(|(i, v)| v - 0.5 + ((s + i) as f64 * 0.9).sin() * 0.1)
        .collect()
}

fn run(o: &mut Sf, names: &[&str], w: &mut [Vec<f64>], steps: usize) {
    for s in 0..steps {
        let g: Vec<Vec<f64>> = w.iter().map(|v| grad(v, s)).collect();
        let mut params: Vec<Param<'_, f64>> = names
            .iter()
            .zip(w.iter_mut())
            .zip(&g)
            .map(|((n, v), g)| Param::new(n, v, g))
            .collect();
        o.step(&mut params).expect("train mode");
    }
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn a_group_with_its_own_settings_equals_an_optimizer_built_with_them() {
    let own = GroupAveraging {
        r: Some(2.0),
        weight_lr_power: Some(1.0),
        c_warmup: Some(3),
    };
    let base = AveragingWeights::default();
    let mut two = sf(base, 0);
    two.add_group(GroupConfig {
        lr: 0.3,
        weight_decay: 0.01,
    })
    .expect("valid");
    two.add_param_to(0, "a", &[4]).expect("new");
    two.add_param_to(1, "b", &[3]).expect("new");
    two.set_group_averaging(1, own)
        .expect("Schedule-Free has all three");
    assert_eq!(two.group_averaging(1), Some(own));
    assert_eq!(two.group_averaging(0), Some(GroupAveraging::default()));

    let init = |n: usize, s: f64| (0..n).map(|i| (i as f64 + s).cos()).collect::<Vec<f64>>();
    let mut w = vec![init(4, 0.0), init(3, 1.0)];
    run(&mut two, &["a", "b"], &mut w, 12);

    let mut alone_a = sf(base, 0);
    alone_a.add_param("a", &[4]).expect("new");
    let mut wa = vec![init(4, 0.0)];
    run(&mut alone_a, &["a"], &mut wa, 12);
    let mut alone_b = sf(
        AveragingWeights {
            r: 2.0,
            weight_lr_power: 1.0,
        },
        3,
    );
    alone_b.add_param("b", &[3]).expect("new");
    let mut wb = vec![init(3, 1.0)];
    run(&mut alone_b, &["b"], &mut wb, 12);

    assert_eq!(
        bits(&w[0]),
        bits(&wa[0]),
        "group 0 keeps the optimizer's settings"
    );
    assert_eq!(bits(&w[1]), bits(&wb[0]), "group 1 uses its own");
    assert_eq!(two.group_info(1), alone_b.group_info(0));
}

#[test]
fn settings_a_conversion_lacks_and_bad_values_are_typed_errors() {
    let mut o = sf(AveragingWeights::default(), 0);
    let bad_r = GroupAveraging {
        r: Some(-1.0),
        ..Default::default()
    };
    assert!(matches!(
        o.set_group_averaging(0, bad_r),
        Err(ConfigError::OutOfRange { field: "r", .. })
    ));
    assert!(matches!(
        o.set_group_averaging(3, GroupAveraging::default()),
        Err(ConfigError::OutOfRange { field: "group", .. })
    ));
    assert_eq!(o.group_averaging(0), Some(GroupAveraging::default()));

    let group = GroupConfig {
        lr: 0.1,
        weight_decay: 0.0,
    };
    let mut polyak = Optimizer::<f64, _, _, _, _>::new(
        Sgd::plain(),
        PolyakAverage::default(),
        DecoupledAtY,
        Constant,
        group,
    )
    .expect("valid");
    let warmup = GroupAveraging {
        c_warmup: Some(2),
        ..Default::default()
    };
    assert!(matches!(
        polyak.set_group_averaging(0, warmup),
        Err(ConfigError::Unsupported(_))
    ));
    let r = GroupAveraging {
        r: Some(1.0),
        ..Default::default()
    };
    polyak
        .set_group_averaging(0, r)
        .expect("Polyak averaging has weights");
    let mut last =
        Optimizer::<f64, _, _, _, _>::new(Sgd::plain(), LastIterate, DecoupledAtY, Constant, group)
            .expect("valid");
    assert!(matches!(
        last.set_group_averaging(0, r),
        Err(ConfigError::Unsupported(_))
    ));
    last.set_group_averaging(0, GroupAveraging::default())
        .expect("nothing overridden");
}
