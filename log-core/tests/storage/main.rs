//! Integration tests of the storage engine, one binary with a module per concern.

mod crash;
mod fixtures;
mod manager;
