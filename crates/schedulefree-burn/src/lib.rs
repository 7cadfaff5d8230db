//! burn adapter (in progress).
