//! Schedules: torch parity (golden file), the conventions of DESIGN.md §4 and the identities of
//! ALGORITHMS.md §9 and §12.2.5.

use proptest::prelude::*;
use schedulefree::schedule::{
    Constant, Cooldown, Cosine, InverseSqrt, Linear, Schedule, ScheduleConfig, ScheduleError,
    ScheduleExt, Tabulated, TorchCosineAnnealing, TorchLinearLr, Warmup, Wsd,
};

const GOLDEN: &str = include_str!("../data/schedules.json");

/// Our closed form for each torch schedule in the golden file, by name.
fn torch_equivalent(name: &str) -> Box<dyn Schedule> {
    let lin = |s, e, n| TorchLinearLr::new(s, e, n).expect("valid");
    let cos = |n, m| TorchCosineAnnealing::new(n, m).expect("valid");
    match name {
        "linear_1.0_to_0.0_over_100" => Box::new(lin(1.0, 0.0, 100)),
        "linear_warmup_0.01_to_1_over_10" => Box::new(lin(0.01, 1.0, 10)),
        "cosine_tmax100_etamin0" => Box::new(cos(100, 0.0)),
        "cosine_tmax100_etamin0.1" => Box::new(cos(100, 0.1)),
        "warmup10_linear_decay_to0_at100" => {
            Box::new(lin(0.1, 1.0, 10).then(10, lin(1.0, 0.0, 90)))
        }
        "warmup10_cosine_to0_at100" => Box::new(lin(0.1, 1.0, 10).then(10, cos(90, 0.0))),
        "warmup10_cosine_etamin0.01" => Box::new(lin(0.1, 1.0, 10).then(10, cos(90, 0.01))),
        other => panic!("golden schedule {other} has no Rust equivalent in this test"),
    }
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

#[test]
fn torch_schedules_match_golden() {
    let golden: serde_json::Value = serde_json::from_str(GOLDEN).expect("golden parses");
    let cases = golden["schedules"].as_array().expect("schedules");
    assert_eq!(cases.len(), 7, "golden file changed: review the mapping");
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let ours = torch_equivalent(name);
        let (torch, closed) = (floats(&case["lr"]), floats(&case["closed_form"]));
        assert_eq!(torch.len(), 100, "{name}");
        for (k, (t, c)) in torch.iter().zip(&closed).enumerate() {
            let v = ours.value(k as u64);
            assert!((v - t).abs() <= 1e-12, "{name} k={k}: ours {v}, torch {t}");
            assert!(
                (v - c).abs() <= 1e-15,
                "{name} k={k}: ours {v}, Python closed form {c}"
            );
        }
    }
}

#[test]
fn torch_sequence_from_config_matches_golden() {
    let json = r#"{"kind": "sequence", "at": 10,
        "first": {"kind": "torch_linear_lr", "start_factor": 0.1, "end_factor": 1.0, "total_iters": 10},
        "then": {"kind": "torch_cosine_annealing", "t_max": 90, "eta_min_factor": 0.01}}"#;
    let s = serde_json::from_str::<ScheduleConfig>(json)
        .expect("parses")
        .build()
        .expect("valid");
    let golden: serde_json::Value = serde_json::from_str(GOLDEN).expect("golden parses");
    let case = golden["schedules"]
        .as_array()
        .expect("schedules")
        .iter()
        .find(|c| c["name"] == "warmup10_cosine_etamin0.01")
        .expect("case present");
    for (k, t) in floats(&case["lr"]).iter().enumerate() {
        assert!((s.value(k as u64) - t).abs() <= 1e-12, "k={k}");
    }
    assert_eq!(s.horizon(), Some(100));
}

