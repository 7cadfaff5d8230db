//! Tests of the data layer (LIBSVM reader, manifest registry, standardisation, shuffling) and
//! of the logistic-regression model (loss, gradient check).

use std::io::Write;
use std::path::{Path, PathBuf};

use schedulefree_lab::data::libsvm::{self, LabelMap, LibsvmError, LibsvmOptions, parse_libsvm};
use schedulefree_lab::data::registry::{self, Manifest, SplitKind};
use schedulefree_lab::data::shuffle::{EpochOrder, shuffled_indices};
use schedulefree_lab::data::standardize::Standardizer;
use schedulefree_lab::data::{DataError, Split};
use schedulefree_lab::model::{LogReg, ModelError, Scratch};

fn bundled() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/libsvm")
}

fn tmp_file(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sflab-data-loader-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write temp file");
    path
}

// ---------------------------------------------------------------------------------------------
// Bundled data vs manifest

#[test]
fn every_bundled_file_matches_manifest() {
    let manifest = Manifest::load(&bundled()).expect("bundled manifest");
    assert_eq!(manifest.entries.len(), 17, "bundled manifest rows");
    let expected: [&str; 12] = [
        "iris",
        "wine",
        "breast_cancer",
        "digits",
        "glass",
        "vehicle",
        "dna",
        "letter",
        "satimage",
        "shuttle",
        "segment",
        "spam",
    ];
    let mut names = manifest.datasets();
    names.sort_unstable();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(names, want);

    for e in &manifest.entries {
        let path = manifest.path_of(e);
        let sparse = libsvm::read_libsvm_sparse(&path, Some(e.features))
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        assert_eq!(sparse.rows(), e.rows, "{}: rows", e.file);
        assert_eq!(sparse.nonzeros(), e.nonzeros, "{}: nonzeros", e.file);
        assert!(sparse.max_index() <= e.features, "{}: max index", e.file);
        let map = LabelMap::infer(&[&sparse], Some(e.classes)).expect("labels");
        assert_eq!(map.classes(), e.classes, "{}: classes", e.file);
        assert!(map.is_identity(), "{}: bundled labels are 0..C-1", e.file);
        let split = sparse.to_dense(e.features, &map).expect("dense");
        assert_eq!(split.rows(), e.rows);
        assert_eq!(split.d(), e.features, "{}: features", e.file);
        assert_eq!(
            split.class_counts(e.classes),
            e.class_counts,
            "{}: class counts",
            e.file
        );
        assert_eq!(split.nonzeros(), e.nonzeros, "{}: dense nonzeros", e.file);
        assert!(split.x().iter().all(|v| v.is_finite()));
    }
}

