//! The first seed's calculator system over plain TCP: a server that reads one
//! expression, answers and closes (`roundhouse backend --calc-tcp`), its `LOAD` status
//! port, and the client loop (`roundhouse client calc --tcp`). It runs behind the L4
//! balancer (`crate::l4`), which never looks inside the bytes.
//!
//! Read in this order: `one_shot` (read once, answer, close), `server`, `client`.

pub mod client;
pub mod one_shot;
pub mod server;
