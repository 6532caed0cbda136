//! Integration tests of the storage engine's log manager. The crash test lives in its own binary
//! (`tests/crash`) because it forks writer processes: a fork holds copies of this process's file
//! descriptors until it execs, which would briefly keep data directory locks of other tests held.

#[path = "../fixtures/mod.rs"]
mod fixtures;
mod manager;
