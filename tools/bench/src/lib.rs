//! What the standalone bench binaries (`src/bin/*`) and `clasp-bench` share.

pub mod process;
