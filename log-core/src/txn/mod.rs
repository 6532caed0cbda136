//! Transactions (KIP-98): the transaction coordinator's state machine and the records of
//! `__transaction_state` it keeps. The broker (`broker::transactions`) drives them: it writes
//! each state change to `__transaction_state` and the COMMIT/ABORT markers to the partitions.

pub mod state;
pub mod store;
