//! The Redis-protocol (RESP2) front end, in the shape of mini-redis:
//!
//! - [`Listener`](listener::Listener) accepts connections, bounded by `connections_max`;
//! - a [`Handler`](listener::Handler) per connection reads [`Frame`](frame::Frame)s through a
//!   [`connection`], parses each into a [`Command`](cmd::Command) (one file per command in
//!   [`cmd`]), runs it, and writes the replies back in request order;
//! - [`session`] is the connection's client session and the retry/forward/redirect logic
//!   that takes one operation to the node that can serve it;
//! - [`ephemeral`] is the connection's session lease: its `SET ... EPHEMERAL` keys, renewed
//!   while the connection lives and revoked when it closes (ZooKeeper's ephemeral nodes).
//!
//! Malformed RESP is answered `-ERR Protocol error: ...` and the connection is closed (what
//! Redis does: after garbage, the framing cannot be trusted); a well-formed but wrong command
//! is answered with an error and the connection stays open. Nothing a client sends can make
//! the node panic or allocate beyond the configured limits.

pub mod client;
pub mod cmd;
pub mod connection;
pub mod ephemeral;
pub mod frame;
pub mod listener;
pub mod session;

pub use listener::Listener;