/// Every update of a valid schedule of each kind, nested ones included.
fn config() -> impl Strategy<Value = ScheduleConfig> {
    let end = || prop_oneof![Just(0.0), Just(1.0), 0.0..=1.0f64];
    let run = || (1u64..3000).prop_flat_map(|t| (0..=t, Just(t)));
    let shape = prop_oneof![
        Just(Cooldown::Linear),
        Just(Cooldown::OneMinusSqrt),
        Just(Cooldown::OneMinusSquare),
        Just(Cooldown::Cosine)
    ];
    let leaf = prop_oneof![
        Just(ScheduleConfig::Constant {}),
        (run(), end()).prop_map(|((warmup, total), end)| ScheduleConfig::Linear {
            warmup,
            total,
            end
        }),
        (run(), end()).prop_map(|((warmup, total), end)| ScheduleConfig::Cosine {
            warmup,
            total,
            end
        }),
        (run(), end(), shape, any::<prop::sample::Index>()).prop_map(
            |((warmup, total), end, shape, i)| {
                let decay = i.index((total - warmup + 1) as usize) as u64;
                ScheduleConfig::Wsd {
                    warmup,
                    total,
                    decay,
                    shape,
                    end,
                }
            }
        ),
        (0u64..3000).prop_map(|warmup| ScheduleConfig::InverseSqrt { warmup }),
        prop::collection::vec(0.0..10.0f64, 1..50)
            .prop_map(|values| ScheduleConfig::Tabulated { values }),
        (end(), end(), 1u64..500).prop_map(|(start_factor, end_factor, total_iters)| {
            ScheduleConfig::TorchLinearLr {
                start_factor,
                end_factor,
                total_iters,
            }
        }),
        (1u64..500, end()).prop_map(|(t_max, eta_min_factor)| {
            ScheduleConfig::TorchCosineAnnealing {
                t_max,
                eta_min_factor,
            }
        }),
    ];
    leaf.prop_recursive(2, 8, 2, |inner| {
        prop_oneof![
            (0u64..500, inner.clone()).prop_map(|(warmup, s)| ScheduleConfig::Warmup {
                warmup,
                schedule: Box::new(s)
            }),
            (inner.clone(), 0u64..500, inner).prop_map(|(a, at, b)| ScheduleConfig::Sequence {
                first: Box::new(a),
                at,
                then: Box::new(b)
            }),
        ]
    })
}

/// Steps worth probing: small, near the horizon, and huge.
fn probe(s: &dyn Schedule) -> Vec<u64> {
    let h = s.horizon().unwrap_or(1000);
    let mut ks: Vec<u64> = (0..50).collect();
    ks.extend((h.saturating_sub(3)..=h.saturating_add(3)).chain([
        u64::MAX / 2,
        u64::MAX - 1,
        u64::MAX,
    ]));
    ks
}

/// Linear-warmup configs: (warmup >= 1, total) with every schedule that warms up over them.
fn warmed(w: u64, t: u64) -> Vec<Box<dyn Schedule>> {
    vec![
        Box::new(Linear::new(w, t, 0.0).expect("valid")),
        Box::new(Cosine::new(w, t, 0.3).expect("valid")),
        Box::new(Wsd::new(w, t, (t - w) / 2, Cooldown::OneMinusSqrt, 0.0).expect("valid")),
        Box::new(InverseSqrt::new(w)),
        Box::new(Warmup::new(w, Constant)),
    ]
}

