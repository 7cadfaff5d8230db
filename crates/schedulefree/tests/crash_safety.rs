//! Checkpoints survive `SIGKILL`: a child process trains and writes a checkpoint (parameters
//! `y` and [`OptimizerState`] in one file, through [`write_atomic`]) after every step; the
//! parent kills it at varied moments, many times, and checks that the file it finds is always
//! complete and resumes bit-exactly: the resumed run equals an uninterrupted one bit for bit.
//!
//! The child is this test binary run again with [`CHILD_DIR`] set, selecting only
//! [`checkpoint_writer_child`] (which does nothing in a normal run).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use schedulefree::presets::AdamWScheduleFreeOptimizer;
use schedulefree::write_atomic;
use schedulefree::{AdamWScheduleFree, OptimizerState, Param};

/// Set in the child's environment: the folder it writes `checkpoint.json` into.
const CHILD_DIR: &str = "SCHEDULEFREE_CRASH_TEST_DIR";
/// Parameter length: large enough (≈ 1.5 MB of JSON per checkpoint) that kills often land
/// while a checkpoint is being written.
const LEN: usize = 20_000;
const KILLS: u64 = 24;

#[derive(serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    /// Steps taken when it was written.
    step: u64,
    /// The parameter buffer (`y`: train mode).
    y: Vec<f64>,
    state: OptimizerState,
}

fn build() -> AdamWScheduleFreeOptimizer<f64> {
    let mut o = AdamWScheduleFree {
        lr: 0.02,
        warmup_steps: 5,
        weight_decay: 1e-3,
        ..Default::default()
    }
    .build::<f64>()
    .expect("config");
    o.add_param("w", &[LEN]).expect("new");
    o
}

/// Gradient of `½‖w − a‖²` plus a step-dependent wobble, so every step differs.
fn grad(w: &[f64], step: u64) -> Vec<f64> {
    w.iter()
        .enumerate()
        .map(|(i, v)| v - (i % 7) as f64 + 0.01 * ((step as usize * 13 + i) % 11) as f64)
        .collect()
}

fn take_step(o: &mut AdamWScheduleFreeOptimizer<f64>, w: &mut [f64], step: u64) {
    let g = grad(w, step);
    o.step(&mut [Param::new("w", w, &g)]).expect("step");
}

/// `steps` steps from scratch.
fn uninterrupted(steps: u64) -> Vec<f64> {
    let (mut o, mut w) = (build(), vec![0.5; LEN]);
    for s in 0..steps {
        take_step(&mut o, &mut w, s);
    }
    w
}

/// The child: train and checkpoint after every step until killed.
#[test]
fn checkpoint_writer_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return; // a normal test run: nothing to do
    };
    let path = Path::new(&dir).join("checkpoint.json");
    let (mut o, mut w) = (build(), vec![0.5; LEN]);
    for step in 0.. {
        take_step(&mut o, &mut w, step);
        let ck = Checkpoint {
            step: step + 1,
            y: w.clone(),
            state: o.state(),
        };
        let bytes = serde_json::to_vec(&ck).expect("serialize");
        write_atomic(&path, &bytes).expect("write");
    }
}

fn scratch_dir(i: u64) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sf-crash-{}-{i}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn a_killed_writer_always_leaves_a_complete_checkpoint_that_resumes_bit_exactly() {
    let exe = std::env::current_exe().expect("test binary");
    let (mut loaded, mut torn_writes) = (0, 0);
    for i in 0..KILLS {
        let dir = scratch_dir(i);
        let mut child = Command::new(&exe)
            .args(["checkpoint_writer_child", "--exact", "--test-threads=1"])
            .env(CHILD_DIR, &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the writer");
        // Kill times spread over 40–500 ms: before the first checkpoint, and during later ones.
        std::thread::sleep(Duration::from_millis(40 + (i * 37) % 460));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");

        torn_writes += std::fs::read_dir(&dir)
            .expect("dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            })
            .count();
        let path = dir.join("checkpoint.json");
        if !path.exists() {
            continue; // killed before its first checkpoint
        }
        let bytes = std::fs::read(&path).expect("read");
        let ck: Checkpoint = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("kill {i}: the checkpoint is not complete: {e}"));
        let mut o = build();
        o.load_state(&ck.state).expect("state loads");
        let mut w = ck.y;
        for s in ck.step..ck.step + 3 {
            take_step(&mut o, &mut w, s);
        }
        let reference = uninterrupted(ck.step + 3);
        assert!(
            w.iter()
                .zip(&reference)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "kill {i}: resume from step {} is not bit-exact",
            ck.step
        );
        loaded += 1;
        let _ = std::fs::remove_dir_all(&dir);
    }
    eprintln!(
        "{KILLS} kills: {loaded} checkpoints resumed bit-exactly, {torn_writes} torn temporary files ignored"
    );
    assert!(
        loaded >= KILLS / 2,
        "too few kills after a checkpoint: {loaded}"
    );
}
