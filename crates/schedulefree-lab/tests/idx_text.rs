//! IDX and text loaders on the bundled files and on malformed input.

use std::io::Write;
use std::path::{Path, PathBuf};

use schedulefree_lab::data::idx::{self, IdxError};
use schedulefree_lab::data::text::{TextCorpus, TextError, Vocab};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

fn tmp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sflab-idx-text-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

/// An IDX byte file: magic 0x08 / `dims.len()`, sizes, then `data`.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Rows of `data/MANIFEST-idx-text.tsv` as column maps.
fn manifest() -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(data_dir().join("MANIFEST-idx-text.tsv")).expect("manifest");
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split('\t')
        .map(String::from)
        .collect();
    assert_eq!(
        header,
        [
            "dataset",
            "split",
            "file",
            "kind",
            "shape",
            "class_counts",
            "bytes",
            "sha256"
        ]
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split('\t').map(String::from))
                .collect()
        })
        .collect()
}

#[test]
fn bundled_mnist_matches_readme_and_manifest() {
    let dir = data_dir().join("mnist-10k");
    let train = idx::read_image_set(
        &dir.join("train-images-idx3-ubyte.gz"),
        &dir.join("train-labels-idx1-ubyte.gz"),
        10,
    )
    .expect("train split");
    let test = idx::read_image_set(
        &dir.join("test-images-idx3-ubyte.gz"),
        &dir.join("test-labels-idx1-ubyte.gz"),
        10,
    )
    .expect("test split");
    // data/README.md, "IDX and text".
    assert_eq!((train.len(), train.rows, train.cols), (8000, 28, 28));
    assert_eq!((test.len(), test.rows, test.cols), (2000, 28, 28));
    assert_eq!(
        train.class_counts(10),
        [801, 902, 793, 826, 784, 690, 811, 856, 755, 782]
    );
    assert_eq!(
        test.class_counts(10),
        [200, 225, 198, 206, 196, 173, 203, 214, 189, 196]
    );
    // Files list class 0 first: the first label is 0, the last 9.
    assert_eq!((train.labels[0], train.labels[7999]), (0, 9));
    // Real digits: some ink, mostly background.
    let ink = train.image(0).iter().filter(|&&p| p > 128).count();
    assert!((40..400).contains(&ink), "{ink} ink pixels");

    for row in manifest() {
        let path = data_dir().join(&row["file"]);
        let bytes = std::fs::metadata(&path).expect("listed file exists").len();
        assert_eq!(bytes.to_string(), row["bytes"], "{}", row["file"]);
        match row["kind"].as_str() {
            "idx-images" => {
                let a = idx::read_idx(&path, 3).expect("images");
                let shape: Vec<String> = a.dims.iter().map(|d| d.to_string()).collect();
                assert_eq!(shape.join("x"), row["shape"]);
            }
            "idx-labels" => {
                let a = idx::read_idx(&path, 1).expect("labels");
                assert_eq!(a.dims[0].to_string(), row["shape"]);
                let mut counts = [0usize; 10];
                for &l in &a.data {
                    counts[l as usize] += 1;
                }
                let counts: Vec<String> = counts.iter().map(|c| c.to_string()).collect();
                assert_eq!(counts.join(","), row["class_counts"]);
            }
            "text" => {
                let text = std::fs::read_to_string(&path).expect("text");
                assert_eq!(text.chars().count().to_string(), row["shape"]);
            }
            other => panic!("unknown kind {other}"),
        }
    }
}

#[test]
fn idx_rejects_bad_magic_and_truncation() {
    let good = idx_bytes(&[2, 2, 2], &[1, 2, 3, 4, 5, 6, 7, 8]);
    let a = idx::parse_idx(&good, 3).expect("valid");
    assert_eq!(a.dims, [2, 2, 2]);
    assert_eq!(a.data, [1, 2, 3, 4, 5, 6, 7, 8]);

    // Wrong dimension count, wrong type code, garbage in the zero bytes.
    assert!(matches!(
        idx::parse_idx(&good, 1),
        Err(IdxError::BadMagic {
            found: 0x0803,
            expected: 0x0801
        })
    ));
    let mut float_type = good.clone();
    float_type[2] = 0x0D;
    assert!(matches!(
        idx::parse_idx(&float_type, 3),
        Err(IdxError::BadMagic { .. })
    ));
    let mut text = good.clone();
    text[0] = b'P';
    assert!(matches!(
        idx::parse_idx(&text, 3),
        Err(IdxError::BadMagic { .. })
    ));

    // Truncated inside the magic, inside the sizes, and inside the data.
    assert!(matches!(
        idx::parse_idx(&good[..3], 3),
        Err(IdxError::Truncated { .. })
    ));
    assert!(matches!(
        idx::parse_idx(&good[..9], 3),
        Err(IdxError::Truncated {
            expected: 16,
            found: 9
        })
    ));
    assert!(matches!(
        idx::parse_idx(&good[..20], 3),
        Err(IdxError::Truncated {
            expected: 24,
            found: 20
        })
    ));
    // Extra bytes.
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(
        idx::parse_idx(&long, 3),
        Err(IdxError::TrailingBytes { extra: 1 })
    ));
    // Absurd sizes are refused before allocating.
    let huge = idx_bytes(&[u32::MAX, u32::MAX, 28], &[]);
    assert!(matches!(
        idx::parse_idx(&huge, 3),
        Err(IdxError::TooLarge { .. })
    ));

    // Through files: plain and gzip read the same; errors name the file.
    let plain = tmp_file("ok-idx3", &good);
    let gz = tmp_file("ok-idx3.gz", &gzip(&good));
    assert_eq!(idx::read_idx(&plain, 3).expect("plain"), a);
    assert_eq!(idx::read_idx(&gz, 3).expect("gzip"), a);
    let cut = tmp_file("cut-idx3.gz", &gzip(&good[..20]));
    let err = idx::read_idx(&cut, 3).expect_err("truncated");
    assert!(matches!(err, IdxError::InFile { .. }), "{err}");
    assert!(matches!(err.innermost(), IdxError::Truncated { .. }));
    assert!(err.to_string().contains("cut-idx3.gz"), "{err}");
    // A gzip stream cut short is an I/O error.
    let gz_bytes = gzip(&good);
    let broken = tmp_file("broken.gz", &gz_bytes[..gz_bytes.len() / 2]);
    assert!(matches!(
        idx::read_idx(&broken, 3),
        Err(IdxError::Io { .. })
    ));
    assert!(matches!(
        idx::read_idx(Path::new("/nonexistent/file"), 3),
        Err(IdxError::Io { .. })
    ));
}