proptest! {
    #[test]
    fn never_negative_and_finite(c in config()) {
        let s = c.build().expect("strategy makes valid configs");
        for k in probe(&*s) {
            let v = s.value(k);
            prop_assert!(v.is_finite() && v >= 0.0, "{c:?} k={k}: {v}");
        }
    }

    #[test]
    fn constant_after_horizon(c in config(), extra in 0u64..10_000) {
        let s = c.build().expect("valid");
        if let Some(h) = s.horizon() {
            prop_assert_eq!(s.value(h + extra), s.value(h), "{:?}", c);
            prop_assert_eq!(s.value(u64::MAX), s.value(h), "{:?}", c);
        }
    }

    #[test]
    fn zero_warmup_is_no_warmup(c in config()) {
        let s = c.build().expect("valid");
        let w = Warmup::new(0, c.build().expect("valid"));
        for k in probe(&*s) {
            prop_assert_eq!(w.value(k).to_bits(), s.value(k).to_bits());
        }
        prop_assert_eq!(w.horizon(), s.horizon());
    }

    #[test]
    fn warmup_is_a_prefix(w in 0u64..200, d in 1u64..2000, end in 0.0..=1.0f64) {
        // Warmup then a decay restarted at 0 == the same decay with a built-in warmup.
        let t = w + d;
        let pairs: [(Box<dyn Schedule>, Box<dyn Schedule>); 3] = [
            (Box::new(Warmup::new(w, Linear::new(0, d, end).expect("valid"))), Box::new(Linear::new(w, t, end).expect("valid"))),
            (Box::new(Warmup::new(w, Cosine::new(0, d, end).expect("valid"))), Box::new(Cosine::new(w, t, end).expect("valid"))),
            (Box::new(Warmup::new(w, Wsd::new(0, d, d / 3, Cooldown::OneMinusSquare, end).expect("valid"))),
             Box::new(Wsd::new(w, t, d / 3, Cooldown::OneMinusSquare, end).expect("valid"))),
        ];
        for (a, b) in &pairs {
            prop_assert_eq!(a.horizon(), b.horizon());
            for k in 0..t + 2 {
                prop_assert_eq!(a.value(k).to_bits(), b.value(k).to_bits(), "k={}", k);
            }
        }
    }

    #[test]
    fn warmup_peaks_exactly_at_update_w(w in 1u64..300, extra in 0u64..300) {
        let t = w + extra;
        for s in warmed(w, t) {
            prop_assert_eq!(s.value(0), 1.0 / w as f64, "{:?}: first update uses 1/W", s);
            prop_assert_eq!(s.value(w - 1), 1.0, "{:?}: peak at k = W-1", s);
            for k in 0..w - 1 {
                prop_assert_eq!(s.value(k), (k + 1) as f64 / w as f64);
                prop_assert!(s.value(k) < s.value(k + 1));
            }
            for k in 0..t + 3 {
                prop_assert!(s.value(k) <= 1.0, "{:?} k={} exceeds the peak", s, k);
            }
        }
    }

    #[test]
    fn linear_hits_end_exactly_at_horizon(w in 0u64..100, d in 1u64..1000, end in 0.0..=1.0f64) {
        let t = w + d;
        let s = Linear::new(w, t, end).expect("valid");
        prop_assert_eq!(s.horizon(), Some(t));
        prop_assert_eq!(s.value(t - 1), end);
        for k in [t, t + 1, t + 1000, u64::MAX] {
            prop_assert_eq!(s.value(k), end);
        }
        for k in w..t {
            // Equal steps of (1-end)/d, from 1 - (1-end)/d down to end.
            let expected = 1.0 - (1.0 - end) * (k + 1 - w) as f64 / d as f64;
            prop_assert!((s.value(k) - expected).abs() <= 1e-15, "k={}", k);
            prop_assert!(s.value(k) <= s.value(k.saturating_sub(1).max(w)));
        }
    }

    #[test]
    fn cosine_hits_floor_exactly_at_horizon(w in 0u64..100, d in 1u64..1000, end in 0.0..=1.0f64) {
        let t = w + d;
        let s = Cosine::new(w, t, end).expect("valid");
        prop_assert_eq!(s.value(t - 1), end);
        prop_assert_eq!(s.value(t), end);
        prop_assert_eq!(s.value(u64::MAX), end);
        for k in w..t {
            let p = (k + 1 - w) as f64 / d as f64;
            let expected = end + (1.0 - end) * (1.0 + (std::f64::consts::PI * p).cos()) / 2.0;
            prop_assert!((s.value(k) - expected).abs() <= 1e-15, "k={}", k);
            prop_assert!(s.value(k) >= end);
        }
    }

    #[test]
    fn wsd_phases_are_continuous(w in 0u64..100, stable in 1u64..200, d in 1u64..5000,
                                 end in 0.0..=1.0f64, shape_i in 0usize..4) {
        let shape = [Cooldown::Linear, Cooldown::OneMinusSqrt, Cooldown::OneMinusSquare, Cooldown::Cosine][shape_i];
        let t = w + stable + d;
        let s = Wsd::new(w, t, d, shape, end).expect("valid");
        let start = w + stable; // first cooldown update (0-based)
        if w > 0 {
            prop_assert_eq!(s.value(w - 1), 1.0);
        }
        for k in w..start {
            prop_assert_eq!(s.value(k), 1.0, "stable phase at k={}", k);
        }
        // The cooldown starts from 1: its first drop is at most (1-end)·sqrt(1/d), the drop of
        // 1 - sqrt(p) at p = 1/d, and vanishes as d grows.
        let drop = s.value(start - 1) - s.value(start);
        prop_assert!(drop > 0.0 || end == 1.0);
        prop_assert!(drop <= (1.0 - end) * (1.0 / d as f64).sqrt() + 1e-15, "drop {}", drop);
        if shape == Cooldown::Linear && d > 1 {
            let next = s.value(start) - s.value(start + 1);
            prop_assert!((drop - next).abs() <= 1e-15, "linear cooldown: first drop {} vs next {}", drop, next);
        }
        for k in start..t {
            prop_assert!(s.value(k) <= s.value(k - 1) && s.value(k) >= end, "k={}", k);
        }
        prop_assert_eq!(s.value(t - 1), end);
        prop_assert_eq!(s.value(t + 7), end);
    }
}