#[test]
fn named_datasets_load_with_splits() {
    let ds = registry::load_named("iris", None).expect("iris");
    assert_eq!((ds.train.rows(), ds.d, ds.classes), (150, 4, 3));
    assert!(ds.test.is_none(), "iris has no test split");
    // First row of iris: 5.1 3.5 1.4 0.2, setosa.
    assert_eq!(ds.train.row(0), &[5.1f32, 3.5, 1.4, 0.2]);
    assert_eq!(ds.train.y()[0], 0);

    let ds = registry::load_named("dna", None).expect("dna");
    let test = ds.test.as_ref().expect("dna test split");
    assert_eq!(
        (ds.train.rows(), test.rows(), ds.d, ds.classes),
        (2000, 1186, 180, 3)
    );
    assert_eq!(test.d(), 180);

    match registry::load_named("no_such_dataset", None) {
        Err(DataError::UnknownDataset { name, searched, .. }) => {
            assert_eq!(name, "no_such_dataset");
            assert!(!searched.is_empty());
        }
        other => panic!("expected UnknownDataset, got {other:?}"),
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

#[test]
fn unknown_dataset_lists_the_available_names_and_every_directory_searched() {
    let data_dir = std::env::temp_dir().join(format!("sflab-no-manifest-{}", std::process::id()));
    let err = registry::load_named("Iris", Some(&data_dir)).expect_err("names are case-sensitive");
    let message = err.to_string();
    let DataError::UnknownDataset {
        name,
        available,
        searched,
    } = err
    else {
        panic!("expected UnknownDataset, got {err:?}");
    };
    assert_eq!(name, "Iris");
    for n in ["iris", "wine", "letter", "spam"] {
        assert!(available.iter().any(|a| a == n), "{n} not in {available:?}");
    }
    assert!(message.contains("available: iris, wine, "), "{message}");
    // Every candidate is listed, whether or not it exists: the bundled locations (compile-time
    // path, current directory, ancestors of the executable) and both forms of the data dir.
    let mut expected = registry::bundled_candidates();
    expected.extend([data_dir.clone(), data_dir.join("libsvm")]);
    for c in &expected {
        assert!(
            searched.iter().any(|s| same_dir(s, c)),
            "{} not in {searched:?}",
            c.display()
        );
    }
    for s in &searched {
        assert!(
            message.contains(&format!("{:?}", s.display().to_string())),
            "{message}"
        );
    }
}

#[test]
fn bundled_data_is_also_found_from_the_executable() {
    // A binary inside a checkout (here: the test binary under target/) finds data/libsvm by
    // walking up from its own location, wherever it is run from.
    let exe = std::env::current_exe().expect("current exe");
    let candidates = registry::bundled_candidates();
    for ancestor in exe.ancestors().skip(1) {
        let c = ancestor.join("data").join("libsvm");
        assert!(candidates.contains(&c), "{} not a candidate", c.display());
    }
    let found = exe
        .ancestors()
        .map(|a| a.join("data").join("libsvm"))
        .find(|c| c.join(registry::MANIFEST_FILE).is_file());
    match found {
        Some(dir) => assert!(
            registry::search_dirs(None)
                .iter()
                .any(|s| same_dir(s, &dir)),
            "{} not searched",
            dir.display()
        ),
        None => eprintln!("skipping: target directory outside the checkout"),
    }
}

#[test]
fn shared_only_datasets_load_from_data_dir_when_present() {
    // a9a etc. are not bundled; they come from --data-dir (../shared/data by convention).
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    assert!(
        Manifest::load(&bundled())
            .expect("manifest")
            .entry("vowel", SplitKind::Train)
            .is_none()
    );
    if registry::manifest_dir(&shared).is_none() {
        eprintln!("skipping: {} not present", shared.display());
        return;
    }
    let ds = registry::load_named("vowel", Some(&shared)).expect("vowel from shared dir");
    assert_eq!(
        (
            ds.train.rows(),
            ds.test.as_ref().map(Split::rows),
            ds.d,
            ds.classes
        ),
        (528, Some(462), 10, 11)
    );
    let names: Vec<String> = registry::list_datasets(Some(&shared))
        .expect("list")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for n in ["iris", "a9a", "ijcnn1", "mushrooms", "vowel"] {
        assert!(names.iter().any(|m| m == n), "{n} listed");
    }
}

#[test]
fn gzip_is_detected_by_magic_bytes() {
    let text = b"1 1:0.5 3:2\n-1 2:1\n";
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text).expect("gzip");
    let gz = enc.finish().expect("gzip finish");
    // Deliberately misleading names: detection must not rely on the suffix.
    let plain_path = tmp_file("plain.gz", text);
    let gz_path = tmp_file("compressed.libsvm", &gz);
    let opts = LibsvmOptions::default();
    let (a, ma) = libsvm::read_libsvm(&plain_path, &opts).expect("plain");
    let (b, mb) = libsvm::read_libsvm(&gz_path, &opts).expect("gz");
    assert_eq!(a, b);
    assert_eq!(ma, mb);
    assert_eq!(a.x(), &[0.5, 0.0, 2.0, 0.0, 1.0, 0.0]);
    assert_eq!(a.y(), &[1, 0]);
}

// ---------------------------------------------------------------------------------------------
// Malformed input

fn err_of(text: &str, d: Option<usize>) -> LibsvmError {
    match parse_libsvm(text.as_bytes(), d) {
        Ok(f) => panic!("expected an error for {text:?}, parsed {} rows", f.rows()),
        Err(e) => e,
    }
}

#[test]
fn malformed_lines_report_line_numbers() {
    let good = "0 1:1 2:2\n\n1 3:0.5\n";
    let cases: Vec<(String, Option<usize>, usize)> = vec![
        (format!("{good}x 1:1\n"), None, 4),
        (format!("{good}0.5 1:1\n"), None, 4),
        (format!("{good}1 0:1\n"), None, 4),
        (format!("{good}1 2:1 2:3\n"), None, 4),
        (format!("{good}1 3:1 2:3\n"), None, 4),
        (format!("{good}1 1:1 5:3\n"), Some(4), 4),
        (format!("{good}1 1:abc\n"), None, 4),
        (format!("{good}1 1:nan\n"), None, 4),
        (format!("{good}1 1:1e39\n"), None, 4),
        (format!("{good}1 1\n"), None, 4),
        (format!("{good}1 a:1\n"), None, 4),
        ("0 1:1\n1 1:1 1:2\n".to_string(), None, 2),
    ];
    for (text, d, line) in &cases {
        let e = err_of(text, *d);
        assert_eq!(e.line(), Some(*line), "{text:?}: {e}");
        assert!(
            e.to_string().contains(&format!("line {line}")),
            "message: {e}"
        );
    }
    assert!(matches!(
        err_of(&cases[0].0, None),
        LibsvmError::BadLabel { .. }
    ));
    assert!(matches!(
        err_of(&cases[1].0, None),
        LibsvmError::BadLabel { .. }
    ));
    assert!(matches!(
        err_of(&cases[2].0, None),
        LibsvmError::IndexZero { .. }
    ));
    assert!(matches!(
        err_of(&cases[3].0, None),
        LibsvmError::NonIncreasingIndex {
            previous: 2,
            index: 2,
            ..
        }
    ));
    assert!(matches!(
        err_of(&cases[4].0, None),
        LibsvmError::NonIncreasingIndex { .. }
    ));
    assert!(matches!(
        err_of(&cases[5].0, Some(4)),
        LibsvmError::IndexOutOfRange { index: 5, d: 4, .. }
    ));
    assert!(matches!(
        err_of(&cases[6].0, None),
        LibsvmError::BadValue { .. }
    ));
    assert!(matches!(
        err_of(&cases[7].0, None),
        LibsvmError::NonFiniteValue { .. }
    ));
    assert!(matches!(
        err_of(&cases[8].0, None),
        LibsvmError::NonFiniteValue { .. }
    ));
    assert!(matches!(
        err_of(&cases[9].0, None),
        LibsvmError::BadFeature { .. }
    ));
    assert!(matches!(
        err_of(&cases[10].0, None),
        LibsvmError::BadFeature { .. }
    ));
}

#[test]
fn file_errors_name_the_file_and_keep_the_line() {
    let path = tmp_file("bad.libsvm", b"0 1:1\n0 1:1\n\n1 2:1 1:1\n");
    let e = libsvm::read_libsvm_sparse(&path, None).expect_err("must fail");
    assert_eq!(e.line(), Some(4));
    assert!(matches!(
        e.innermost(),
        LibsvmError::NonIncreasingIndex { .. }
    ));
    assert!(e.to_string().contains("bad.libsvm"), "{e}");
    // Index beyond d detected at conversion time also carries its line.
    let sparse = parse_libsvm(b"0 1:1\n1 7:1\n", None).expect("parse");
    let e = sparse
        .to_dense(3, &LabelMap::identity(2))
        .expect_err("index 7 > d 3");
    assert_eq!(e.line(), Some(2));
    let missing =
        libsvm::read_libsvm_sparse(Path::new("/nonexistent/x.libsvm"), None).expect_err("io");
    assert!(matches!(missing, LibsvmError::Io { .. }));
}

#[test]
fn whitespace_comments_and_empty_lines_are_tolerated() {
    let text = "  1 1:1\t3:2   \r\n\n   \n-1 2:-0.5 # comment\n+1\n";
    let f = parse_libsvm(text.as_bytes(), None).expect("parse");
    assert_eq!(f.rows(), 3);
    assert_eq!(f.line_numbers(), &[1, 4, 5]);
    assert_eq!(f.raw_labels(), &[1, -1, 1]);
    assert_eq!(f.max_index(), 3);
    assert_eq!(f.nonzeros(), 3);
    assert_eq!(f.row(0), (&[1u32, 3][..], &[1.0f32, 2.0][..]));
    assert_eq!(f.row(2).0.len(), 0);
}

// ---------------------------------------------------------------------------------------------
// Labels

#[test]
fn labels_are_remapped_in_sorted_order() {
    // -1/+1 -> 0/1.
    let f = parse_libsvm(b"+1 1:1\n-1 1:2\n1 1:3\n", None).expect("parse");
    let m = LabelMap::infer(&[&f], None).expect("map");
    assert_eq!(m.raw_labels(), &[-1, 1]);
    assert_eq!(f.to_dense(1, &m).expect("dense").y(), &[1, 0, 1]);
    // 1..K -> 0..K-1, integral decimals accepted.
    let f = parse_libsvm(b"3 1:1\n1.0 1:1\n2 1:1\n3 1:1\n", None).expect("parse");
    let m = LabelMap::infer(&[&f], None).expect("map");
    assert_eq!(f.to_dense(1, &m).expect("dense").y(), &[2, 0, 1, 2]);
    // Given C: 1..K with K = C is remapped; 0..C-1 with a missing class stays identity.
    let m = LabelMap::infer(&[&f], Some(3)).expect("map");
    assert_eq!(m.raw_labels(), &[1, 2, 3]);
    let g = parse_libsvm(b"0 1:1\n2 1:1\n", None).expect("parse");
    let m = LabelMap::infer(&[&g], Some(3)).expect("map");
    assert!(m.is_identity());
    assert_eq!(
        g.to_dense(1, &m).expect("dense").class_counts(3),
        vec![1, 0, 1]
    );
    assert!(matches!(LabelMap::infer(&[&g], Some(4)), Ok(ref m) if m.classes() == 4));
    assert!(matches!(
        LabelMap::infer(&[&f], Some(2)),
        Err(LibsvmError::ClassCountMismatch { .. })
    ));
    // Unknown label at conversion carries its line.
    let e = g
        .to_dense(1, &LabelMap::identity(2))
        .expect_err("label 2 unknown");
    assert_eq!(e.line(), Some(2));
}

#[test]
fn user_file_pairs_share_one_label_map() {
    // Test file lacks class +1 entirely and uses a larger index: mapping and d come from both.
    let train = tmp_file("pair.train.libsvm", b"-1 1:1\n1 2:1\n-1 1:3\n");
    let test = tmp_file("pair.test.libsvm", b"-1 3:1\n");
    let spec = format!("{},{}", train.display(), test.display());
    let ds = registry::load_user_spec(&spec, &LibsvmOptions::default()).expect("pair");
    assert_eq!(ds.name, "pair");
    assert_eq!((ds.d, ds.classes), (3, 2));
    assert_eq!(ds.train.y(), &[0, 1, 0]);
    let t = ds.test.as_ref().expect("test split");
    assert_eq!(t.y(), &[0]);
    assert_eq!(t.x(), &[0.0, 0.0, 1.0]);
    assert_eq!(ds.labels.raw_labels(), &[-1, 1]);
    // Single file: no test split.
    let ds = registry::load_user_spec(&train.display().to_string(), &LibsvmOptions::default())
        .expect("one");
    assert!(ds.test.is_none());
    // Explicit d smaller than an index is an error with the line.
    let opts = LibsvmOptions {
        features: Some(2),
        classes: None,
    };
    match registry::load_user_spec(&spec, &opts) {
        Err(DataError::Libsvm(e)) => assert_eq!(e.line(), Some(1)),
        other => panic!("expected a LIBSVM error, got {other:?}"),
    }
    assert!(matches!(
        registry::parse_user_spec("a,b,c"),
        Err(DataError::BadSpec { .. })
    ));
    assert!(matches!(
        registry::parse_user_spec("a,"),
        Err(DataError::BadSpec { .. })
    ));
    assert!(matches!(
        registry::parse_user_spec(""),
        Err(DataError::BadSpec { .. })
    ));
}

#[test]
fn user_test_labels_must_occur_in_training_and_two_classes_are_needed() {
    // Test labels 2 and 3 never occur in the training file: an error naming them, not two
    // silently added classes.
    let train = tmp_file("unseen.train.libsvm", b"-1 1:1\n1 2:1\n-1 1:3\n");
    let test = tmp_file("unseen.test.libsvm", b"-1 1:1\n2 1:1\n3 2:1\n1 1:2\n");
    let spec = format!("{},{}", train.display(), test.display());
    let err =
        registry::load_user_spec(&spec, &LibsvmOptions::default()).expect_err("unseen labels");
    let message = err.to_string();
    match err {
        DataError::UnseenTestLabels {
            labels, test: t, ..
        } => {
            assert_eq!(labels, vec![2, 3]);
            assert_eq!(t, test);
        }
        other => panic!("expected UnseenTestLabels, got {other:?}"),
    }
    assert!(
        message.contains("[2, 3]") && message.contains("unseen.test.libsvm"),
        "{message}"
    );
    // Declared classes (identity map on 0..C) may be missing from the training file.
    let train01 = tmp_file("declared.train.libsvm", b"0 1:1\n1 1:2\n");
    let test2 = tmp_file("declared.test.libsvm", b"2 1:1\n");
    let declared = LibsvmOptions {
        features: None,
        classes: Some(3),
    };
    let ds =
        registry::load_user_files(&train01, Some(&test2), &declared).expect("declared classes");
    assert_eq!(ds.classes, 3);

    // A single class in the training data cannot be classified, with or without a test file.
    let one = tmp_file("one.libsvm", b"1 1:1\n1 1:2\n1 2:1\n");
    let other = tmp_file("one.test.libsvm", b"0 1:1\n");
    for spec in [
        one.display().to_string(),
        format!("{},{}", one.display(), other.display()),
    ] {
        let err =
            registry::load_user_spec(&spec, &LibsvmOptions::default()).expect_err("one class");
        assert!(
            matches!(&err, DataError::TooFewClasses { labels, .. } if labels == &[1]),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("classification needs at least 2 classes"),
            "{err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Standardisation and shuffling

#[test]
fn standardisation_uses_train_statistics() {
    let mut ds = registry::load_named("segment", None).expect("segment");
    let raw_test = ds.test.clone().expect("segment test");
    let st = Standardizer::fit_apply(&mut ds).expect("standardize");
    let (n, d) = (ds.train.rows(), ds.d);
    for j in 0..d {
        let col: Vec<f64> = (0..n).map(|i| f64::from(ds.train.row(i)[j])).collect();
        let mean = col.iter().sum::<f64>() / n as f64;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 1e-5, "feature {j}: mean {mean}");
        if st.scale[j] == 0.0 {
            // Feature 3 (region-pixel-count) is constant: left at 0 in every split.
            assert!(col.iter().all(|&v| v == 0.0));
            assert!(
                ds.test
                    .as_ref()
                    .expect("test")
                    .x()
                    .iter()
                    .skip(j)
                    .step_by(d)
                    .all(|&v| v == 0.0)
            );
        } else {
            assert!(
                (var.sqrt() - 1.0).abs() < 1e-4,
                "feature {j}: std {}",
                var.sqrt()
            );
        }
    }
    assert_eq!(
        st.scale.iter().filter(|&&s| s == 0.0).count(),
        1,
        "one constant feature in segment"
    );
    assert_eq!(st.scale[2], 0.0);
    // Test uses the train statistics, not its own.
    let test = ds.test.as_ref().expect("test");
    for (k, (&v, &r)) in test.x().iter().zip(raw_test.x()).enumerate() {
        let j = k % d;
        let want = ((f64::from(r) - st.mean[j]) * st.scale[j]) as f32;
        assert_eq!(v, want);
    }
    let mut wrong = Split::new(vec![0.0; 3], vec![0], 3).expect("split");
    let st2 = Standardizer::fit(&Split::new(vec![1.0, 2.0], vec![0, 0], 1).expect("split"));
    assert!(matches!(
        st2.apply(&mut wrong),
        Err(DataError::Shape { .. })
    ));
}

#[test]
fn shuffling_is_seeded_and_a_permutation() {
    let a = shuffled_indices(100, 7);
    assert_eq!(a, shuffled_indices(100, 7));
    assert_ne!(a, shuffled_indices(100, 8));
    let mut s = a.clone();
    s.sort_unstable();
    assert_eq!(s, (0..100).collect::<Vec<_>>());

    let mut o1 = EpochOrder::new(50, 3);
    let mut o2 = EpochOrder::new(50, 3);
    let e1: Vec<usize> = o1.next_epoch().to_vec();
    let e2: Vec<usize> = o1.next_epoch().to_vec();
    assert_ne!(e1, e2);
    assert_eq!(o2.next_epoch(), e1.as_slice());
    assert_eq!(o2.next_epoch(), e2.as_slice());
    assert_eq!(o1.epochs(), 2);
    let batches: Vec<usize> = e1.chunks(16).map(<[usize]>::len).collect();
    assert_eq!(batches, vec![16, 16, 16, 2]);
}

// ---------------------------------------------------------------------------------------------
// Logistic regression

/// Small deterministic pseudo-random numbers in [-1, 1) (no RNG dependency needed).
fn lcg(state: &mut u64) -> f64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
}

fn toy(rows: usize, d: usize, classes: u32, seed: u64) -> Split {
    let mut s = seed;
    let x: Vec<f32> = (0..rows * d).map(|_| (2.0 * lcg(&mut s)) as f32).collect();
    let y: Vec<u32> = (0..rows as u32).map(|i| (i * 7 + 3) % classes).collect();
    Split::new(x, y, d).expect("toy split")
}

#[test]
fn loss_at_zero_is_ln_c() {
    for (name, classes) in [("iris", 3usize), ("letter", 26)] {
        let ds = registry::load_named(name, None).expect("dataset");
        let model = LogReg::new(ds.d, ds.classes).expect("model");
        assert_eq!(ds.classes, classes);
        let params = model.zeros::<f32>();
        let ev = model.evaluate(&params, &ds.train).expect("evaluate");
        assert!(
            (ev.loss - (classes as f64).ln()).abs() < 1e-6,
            "{name}: {}",
            ev.loss
        );
        assert_eq!(ev.rows, ds.train.rows());
        let mut scratch = Scratch::new(&model);
        let batch: Vec<usize> = (0..16).collect();
        let l = model
            .loss(&params, &ds.train, &batch, &mut scratch)
            .expect("loss");
        assert!((l - (classes as f64).ln()).abs() < 1e-6);
        // Gradient of the bias at W = 0 is mean(1/C - onehot).
        let mut grad = model.zeros::<f32>();
        let lg = model
            .loss_grad(&params, &ds.train, &batch, &mut grad, &mut scratch)
            .expect("grad");
        assert_eq!(lg, l);
        let gb = model.bias(&grad);
        let mut counts = vec![0usize; classes];
        for &i in &batch {
            counts[ds.train.y()[i] as usize] += 1;
        }
        for (c, &g) in gb.iter().enumerate() {
            let want = 1.0 / classes as f64 - counts[c] as f64 / 16.0;
            assert!((f64::from(g) - want).abs() < 1e-6);
        }
    }
}

#[test]
fn gradient_matches_finite_differences() {
    let (d, classes) = (5usize, 4usize);
    let data = toy(40, d, classes as u32, 11);
    let model = LogReg::new(d, classes).expect("model");
    let mut s = 99u64;
    let params: Vec<f64> = (0..model.num_params()).map(|_| lcg(&mut s)).collect();
    let batch: Vec<usize> = vec![3, 17, 0, 39, 17, 8, 22];

    let mut sc64 = Scratch::<f64>::new(&model);
    let mut g64 = model.zeros::<f64>();
    let loss = model
        .loss_grad(&params, &data, &batch, &mut g64, &mut sc64)
        .expect("grad f64");
    assert!(loss.is_finite() && loss > 0.0);

    // Central differences in f64.
    let h = 1e-6;
    let mut p = params.clone();
    for k in 0..params.len() {
        p[k] = params[k] + h;
        let lp = model.loss(&p, &data, &batch, &mut sc64).expect("loss+");
        p[k] = params[k] - h;
        let lm = model.loss(&p, &data, &batch, &mut sc64).expect("loss-");
        p[k] = params[k];
        let fd = (lp - lm) / (2.0 * h);
        assert!(
            (fd - g64[k]).abs() < 1e-7 * (1.0 + fd.abs()),
            "param {k}: fd {fd} vs analytic {}",
            g64[k]
        );
    }

    // The f32 instance agrees with the f64 one to f32 accuracy.
    let p32: Vec<f32> = params.iter().map(|&v| v as f32).collect();
    let mut sc32 = Scratch::<f32>::new(&model);
    let mut g32 = model.zeros::<f32>();
    let loss32 = model
        .loss_grad(&p32, &data, &batch, &mut g32, &mut sc32)
        .expect("grad f32");
    assert!((loss32 - loss).abs() < 1e-5 * loss);
    for (k, (&a, &b)) in g32.iter().zip(&g64).enumerate() {
        assert!(
            (f64::from(a) - b).abs() < 1e-5,
            "param {k}: f32 {a} vs f64 {b}"
        );
    }
}

#[test]
fn softmax_is_stable_for_huge_logits() {
    let data = Split::new(vec![1.0, -1.0], vec![0, 1], 1).expect("split");
    let model = LogReg::new(1, 2).expect("model");
    // W = [1e4, -1e4]: logits ±1e4 would overflow a naive exp.
    let params = vec![1e4f32, -1e4, 0.0, 0.0];
    let ev = model.evaluate(&params, &data).expect("eval");
    assert!(ev.loss.is_finite() && ev.loss < 1e-6);
    assert_eq!(ev.accuracy, 1.0);
    let flipped = vec![-1e4f32, 1e4, 0.0, 0.0];
    let ev = model.evaluate(&flipped, &data).expect("eval");
    assert!((ev.loss - 2e4).abs() < 1.0, "{}", ev.loss);
    assert_eq!(ev.correct, 0);
    let mut sc = Scratch::new(&model);
    assert_eq!(model.predict(&params, &[1.0], &mut sc).expect("predict"), 0);
}

/// `−ln softmax(z)_y = ln(1 + Σ_{j≠y} exp(z_j − z_y))`, in `f64`.
fn reference_loss(z: &[f64], y: usize) -> f64 {
    let rest: f64 = z
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != y)
        .map(|(_, &v)| (v - z[y]).exp())
        .sum();
    rest.ln_1p()
}

#[test]
fn confidently_classified_rows_keep_a_tiny_positive_loss() {
    // One feature x = 1, so the logits are W + b. With margins of about 20..150, `1 + exp(−margin)`
    // is 1 in f32 (the loss used to be exactly 0) and exp(−150) even underflows f32.
    let model = LogReg::new(1, 3).expect("model");
    let data = Split::new(vec![1.0, 1.0, 1.0, 1.0], vec![0, 2, 1, 0], 1).expect("split");
    let cases: [([f32; 3], usize); 4] = [
        ([20.3, -0.7, 1.9], 0),    // margin ≈ 18.4, differences not exact in f32
        ([-30.0, 5.0, 42.5], 2),   // margin 37.5
        ([-75.0, 75.0, -80.0], 1), // margin 150
        ([3.1, -2.9, 0.4], 1),     // misclassified: loss ≈ 6
    ];
    let mut sc = Scratch::<f32>::new(&model);
    for (w, y) in cases {
        let params = [w[0], w[1], w[2], 0.0, 0.0, 0.0];
        let row = [0usize, 1, 2, 3]
            .into_iter()
            .find(|&r| data.y()[r] as usize == y)
            .expect("row");
        let z: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
        let want = reference_loss(&z, y);
        assert!(want > 0.0);
        let got = model.loss(&params, &data, &[row], &mut sc).expect("loss");
        assert!(got > 0.0, "logits {w:?}, label {y}: loss {got}");
        assert!(
            (got - want).abs() <= 1e-6 * want,
            "logits {w:?}, label {y}: loss {got}, reference {want}"
        );
        // The f64 model agrees, and the gradient path reports the same loss.
        let p64: Vec<f64> = params.iter().map(|&v| f64::from(v)).collect();
        let got64 = model
            .loss(&p64, &data, &[row], &mut Scratch::new(&model))
            .expect("loss f64");
        assert!(
            (got64 - want).abs() <= 1e-12 * want,
            "f64: {got64} vs {want}"
        );
        let mut g = model.zeros::<f32>();
        assert_eq!(
            model
                .loss_grad(&params, &data, &[row], &mut g, &mut sc)
                .expect("grad"),
            got
        );
    }
    // The reported (evaluated) mean loss of a confidently fitted split is positive too.
    let params = [20.3f32, -0.7, 1.9, 0.0, 0.0, 0.0];
    let only0 = Split::new(vec![1.0, 1.0], vec![0, 0], 1).expect("split");
    let ev = model.evaluate(&params, &only0).expect("evaluate");
    let want = reference_loss(
        &[f64::from(20.3f32), f64::from(-0.7f32), f64::from(1.9f32)],
        0,
    );
    assert!(
        ev.loss > 0.0 && (ev.loss - want).abs() <= 1e-6 * want,
        "{} vs {want}",
        ev.loss
    );
}

#[test]
fn evaluation_is_parallel_but_deterministic_and_matches_serial() {
    let data = toy(2000, 7, 5, 5);
    let model = LogReg::new(7, 5).expect("model");
    let mut s = 3u64;
    let params: Vec<f32> = (0..model.num_params())
        .map(|_| lcg(&mut s) as f32)
        .collect();
    let ev = model.evaluate(&params, &data).expect("eval");
    assert_eq!(ev, model.evaluate(&params, &data).expect("eval again"));
    let all: Vec<usize> = (0..data.rows()).collect();
    let serial = model
        .loss(&params, &data, &all, &mut Scratch::new(&model))
        .expect("serial");
    assert!((serial - ev.loss).abs() < 1e-9 * serial.abs().max(1.0));
    let mut sc = Scratch::new(&model);
    let correct = (0..data.rows())
        .filter(|&i| {
            model
                .predict(&params, data.row(i), &mut sc)
                .expect("predict")
                == data.y()[i]
        })
        .count();
    assert_eq!(correct, ev.correct);
}

#[test]
fn model_errors_are_typed() {
    let data = toy(4, 3, 2, 1);
    let model = LogReg::new(3, 2).expect("model");
    let mut sc = Scratch::<f32>::new(&model);
    let mut g = model.zeros::<f32>();
    let p = model.zeros::<f32>();
    assert_eq!(model.num_params(), 8);
    assert!(matches!(
        model.loss_grad(&p[..7], &data, &[0], &mut g, &mut sc),
        Err(ModelError::Shape { .. })
    ));
    assert!(matches!(
        model.loss_grad(&p, &data, &[], &mut g, &mut sc),
        Err(ModelError::Empty)
    ));
    assert!(matches!(
        model.loss_grad(&p, &data, &[4], &mut g, &mut sc),
        Err(ModelError::RowOutOfRange { row: 4, rows: 4 })
    ));
    let small = LogReg::new(3, 1).expect("model");
    assert!(matches!(
        small.evaluate(&small.zeros::<f32>(), &data),
        Err(ModelError::LabelOutOfRange { .. })
    ));
    assert!(matches!(LogReg::new(3, 0), Err(ModelError::NoClasses)));
}