#[test]
fn image_set_checks_counts_and_labels() {
    let images = tmp_file("set-images", &idx_bytes(&[2, 2, 2], &[0; 8]));
    let three = tmp_file("set-labels3", &idx_bytes(&[3], &[0, 1, 2]));
    let err = idx::read_image_set(&images, &three, 10).expect_err("3 labels for 2 images");
    assert!(matches!(
        err.innermost(),
        IdxError::CountMismatch {
            images: 2,
            labels: 3
        }
    ));
    let bad = tmp_file("set-labels-bad", &idx_bytes(&[2], &[1, 10]));
    let err = idx::read_image_set(&images, &bad, 10).expect_err("label 10 of 10 classes");
    assert!(matches!(
        err.innermost(),
        IdxError::LabelOutOfRange {
            index: 1,
            label: 10,
            classes: 10
        }
    ));
    let ok = tmp_file("set-labels-ok", &idx_bytes(&[2], &[1, 9]));
    let set = idx::read_image_set(&images, &ok, 10).expect("valid set");
    assert_eq!((set.len(), set.rows, set.cols), (2, 2, 2));
    assert_eq!(set.class_counts(10)[9], 1);
}

#[test]
fn vocab_and_split_are_deterministic() {
    let text = "to be, or not to be: that is the question.\n";
    let v = Vocab::from_text(text);
    assert_eq!(
        v.chars(),
        &[
            '\n', ' ', ',', '.', ':', 'a', 'b', 'e', 'h', 'i', 'n', 'o', 'q', 'r', 's', 't', 'u'
        ]
    );
    assert_eq!(v.id('\n'), Some(0));
    assert_eq!(v.id('u'), Some(16));
    assert_eq!(v.id('z'), None);

    let c = TextCorpus::from_text(text, 0.75, 4).expect("corpus");
    let n = text.chars().count();
    assert_eq!(c.train.len(), (n as f64 * 0.75).floor() as usize);
    assert_eq!(c.train.len() + c.valid.len(), n);
    let mut all = c.train.clone();
    all.extend(&c.valid);
    assert_eq!(c.vocab.decode(&all), text);
    assert_eq!(TextCorpus::from_text(text, 0.75, 4).expect("again"), c);

    let (x, y) = TextCorpus::window(&c.train, 3, 5);
    assert_eq!(x.len(), 5);
    assert_eq!(&x[1..], &y[..4]);
    assert_eq!(TextCorpus::window_starts(&c.train, 5), c.train.len() - 5);

    // Non-ASCII characters are single tokens.
    let v = Vocab::from_text("ééa");
    assert_eq!(v.len(), 2);
    assert_eq!(v.decode(&[1, 0, 7]), "éa\u{FFFD}");

    assert!(matches!(
        TextCorpus::from_text(text, 1.0, 4),
        Err(TextError::BadFraction(_))
    ));
    assert!(matches!(
        TextCorpus::from_text(text, f64::NAN, 4),
        Err(TextError::BadFraction(_))
    ));
    assert!(matches!(
        TextCorpus::from_text(text, 0.9, 10),
        Err(TextError::TooShort { min_len: 10, .. })
    ));
    let bad = tmp_file("bad-utf8.txt", &[b'a', b'b', 0xFF, b'c']);
    assert!(matches!(
        TextCorpus::read(&bad, 0.5, 1),
        Err(TextError::NotUtf8 { offset: 2, .. })
    ));
    assert!(matches!(
        TextCorpus::read(Path::new("/nonexistent/text"), 0.5, 1),
        Err(TextError::Io { .. })
    ));
}

#[test]
fn bundled_tragedies_corpus() {
    let path = data_dir().join("text/shakespeare-tragedies.txt");
    let c = TextCorpus::read(&path, 0.9, 65).expect("tragedies");
    // data/README.md: 841,779 characters, 73 distinct.
    assert_eq!(c.vocab.len(), 73);
    assert_eq!(c.train.len(), 757_601);
    assert_eq!(c.valid.len(), 841_779 - 757_601);
    assert!(c.vocab.decode(&c.train[..6]).starts_with("HAMLET"));
    assert_eq!(TextCorpus::read(&path, 0.9, 65).expect("again"), c);
}

/// Fashion-MNIST is read from the shared folder (not bundled); skipped where it is absent.
#[test]
fn fashion_mnist_from_shared_folder() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/fashion-mnist");
    if !dir.is_dir() {
        eprintln!("skipped: {} not present", dir.display());
        return;
    }
    let test = idx::read_image_set(
        &dir.join("t10k-images-idx3-ubyte.gz"),
        &dir.join("t10k-labels-idx1-ubyte.gz"),
        10,
    )
    .expect("fashion test split");
    assert_eq!((test.len(), test.rows, test.cols), (10_000, 28, 28));
    assert_eq!(test.class_counts(10), [1000; 10]);
}