#[test]
fn wsd_with_full_cooldown_equals_linear_and_cosine() {
    let pairs: [(Box<dyn Schedule>, Box<dyn Schedule>); 2] = [
        (
            Box::new(Wsd::new(7, 50, 43, Cooldown::Linear, 0.1).expect("valid")),
            Box::new(Linear::new(7, 50, 0.1).expect("valid")),
        ),
        (
            Box::new(Wsd::new(7, 50, 43, Cooldown::Cosine, 0.1).expect("valid")),
            Box::new(Cosine::new(7, 50, 0.1).expect("valid")),
        ),
    ];
    for (a, b) in &pairs {
        for k in 0..60 {
            assert_eq!(a.value(k).to_bits(), b.value(k).to_bits(), "k={k}");
        }
    }
}

#[test]
fn cooldown_shapes_follow_their_formulas() {
    // D = 4, no warmup or stable phase: p = 1/4, 2/4, 3/4, 1 (ALGORITHMS.md §9).
    let cases = [
        (Cooldown::Linear, [0.75, 0.5, 0.25, 0.0]),
        (
            Cooldown::OneMinusSqrt,
            [0.5, 1.0 - 0.5f64.sqrt(), 1.0 - 0.75f64.sqrt(), 0.0],
        ),
        (Cooldown::OneMinusSquare, [0.9375, 0.75, 0.4375, 0.0]),
        (
            Cooldown::Cosine,
            [0.8535533905932737, 0.5, 0.14644660940672627, 0.0],
        ),
    ];
    for (shape, expected) in cases {
        let s = Wsd::new(0, 4, 4, shape, 0.0).expect("valid");
        for (k, e) in expected.iter().enumerate() {
            assert!(
                (s.value(k as u64) - e).abs() <= 1e-15,
                "{shape:?} k={k}: {} vs {e}",
                s.value(k as u64)
            );
        }
        // With a floor m: m + (1-m)·shape.
        let floored = Wsd::new(0, 4, 4, shape, 0.2).expect("valid");
        assert!(
            (floored.value(1) - (0.2 + 0.8 * expected[1])).abs() <= 1e-15,
            "{shape:?}"
        );
    }
}

#[test]
fn torch_linear_lr_ends_exactly_at_end_factor() {
    // (e-s)·T/T overshoots -s here in floating point; found by `never_negative_and_finite`.
    let s = TorchLinearLr::new(0.49420997222778934, 0.0, 147).expect("valid");
    assert_eq!(s.value(147), 0.0);
    assert_eq!(s.value(u64::MAX), 0.0);
    assert!((0..147).all(|k| s.value(k) > 0.0));
}

#[test]
fn linear_decay_without_warmup_is_the_last_iterate_conversion() {
    // ALGORITHMS.md §1.2: multiplier 1 - (k+1)/T, the T-th step has zero size.
    let s = Linear::new(0, 5, 0.0).expect("valid");
    let got: Vec<f64> = (0..6).map(|k| s.value(k)).collect();
    assert_eq!(got, [0.8, 0.6, 0.4, 0.2, 0.0, 0.0]);
}

#[test]
fn warmup_equal_to_total_ends_at_peak() {
    let s = Linear::new(4, 4, 0.0).expect("warmup == total is allowed");
    let got: Vec<f64> = (0..6).map(|k| s.value(k)).collect();
    assert_eq!(got, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]);
}

