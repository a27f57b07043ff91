//! Network partitions between nodes with nftables: every node has its own loopback address,
//! and a rule drops packets from one node's address to another's. brisk's outgoing member
//! connections leave from the node's own address, so the rules cut exactly member traffic;
//! the harness's clients (127.0.0.1) still reach every node.

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{bail, Context, Result};

pub struct Firewall {
    table: String,
}

fn nft(args: &[&str]) -> Result<()> {
    let o = Command::new("nft")
        .args(args)
        .output()
        .context("running nft (Debian package nftables)")?;
    if !o.status.success() {
        bail!(
            "nft {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(())
}

impl Firewall {
    /// A table of this process's own (removed on drop).
    pub fn new() -> Result<Self> {
        let table = format!("brisk_torture_{}", std::process::id());
        let _ = nft(&["delete", "table", "inet", &table]);
        nft(&["add", "table", "inet", &table])?;
        nft(&[
            "add",
            "chain",
            "inet",
            &table,
            "cut",
            "{ type filter hook output priority 0 ; policy accept ; }",
        ])?;
        Ok(Firewall { table })
    }

    /// Drops traffic between every pair of nodes in different groups.
    pub fn partition(&self, groups: &[Vec<Ipv4Addr>]) -> Result<()> {
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i == j {
                    continue;
                }
                for x in a {
                    for y in b {
                        nft(&[
                            "add",
                            "rule",
                            "inet",
                            &self.table,
                            "cut",
                            "ip",
                            "saddr",
                            &x.to_string(),
                            "ip",
                            "daddr",
                            &y.to_string(),
                            "drop",
                        ])?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Drops traffic between `a` and `b` only.
    pub fn cut(&self, a: Ipv4Addr, b: Ipv4Addr) -> Result<()> {
        self.partition(&[vec![a], vec![b]])
    }

    pub fn heal(&self) -> Result<()> {
        nft(&["flush", "chain", "inet", &self.table, "cut"])
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        let _ = nft(&["delete", "table", "inet", &self.table]);
    }
}
