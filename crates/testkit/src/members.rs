//! The member list every founding node of a cluster is started with.

/// `--bootstrap`'s value: `ID=CLIENT_HOST:PORT/PEER_HOST:PORT,...` for `members` given as
/// (id, client address, peer address).
pub fn bootstrap_list<'a>(members: impl IntoIterator<Item = (u64, &'a str, &'a str)>) -> String {
    members
        .into_iter()
        .map(|(id, client, peer)| format!("{id}={client}/{peer}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
#[test]
fn lists_members_as_bootstrap_reads_them() {
    assert_eq!(
        bootstrap_list([(1, "a:1", "a:2"), (2, "b:1", "b:2")]),
        "1=a:1/a:2,2=b:1/b:2"
    );
}
