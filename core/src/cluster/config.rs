//! A member's configuration from its environment (the node binary's
//! surface): `NODE_ID`, `CLUSTER_PEERS`, `CLUSTER_SIZE`,
//! `COLLECTION_STORE_ROOT`, `CLUSTER_SECRET` or `CLUSTER_SECRET_FILE`,
//! `CLIENT_ADDR`, `RAFT_SNAPSHOT_LOGS`, `RAFT_KEEP_LOGS`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::node::NodeConfig;
use super::types::NodeId;
use crate::error::{Error, Result};
use crate::replication::auth::check_secret;

fn bad(m: impl Into<String>) -> Error {
    Error::Replication(m.into())
}

/// Parses `CLUSTER_PEERS`: `id=host:port` items separated by commas.
pub fn parse_peers(s: &str) -> Result<BTreeMap<NodeId, String>> {
    let mut peers = BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (id, addr) = item
            .split_once('=')
            .ok_or_else(|| bad(format!("CLUSTER_PEERS item {item:?} is not id=host:port")))?;
        let id: NodeId = id.trim().parse().map_err(|_| {
            bad(format!(
                "CLUSTER_PEERS item {item:?}: the id is not a number"
            ))
        })?;
        let addr = addr.trim();
        if addr
            .rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return Err(bad(format!(
                "CLUSTER_PEERS item {item:?}: the address is not host:port"
            )));
        }
        if peers.insert(id, addr.to_owned()).is_some() {
            return Err(bad(format!("CLUSTER_PEERS names node {id} twice")));
        }
    }
    if peers.is_empty() {
        return Err(bad("CLUSTER_PEERS names no node"));
    }
    Ok(peers)
}

fn number(var: &str, v: &str) -> Result<u64> {
    v.trim()
        .parse()
        .map_err(|_| bad(format!("{var}={v:?} is not a number")))
}

/// Reads the shared secret from `CLUSTER_SECRET` or the file named by
/// `CLUSTER_SECRET_FILE` (one trailing newline or other whitespace dropped),
/// and checks it is long enough.
pub fn secret_from_env(get: impl Fn(&str) -> Option<String>) -> Result<Vec<u8>> {
    let secret = match (get("CLUSTER_SECRET"), get("CLUSTER_SECRET_FILE")) {
        (Some(_), Some(_)) => {
            return Err(bad("set CLUSTER_SECRET or CLUSTER_SECRET_FILE, not both"))
        }
        (Some(s), None) => s.into_bytes(),
        (None, Some(f)) => {
            let mut s = std::fs::read(&f).map_err(|e| Error::io_at(std::path::Path::new(&f), e))?;
            while s.last().is_some_and(|b| b.is_ascii_whitespace()) {
                s.pop();
            }
            s
        }
        (None, None) => return Err(bad("CLUSTER_SECRET or CLUSTER_SECRET_FILE must be set")),
    };
    check_secret(&secret)?;
    Ok(secret)
}

