//! Integration tests of `sluice-streams`: one binary, a module per area.

mod dsl;
mod runtime;
