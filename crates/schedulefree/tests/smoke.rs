use schedulefree::{Param, SgdScheduleFree};

#[test]
fn sf_sgd_two_steps_quadratic() {
    let mut opt = SgdScheduleFree { lr: 0.5, momentum: 0.9, ..Default::default() }.build::<f64>().unwrap();
    opt.add_param("x", &[1]).unwrap();
    let mut y = vec![1.0];
    for _ in 0..2 {
        let g = y.clone();
        opt.step(&mut [Param::new("x", &mut y, &g)]).unwrap();
    }
    let mut x = vec![0.0];
    opt.eval_params_into("x", &y, &mut x).unwrap();
    let z = opt.state_buffer("x", "z").unwrap();
    assert!((y[0] - 0.3625).abs() < 1e-15, "{y:?}");
    assert!((x[0] - 0.375).abs() < 1e-15, "{x:?}");
    assert!((z[0] - 0.25).abs() < 1e-15, "{z:?}");
}