/// Reads a member's configuration through `get` (the process environment
/// in the binary; a map in tests). Every problem is a typed error naming
/// the variable.
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<NodeConfig> {
    let need = |var: &str| get(var).ok_or_else(|| bad(format!("{var} is not set")));
    let id = number("NODE_ID", &need("NODE_ID")?)?;
    let peers = parse_peers(&need("CLUSTER_PEERS")?)?;
    if let Some(size) = get("CLUSTER_SIZE") {
        let size = number("CLUSTER_SIZE", &size)?;
        if size != peers.len() as u64 {
            return Err(bad(format!(
                "CLUSTER_SIZE is {size} but CLUSTER_PEERS names {} nodes",
                peers.len()
            )));
        }
    }
    if !peers.contains_key(&id) {
        return Err(bad(format!("NODE_ID {id} is not one of CLUSTER_PEERS")));
    }
    let root = PathBuf::from(need("COLLECTION_STORE_ROOT")?);
    let secret = secret_from_env(&get)?;
    let client_addr = get("CLIENT_ADDR").unwrap_or_else(|| "127.0.0.1:0".into());
    let snapshot_logs = match get("RAFT_SNAPSHOT_LOGS") {
        Some(v) => number("RAFT_SNAPSHOT_LOGS", &v)?,
        None => 10_000,
    };
    let keep_logs = match get("RAFT_KEEP_LOGS") {
        Some(v) => number("RAFT_KEEP_LOGS", &v)?,
        None => 1_000,
    };
    Ok(NodeConfig {
        id,
        peers,
        root,
        secret,
        client_addr,
        snapshot_logs,
        keep_logs,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    const BASE: &[(&str, &str)] = &[
        ("NODE_ID", "2"),
        (
            "CLUSTER_PEERS",
            "1=127.0.0.1:7001, 2=127.0.0.1:7002,3=localhost:7003",
        ),
        ("CLUSTER_SIZE", "3"),
        ("COLLECTION_STORE_ROOT", "data"),
        ("CLUSTER_SECRET", "0123456789abcdef"),
    ];

    fn with(extra: &[(&'static str, &'static str)], drop: &[&str]) -> Result<NodeConfig> {
        let mut v: Vec<(&str, &str)> = BASE
            .iter()
            .copied()
            .filter(|(k, _)| !drop.contains(k))
            .collect();
        for (k, val) in extra {
            v.retain(|(kk, _)| kk != k);
            v.push((k, val));
        }
        from_env(env(&v))
    }

    #[test]
    fn a_full_environment_parses() {
        let c = with(&[], &[]).unwrap();
        assert_eq!(c.id, 2);
        assert_eq!(c.peers.len(), 3);
        assert_eq!(c.peers[&3], "localhost:7003");
        assert_eq!(c.root, PathBuf::from("data"));
        assert_eq!(c.secret, b"0123456789abcdef");
        assert_eq!(c.client_addr, "127.0.0.1:0");
        assert_eq!((c.snapshot_logs, c.keep_logs), (10_000, 1_000));
    }

    #[test]
    fn the_secret_comes_from_a_file_without_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("secret");
        std::fs::write(&f, "fedcba9876543210-file\n").unwrap();
        let path = f.to_str().unwrap().to_owned();
        let path: &'static str = Box::leak(path.into_boxed_str());
        let c = with(&[("CLUSTER_SECRET_FILE", path)], &["CLUSTER_SECRET"]).unwrap();
        assert_eq!(c.secret, b"fedcba9876543210-file");
        assert!(
            with(&[("CLUSTER_SECRET_FILE", path)], &[]).is_err(),
            "both set"
        );
    }

    #[test]
    fn bad_environments_are_typed_errors() {
        let cases: Vec<Result<NodeConfig>> = vec![
            with(&[], &["NODE_ID"]),
            with(&[("NODE_ID", "x")], &[]),
            with(&[("NODE_ID", "9")], &[]),
            with(&[("CLUSTER_SIZE", "5")], &[]),
            with(
                &[("CLUSTER_PEERS", "1=127.0.0.1:7001,1=127.0.0.1:7002")],
                &[],
            ),
            with(&[("CLUSTER_PEERS", "2=nohost")], &[]),
            with(&[("CLUSTER_PEERS", "2:127.0.0.1:1")], &[]),
            with(&[("CLUSTER_PEERS", "")], &[]),
            with(&[("CLUSTER_SECRET", "short")], &[]),
            with(&[], &["CLUSTER_SECRET"]),
            with(&[], &["COLLECTION_STORE_ROOT"]),
            with(&[("RAFT_SNAPSHOT_LOGS", "many")], &[]),
        ];
        for (i, c) in cases.into_iter().enumerate() {
            assert!(matches!(c, Err(Error::Replication(_))), "case {i}: {c:?}");
        }
    }
}
