//! Shared by everything that starts real brisk processes — the integration tests, the
//! fault-injection harness, `brisk dev` and `rolling-restart` (and the benchmarks through
//! `brisk dev`'s helpers) — so each does these the same way:
//!
//! - [`ports`]: TCP ports below the ephemeral range, never handed out twice by one process
//!   (a port from `:0` can be taken by an outgoing connection before the node binds it);
//! - [`http`]: the readiness probe (`/readyz`) and other GETs of a node's HTTP port;
//! - [`wait`]: polling a condition with a deadline instead of sleeping;
//! - [`process`]: signals, and children that die with the process that started them;
//! - [`members`]: the `--bootstrap` member list.

pub mod http;
pub mod members;
pub mod ports;
pub mod process;
pub mod wait;
