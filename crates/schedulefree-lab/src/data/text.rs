//! Plain-text corpora for character-level language modelling.
//!
//! A corpus is read as UTF-8; its vocabulary is the set of distinct characters (Unicode
//! scalar values) sorted by code point, so token ids depend only on the text. The split is
//! by position: the first `⌊train_fraction · len⌋` characters train, the rest validate (the
//! usual 90 / 10 split of Tiny Shakespeare). Nothing is random here; sample windows with a
//! seeded generator (see [`TextCorpus::window`]).

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Default share of the characters used for training.
pub const DEFAULT_TRAIN_FRACTION: f64 = 0.9;

/// Errors from loading a text corpus.
#[derive(Debug, Error)]
pub enum TextError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// File being read.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid UTF-8.
    #[error("{}: not valid UTF-8 at byte {offset}", path.display())]
    NotUtf8 {
        /// File being read.
        path: PathBuf,
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// `train_fraction` is not strictly between 0 and 1.
    #[error("train fraction {0} is not in (0, 1)")]
    BadFraction(f64),
    /// A split would be shorter than `min_len` characters (one window plus its target).
    #[error("text of {chars} characters is too short: each split needs at least {min_len}")]
    TooShort {
        /// Characters in the text.
        chars: usize,
        /// Minimum characters per split.
        min_len: usize,
    },
}

/// A character vocabulary: distinct characters sorted by code point; token id = position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocab {
    chars: Vec<char>,
}

impl Vocab {
    /// The sorted distinct characters of `text`.
    pub fn from_text(text: &str) -> Self {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Self { chars }
    }

    /// Number of distinct characters.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether the vocabulary is empty (empty text).
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// Characters in token-id order.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// Token id of `c`, if it is in the vocabulary.
    pub fn id(&self, c: char) -> Option<u32> {
        self.chars
            .binary_search(&c)
            .ok()
            .and_then(|i| u32::try_from(i).ok())
    }

    /// Decodes token ids (ids outside the vocabulary become `U+FFFD`).
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .map(|&i| {
                self.chars
                    .get(i as usize)
                    .copied()
                    .unwrap_or(char::REPLACEMENT_CHARACTER)
            })
            .collect()
    }
}

/// A tokenised corpus split into a training and a validation part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextCorpus {
    /// Vocabulary built from the whole text.
    pub vocab: Vocab,
    /// Token ids of the training part.
    pub train: Vec<u32>,
    /// Token ids of the validation part.
    pub valid: Vec<u32>,
}

impl TextCorpus {
    /// Tokenises `text` and splits it at `⌊train_fraction · chars⌋`. Each split must hold at
    /// least `min_len` characters (pass `context + 1` to be able to take one window).
    ///
    /// # Errors
    /// [`TextError::BadFraction`], [`TextError::TooShort`].
    pub fn from_text(text: &str, train_fraction: f64, min_len: usize) -> Result<Self, TextError> {
        if !(train_fraction > 0.0 && train_fraction < 1.0) {
            return Err(TextError::BadFraction(train_fraction));
        }
        let vocab = Vocab::from_text(text);
        // Every character is in the vocabulary by construction.
        let ids: Vec<u32> = text.chars().filter_map(|c| vocab.id(c)).collect();
        let cut = (ids.len() as f64 * train_fraction).floor() as usize;
        if cut < min_len || ids.len() - cut < min_len {
            return Err(TextError::TooShort {
                chars: ids.len(),
                min_len,
            });
        }
        let valid = ids[cut..].to_vec();
        let mut train = ids;
        train.truncate(cut);
        Ok(Self {
            vocab,
            train,
            valid,
        })
    }

    /// Reads a UTF-8 file and calls [`TextCorpus::from_text`].
    ///
    /// # Errors
    /// [`TextError::Io`], [`TextError::NotUtf8`], and those of [`TextCorpus::from_text`].
    pub fn read(path: &Path, train_fraction: f64, min_len: usize) -> Result<Self, TextError> {
        let bytes = std::fs::read(path).map_err(|source| TextError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| TextError::NotUtf8 {
            path: path.to_path_buf(),
            offset: e.utf8_error().valid_up_to(),
        })?;
        Self::from_text(&text, train_fraction, min_len)
    }

    /// Input and next-token target of the window of `context` tokens starting at `start` of
    /// `tokens`: `(tokens[start..start+context], tokens[start+1..start+context+1])`.
    ///
    /// # Panics
    /// If `start + context + 1 > tokens.len()`.
    pub fn window(tokens: &[u32], start: usize, context: usize) -> (&[u32], &[u32]) {
        (
            &tokens[start..start + context],
            &tokens[start + 1..start + context + 1],
        )
    }

    /// Number of window start positions in `tokens` for `context` (`len − context`, or 0).
    pub fn window_starts(tokens: &[u32], context: usize) -> usize {
        tokens.len().saturating_sub(context)
    }
}
