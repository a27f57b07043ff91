//! Ports for nodes a harness starts.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::sync::Mutex;

/// Ports are drawn from here: above the well-known services, below Linux's ephemeral range
/// (32768 and up), so an outgoing connection never takes a port a node is about to bind.
pub const RANGE: std::ops::Range<u16> = 20_000..32_000;

static HANDED_OUT: Mutex<Option<HashSet<(IpAddr, u16)>>> = Mutex::new(None);

/// A port on 127.0.0.1 that is free now and that this process has not handed out before.
pub fn free_port() -> Option<u16> {
    free_port_on(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// A port on `ip` that is free now and that this process has not handed out before.
///
/// Processes running side by side (test binaries run in parallel) start at different points
/// of the range, seeded by their pid, and each probe binds the port to check it is free.
pub fn free_port_on(ip: IpAddr) -> Option<u16> {
    let span = u32::from(RANGE.end - RANGE.start);
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed = handed.get_or_insert_with(HashSet::new);
    let seed = std::process::id()
        .wrapping_mul(7919)
        .wrapping_add(handed.len() as u32 * 13);
    for step in 0..span {
        let port = RANGE.start + ((seed.wrapping_add(step)) % span) as u16;
        if handed.contains(&(ip, port)) {
            continue;
        }
        if TcpListener::bind((ip, port)).is_ok() {
            handed.insert((ip, port));
            return Some(port);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_below_the_ephemeral_range_and_never_repeat() {
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let p = free_port().expect("a free port");
            assert!(RANGE.contains(&p), "{p}");
            assert!(seen.insert(p), "{p} handed out twice");
        }
    }
}
