//! Consumer groups: the coordinator of the classic group protocol and the `__consumer_offsets`
//! records it keeps.

pub mod coordinator;
pub mod store;
