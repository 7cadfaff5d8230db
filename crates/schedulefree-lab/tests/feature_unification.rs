//! The README's two set-up commands share one build: every dependency that
//! `cargo run --release -p schedulefree-lab --bin sflab` compiles is compiled, with the same
//! features, profile and dependencies, by `cargo test --workspace --release`, so whichever
//! runs second compiles no dependency again. Guards `crates/workspace-hack`.
//!
//! Cargo's unit graph (`--unit-graph`, which plans a build without running it) is the exact
//! list of what each command compiles. It is an unstable flag, so the planning commands run
//! with `RUSTC_BOOTSTRAP=1`; nothing is built with it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The unit graph of `cargo <args>` in the workspace root.
fn unit_graph(args: &[&str]) -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&root)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(args)
        .args([
            "--release",
            "--offline",
            "--unit-graph",
            "-Z",
            "unstable-options",
        ])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo {args:?} --unit-graph failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let graph: Value = serde_json::from_slice(&out.stdout).expect("unit graph is JSON");
    graph["units"].as_array().expect("units").clone()
}

/// One unit's identity: what it is and how it is built, and recursively the identities of
/// its dependencies (a dependency rebuilt with other features rebuilds everything above it).
fn identities(units: &[Value]) -> BTreeMap<String, String> {
    fn ident(i: usize, units: &[Value], memo: &mut Vec<Option<String>>) -> String {
        if let Some(s) = &memo[i] {
            return s.clone();
        }
        let u = &units[i];
        let mut deps: Vec<String> = u["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .map(|d| ident(d["index"].as_u64().expect("index") as usize, units, memo))
            .collect();
        deps.sort();
        let s = format!(
            "{} {} {} {} {} {} {} [{}]",
            u["pkg_id"],
            u["target"]["name"],
            u["target"]["kind"],
            u["mode"],
            u["features"],
            u["profile"],
            u["platform"],
            deps.join(", ")
        );
        memo[i] = Some(s.clone());
        s
    }
    let mut memo = vec![None; units.len()];
    (0..units.len())
        .filter(|&i| {
            !units[i]["pkg_id"]
                .as_str()
                .unwrap_or("")
                .starts_with("path+")
        })
        .map(|i| {
            let u = &units[i];
            let label = format!(
                "{} ({} {}) features {}",
                u["pkg_id"]
                    .as_str()
                    .unwrap_or("?")
                    .rsplit('#')
                    .next()
                    .unwrap_or("?"),
                u["target"]["name"].as_str().unwrap_or("?"),
                u["mode"].as_str().unwrap_or("?"),
                u["features"]
            );
            (ident(i, units, &mut memo), label)
        })
        .collect()
}

#[test]
fn the_main_job_reuses_every_dependency_the_test_suite_builds() {
    let tests = identities(&unit_graph(&["test", "--workspace", "--no-run"]));
    let run = identities(&unit_graph(&[
        "build",
        "-p",
        "schedulefree-lab",
        "--bin",
        "sflab",
    ]));
    assert!(
        run.len() > 100,
        "the lab pulls in burn: {} units",
        run.len()
    );
    let rebuilt: BTreeSet<&String> = run
        .iter()
        .filter(|(id, _)| !tests.contains_key(*id))
        .map(|(_, label)| label)
        .collect();
    assert!(
        rebuilt.is_empty(),
        "`sflab` would compile {} dependency units again after the test suite (features \
         differ: add the workspace-wide features to crates/workspace-hack/Cargo.toml):\n{}",
        rebuilt.len(),
        rebuilt
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
