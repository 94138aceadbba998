//! The first seed's calculator system over plain TCP: a server that reads one
//! expression, answers and closes (`roundhouse backend --calc-tcp`), its `LOAD` status
//! port, and the client loop (`roundhouse client calc --tcp`). It runs behind the L4
//! balancer (`crate::l4`), which never looks inside the bytes.
//!
//! OS concept: the connection as the message frame. The protocol has no length and no
//! delimiter: one connection carries one expression, and end-of-file ends the answer.
//! `one_shot.rs` shows what that costs on a byte stream, and `client.rs` how a
//! half-close says "no more" through the balancer.
//!
//! Read in this order: `one_shot` (read once, answer, close), `server`, `client`.

pub mod client;
pub mod one_shot;
pub mod server;
