//! The `clasp` binary. Placeholder until the relay lands (issue 3).
fn main() {
    println!("clasp {}", env!("CARGO_PKG_VERSION"));
}