#[test]
fn inverse_sqrt_values() {
    let s = InverseSqrt::new(4);
    assert_eq!(s.value(3), 1.0);
    assert_eq!(s.value(15), 0.5); // sqrt(4/16)
    let no_warmup = InverseSqrt::new(0);
    assert_eq!(no_warmup.value(0), 1.0);
    assert_eq!(no_warmup.value(3), 0.5); // 1/sqrt(4)
    assert!(no_warmup.value(u64::MAX) > 0.0);
    assert_eq!(no_warmup.horizon(), None);
}

#[test]
fn invalid_lengths_and_values_are_typed_errors() {
    use ScheduleError::*;
    assert_eq!(Linear::new(0, 0, 0.0), Err(ZeroLength { field: "total" }));
    assert_eq!(
        Cosine::new(11, 10, 0.0),
        Err(PhaseTooLong {
            field: "warmup",
            value: 11,
            total: 10
        })
    );
    assert_eq!(
        Wsd::new(3, 10, 8, Cooldown::Linear, 0.0),
        Err(PhaseTooLong {
            field: "warmup + decay",
            value: 11,
            total: 10
        })
    );
    assert_eq!(
        Wsd::new(0, 0, 0, Cooldown::Linear, 0.0),
        Err(ZeroLength { field: "total" })
    );
    for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
        assert!(
            matches!(
                Linear::new(1, 10, bad),
                Err(InvalidValue { field: "end", .. })
            ),
            "{bad}"
        );
        assert!(
            matches!(
                Cosine::new(1, 10, bad),
                Err(InvalidValue { field: "end", .. })
            ),
            "{bad}"
        );
        assert!(matches!(
            TorchLinearLr::new(bad, 1.0, 5),
            Err(InvalidValue {
                field: "start_factor",
                ..
            })
        ));
        assert!(matches!(
            TorchLinearLr::new(1.0, bad, 5),
            Err(InvalidValue {
                field: "end_factor",
                ..
            })
        ));
        assert!(matches!(
            TorchCosineAnnealing::new(5, bad),
            Err(InvalidValue {
                field: "eta_min_factor",
                ..
            })
        ));
    }
    assert_eq!(
        TorchLinearLr::new(0.5, 1.0, 0),
        Err(ZeroLength {
            field: "total_iters"
        })
    );
    assert_eq!(
        TorchCosineAnnealing::new(0, 0.0),
        Err(ZeroLength { field: "t_max" })
    );
    assert_eq!(Tabulated::new(vec![]), Err(ZeroLength { field: "values" }));
    assert!(
        matches!(Tabulated::new(vec![1.0, -1.0]), Err(InvalidValue { field: "values", value, .. }) if value == -1.0)
    );
    for bad in [f64::NAN, f64::INFINITY] {
        assert!(
            matches!(
                Tabulated::new(vec![0.5, bad]),
                Err(InvalidValue {
                    field: "values",
                    ..
                })
            ),
            "{bad}"
        );
    }
    // The error surfaces through a nested config.
    let nested = ScheduleConfig::Warmup {
        warmup: 5,
        schedule: Box::new(ScheduleConfig::Linear {
            warmup: 0,
            total: 0,
            end: 0.0,
        }),
    };
    assert_eq!(nested.build().err(), Some(ZeroLength { field: "total" }));
}

#[test]
fn tabulated_clamps_to_last_value() {
    let s = Tabulated::new(vec![0.5, 1.0, 0.25]).expect("valid");
    let got: Vec<f64> = [0, 1, 2, 3, 1000, u64::MAX]
        .iter()
        .map(|&k| s.value(k))
        .collect();
    assert_eq!(got, [0.5, 1.0, 0.25, 0.25, 0.25, 0.25]);
    assert_eq!(s.horizon(), Some(3));
}

#[test]
fn sequence_switches_at_the_given_update_and_restarts() {
    let tab = |v: &[f64]| Tabulated::new(v.to_vec()).expect("valid");
    let s = tab(&[1.0, 2.0, 3.0])
        .then(2, tab(&[10.0, 20.0, 30.0]))
        .then(4, tab(&[100.0, 200.0]));
    let got: Vec<f64> = (0..8).map(|k| s.value(k)).collect();
    assert_eq!(got, [1.0, 2.0, 10.0, 20.0, 100.0, 200.0, 200.0, 200.0]);
    assert_eq!(s.horizon(), Some(6));
    assert_eq!(Constant.then(3, Constant).horizon(), None);
    // Switching at 0 skips the first schedule entirely.
    assert_eq!(tab(&[1.0]).then(0, tab(&[7.0])).value(0), 7.0);
}

