//! Integration tests of `sluice-streams`: one binary, a module per area.

mod aggregate;
mod dsl;
mod exactly_once;
mod fixtures;
mod fk_join;
mod global;
mod join;
mod processor;
mod runtime;
mod sessions;
mod stream_join;
mod suppress;
mod tables;
mod windows;
