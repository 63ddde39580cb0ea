//! Fuzzing entry.
