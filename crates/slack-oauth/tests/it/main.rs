//! The slack-oauth integration tests: one binary, one module per area.

// The install flow: router-level branches and end-to-end installs against the emulator.
mod flow;
