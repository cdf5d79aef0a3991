//! `collection-store-node`: one member of a collection-store Raft cluster.
//!
//! ```text
//! collection-store-node            run a member configured by its environment
//! collection-store-node status ADDR  print the status of the member whose client port is ADDR
//! ```
//!
//! Environment: `NODE_ID`, `CLUSTER_PEERS` (`id=host:port,...`, every
//! voter's peer port), `CLUSTER_SIZE` (checked against the peers),
//! `COLLECTION_STORE_ROOT`, `CLUSTER_SECRET` or `CLUSTER_SECRET_FILE`,
//! `CLIENT_ADDR` (default `127.0.0.1:0`), `RAFT_SNAPSHOT_LOGS`,
//! `RAFT_KEEP_LOGS`. Once both ports are bound it prints one line,
//! `ready node=ID peer=ADDR client=ADDR`, on standard output.

use std::io::Write;
use std::process::ExitCode;

use collection_store::cluster::{config, NodeClient, RunningNode};

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

async fn run() -> collection_store::Result<()> {
    let cfg = config::from_env(env)?;
    let id = cfg.id;
    let node = RunningNode::start(cfg).await?;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "ready node={id} peer={} client={}",
        node.peer_addr(),
        node.client_addr()
    )?;
    out.flush()?;
    std::future::pending::<()>().await;
    Ok(())
}

async fn status(addr: &str) -> collection_store::Result<()> {
    let secret = config::secret_from_env(env)?;
    let status = NodeClient::connect(addr, &secret).await?.status().await?;
    let json = serde_json::to_string_pretty(&status)
        .map_err(|e| collection_store::Error::Replication(e.to_string()))?;
    println!("{json}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("collection-store-node: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] | ["run"] => rt.block_on(run()),
        ["status", addr] => rt.block_on(status(addr)),
        _ => {
            eprintln!("usage: collection-store-node [run | status CLIENT_ADDR]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("collection-store-node: {e}");
            ExitCode::FAILURE
        }
    }
}
