//! brisk-grpc: the gRPC adapter. Each handler decodes a request into a
//! [`brisk_service::Service`] call and encodes the result; errors become statuses in
//! [`status_of`]. No domain rule and no storage knowledge lives here.

mod admin;
mod errors;
mod raw;
mod txn;

pub use admin::AdminService;
pub use errors::status_of;
pub use raw::RawKvService;
pub use txn::TxnService;

use brisk_service::{Origin, FORWARDED_HEADER};

/// Whether another member forwarded this request (it must not be forwarded again).
fn origin<T>(req: &tonic::Request<T>) -> Origin {
    if req.metadata().contains_key(FORWARDED_HEADER) {
        Origin::Forwarded
    } else {
        Origin::Client
    }
}
