//! The `slack-oauth` binary.

fn main() {}
