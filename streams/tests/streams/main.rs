//! Integration tests of `sluice-streams`: one binary, a module per area.

mod aggregate;
mod dsl;
mod join;
mod runtime;
mod stream_join;
mod tables;
mod windows;
