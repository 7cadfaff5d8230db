//! Gradient norms reported by a step (the input of schedule refinement, ALGORITHMS.md §8).

use schedulefree::{AdamWScheduleFree, GroupConfig, Param, SgdScheduleFree, Skipped};

fn grads(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn exact(gs: &[&[f32]]) -> (f64, f64) {
    let l1 = gs
        .iter()
        .flat_map(|g| g.iter())
        .map(|&v| f64::from(v).abs())
        .sum::<f64>();
    let l2 = gs
        .iter()
        .flat_map(|g| g.iter())
        .map(|&v| f64::from(v).powi(2))
        .sum::<f64>()
        .sqrt();
    (l1, l2)
}

#[test]
fn global_and_per_group_norms_match_f64_sums() {
    let mut opt = AdamWScheduleFree::default().build::<f32>().expect("config");
    let g1 = opt
        .add_group(GroupConfig {
            lr: 0.01,
            weight_decay: 0.0,
        })
        .expect("group");
    // One tensor above the parallel threshold, one odd-sized, one in group 1.
    let (na, nb, nc) = (300_001, 37, 1000);
    opt.add_param("a", &[na]).expect("name");
    opt.add_param("b", &[nb]).expect("name");
    opt.add_param_to(g1, "c", &[nc]).expect("name");
    let (ga, gb, gc) = (grads(na, 1), grads(nb, 2), grads(nc, 3));
    let (mut a, mut b, mut c) = (vec![0.0; na], vec![0.0; nb], vec![0.0; nc]);
    let info = opt
        .step(&mut [
            Param::new("a", &mut a, &ga),
            Param::new("b", &mut b, &gb),
            Param::new("c", &mut c, &gc),
        ])
        .expect("step");
    let rel = |x: f64, y: f64| (x - y).abs() / y;
    let (l1, l2) = exact(&[&ga, &gb, &gc]);
    assert!(
        rel(info.grad_l1, l1) < 1e-12 && rel(info.grad_l2, l2) < 1e-12,
        "{info:?} vs {l1} {l2}"
    );
    let (l1_0, l2_0) = exact(&[&ga, &gb]);
    let (l1_1, l2_1) = exact(&[&gc]);
    let (i0, i1) = (
        opt.group_info(0).expect("group 0"),
        opt.group_info(1).expect("group 1"),
    );
    assert!(rel(i0.grad_l1, l1_0) < 1e-12 && rel(i0.grad_l2, l2_0) < 1e-12);
    assert!(rel(i1.grad_l1, l1_1) < 1e-12 && rel(i1.grad_l2, l2_1) < 1e-12);
    assert_eq!(info.group, i0);
}

#[test]
fn norms_do_not_depend_on_parameter_order() {
    let (ga, gb) = (grads(5000, 7), grads(77, 8));
    let run = |order: &[&str]| {
        let mut opt = SgdScheduleFree::default().build::<f32>().expect("config");
        for n in order {
            opt.add_param(n, &[if *n == "a" { 5000 } else { 77 }])
                .expect("name");
        }
        let (mut a, mut b) = (vec![0.0; 5000], vec![0.0; 77]);
        let mut ps = vec![Param::new("a", &mut a, &ga), Param::new("b", &mut b, &gb)];
        if order[0] == "b" {
            ps.reverse();
        }
        opt.step(&mut ps).expect("step")
    };
    let (x, y) = (run(&["a", "b"]), run(&["b", "a"]));
    assert_eq!(x.grad_l1.to_bits(), y.grad_l1.to_bits());
    assert_eq!(x.grad_l2.to_bits(), y.grad_l2.to_bits());
}

#[test]
fn skipped_steps_report_nan_and_frozen_params_count_nothing() {
    let mut opt = SgdScheduleFree::default().build::<f32>().expect("config");
    opt.add_param("a", &[3]).expect("name");
    opt.add_param("b", &[2]).expect("name");
    let (mut a, mut b) = (vec![0.0; 3], vec![0.0; 2]);
    let info = opt
        .step(&mut [
            Param::new("a", &mut a, &[1.0, -2.0, 2.0]),
            Param::no_grad("b", &mut b),
        ])
        .expect("step");
    assert_eq!((info.grad_l1, info.grad_l2), (5.0, 3.0));
    let info = opt
        .step(&mut [Param::new("a", &mut a, &[f32::NAN, 0.0, 0.0])])
        .expect("skip policy");
    assert_eq!(info.skipped, Some(Skipped::NonFiniteGradient { index: 0 }));
    assert!(info.grad_l1.is_nan() && info.grad_l2.is_nan());
}

#[test]
fn huge_finite_f64_gradients_are_not_mistaken_for_non_finite() {
    let mut opt = SgdScheduleFree {
        lr: 1e-300,
        ..Default::default()
    }
    .build::<f64>()
    .expect("config");
    opt.add_param("w", &[2]).expect("name");
    let mut w = vec![0.0; 2];
    let info = opt
        .step(&mut [Param::new("w", &mut w, &[1e308, 1e308])])
        .expect("finite gradient");
    assert_eq!(info.skipped, None);
    assert_eq!(
        info.grad_l1,
        f64::INFINITY,
        "the f64 sum overflows; the step still runs"
    );
}
