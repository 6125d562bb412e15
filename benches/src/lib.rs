//! Input generators shared by the criterion benchmarks.