#[test]
fn serde_round_trips_and_validates() {
    let s = Wsd::new(10, 100, 20, Cooldown::OneMinusSqrt, 0.1).expect("valid");
    let json = serde_json::to_string(&s).expect("serializes");
    assert_eq!(
        json,
        r#"{"warmup":10,"total":100,"decay":20,"shape":"one_minus_sqrt","end":0.1}"#
    );
    assert_eq!(serde_json::from_str::<Wsd>(&json).expect("parses"), s);
    assert!(
        serde_json::from_str::<Linear>(r#"{"warmup":10,"total":5}"#).is_err(),
        "validated on load"
    );
    assert!(serde_json::from_str::<Tabulated>("[]").is_err());
    let seq = Linear::new(0, 10, 0.0).expect("valid").then(5, Constant);
    let back: schedulefree::schedule::Sequence<Linear, Constant> =
        serde_json::from_str(&serde_json::to_string(&seq).expect("serializes")).expect("parses");
    assert_eq!(back, seq);

    let config: ScheduleConfig =
        serde_json::from_str(r#"{"kind": "linear", "total": 10}"#).expect("parses");
    assert_eq!(
        config,
        ScheduleConfig::Linear {
            warmup: 0,
            total: 10,
            end: 0.0
        }
    );
    let round: ScheduleConfig =
        serde_json::from_str(&serde_json::to_string(&config).expect("ser")).expect("de");
    assert_eq!(round, config);
    assert!(
        serde_json::from_str::<ScheduleConfig>(r#"{"kind": "linear", "total": 10, "ends": 0.1}"#)
            .is_err()
    );
    assert!(serde_json::from_str::<ScheduleConfig>(r#"{"kind": "exponential"}"#).is_err());
}

#[test]
fn schedules_are_send_sync_clone() {
    fn check<T: Schedule + Clone + Send + Sync + 'static>() {}
    check::<Constant>();
    check::<Linear>();
    check::<Cosine>();
    check::<Wsd>();
    check::<InverseSqrt>();
    check::<Tabulated>();
    check::<TorchLinearLr>();
    check::<TorchCosineAnnealing>();
    check::<Warmup<Constant>>();
    check::<schedulefree::schedule::Sequence<Linear, Cosine>>();
}

#[test]
fn unknown_keys_are_rejected_even_for_constant() {
    let ok: Result<ScheduleConfig, _> = serde_json::from_str(r#"{"kind":"constant"}"#);
    assert!(ok.is_ok(), "{ok:?}");
    let typo: Result<ScheduleConfig, _> =
        serde_json::from_str(r#"{"kind":"constant","warmup":100}"#);
    assert!(
        typo.is_err(),
        "a constant schedule with a warmup key must be rejected: {typo:?}"
    );
}

#[test]
fn step_decay_drops_after_each_milestone_and_validates() {
    use schedulefree::schedule::{Schedule, ScheduleConfig, StepDecay};
    let s = StepDecay::new(10, vec![50, 80], 0.5).expect("valid");
    assert_eq!(s.value(0), 0.1);
    assert_eq!(s.value(9), 1.0);
    assert_eq!(
        (
            s.value(49),
            s.value(50),
            s.value(79),
            s.value(80),
            s.value(10_000)
        ),
        (1.0, 0.5, 0.5, 0.25, 0.25)
    );
    assert!(StepDecay::new(0, vec![5, 5], 0.5).is_err());
    assert!(StepDecay::new(0, vec![5], 1.5).is_err());
    assert!(StepDecay::new(10, vec![9], 0.5).is_err());
    let c: ScheduleConfig =
        serde_json::from_str(r#"{"kind": "step", "milestones": [3], "gamma": 0.1}"#)
            .expect("parses");
    assert_eq!(c.build().expect("valid").value(3), 0.1);
}
