use brisk_raft::node::ProposeError;
use tonic::Status;

/// Response metadata naming the leader's gRPC address, set on redirects.
pub const LEADER_ADDR_HEADER: &str = "x-brisk-leader-addr";

/// Maps an engine error to a gRPC status a client can act on.
pub fn status_of(e: ProposeError) -> Status {
    match e {
        ProposeError::NotLeader {
            leader_id,
            leader_addr,
        } => {
            let mut s = match (&leader_id, &leader_addr) {
                (Some(id), Some(addr)) => Status::unavailable(format!(
                    "not the leader; node {id} at {addr} is; retry there"
                )),
                _ => Status::unavailable("no leader is known yet; retry in a moment"),
            };
            if let Some(addr) = leader_addr {
                if let Ok(v) = addr.parse() {
                    s.metadata_mut().insert(LEADER_ADDR_HEADER, v);
                }
            }
            s
        }
        ProposeError::Unavailable(m) => Status::unavailable(format!("{m}; retry in a moment")),
        ProposeError::Indeterminate(m) => {
            Status::unknown(format!("the write may or may not have been applied: {m}"))
        }
        ProposeError::Membership(m) => Status::failed_precondition(m),
        ProposeError::Fatal(m) => Status::internal(m),
    }
}
