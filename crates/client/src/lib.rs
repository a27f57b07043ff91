//! brisk's client library.
//!
//! A [`Client`] takes any members' addresses, sends each call to a node that can serve it
//! (following the leader a node names), and retries across leader changes and node
//! restarts only when the outcome allows: a write is retried only when it definitely was
//! not applied, so an ambiguous outcome reaches the caller as [`Error::Unknown`] instead of
//! being applied twice. [`outcome::classify`] is the rule, usable on its own.
//!
//! ```no_run
//! # async fn demo() -> Result<(), brisk_client::Error> {
//! let client = brisk_client::Client::builder(["127.0.0.1:7001", "127.0.0.1:7011"]).build()?;
//! client.put("greeting", "hello").await?;
//! let v = client.get("greeting", brisk_client::Read::Linearizable).await?;
//! assert_eq!(v.as_deref(), Some(&b"hello"[..]));
//! # Ok(()) }
//! ```

mod client;
mod error;
pub mod outcome;

pub use client::{Client, ClientBuilder, Idempotence, Read};
pub use error::Error;
pub use outcome::{classify, Failure};
