//! Three `collection-store-node` processes on loopback: writes through a
//! follower, the leader SIGKILLed, a new leader elected, writes going on,
//! the old leader restarted and caught up (by a snapshot: the leader keeps
//! no log below its snapshots here), every acknowledged write on every
//! member; and peers or clients without the secret refused.
//!
//! Waits are bounded polls (they fail with the members' statuses); nothing
//! asserts on time.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use collection_store::cluster::openraft::raft::VoteRequest;
use collection_store::cluster::openraft::Vote;
use collection_store::cluster::wire::{self, PeerRequest, PeerResponse};
use collection_store::cluster::{ClientResponse, NodeClient, Status};
use collection_store::replication::auth::client_handshake_as;
use collection_store::Error;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

const SECRET: &str = "cluster-test-secret-0123456789";
const WAIT: Duration = Duration::from_secs(30);

struct Member {
    id: u64,
    root: PathBuf,
    peer: String,
    client: String,
    child: Option<Child>,
}

struct Cluster {
    peers: String,
    members: Vec<Member>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(peers: &str, id: u64, root: &Path) -> (Child, String) {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.with_extension("stderr"))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_collection-store-node"))
        .env("NODE_ID", id.to_string())
        .env("CLUSTER_PEERS", peers)
        .env("CLUSTER_SIZE", "3")
        .env("COLLECTION_STORE_ROOT", root)
        .env("CLUSTER_SECRET", SECRET)
        .env("CLIENT_ADDR", "127.0.0.1:0")
        .env("RAFT_SNAPSHOT_LOGS", "20")
        .env("RAFT_KEEP_LOGS", "0")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("the node binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let client = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("client="))
        .unwrap_or_else(|| panic!("node {id} did not report ready: {line:?}"))
        .to_owned();
    (child, client)
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let peers = (1..=3)
            .map(|i| format!("{i}=127.0.0.1:{}", ports[i - 1]))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = Vec::new();
        for id in 1..=3u64 {
            let root = dir.join(format!("node{id}"));
            let (child, client) = spawn(&peers, id, &root);
            members.push(Member {
                id,
                root,
                peer: format!("127.0.0.1:{}", ports[id as usize - 1]),
                client,
                child: Some(child),
            });
        }
        Cluster { peers, members }
    }

    fn member(&self, id: u64) -> &Member {
        &self.members[id as usize - 1]
    }

    fn kill(&mut self, id: u64) {
        let m = &mut self.members[id as usize - 1];
        let mut c = m.child.take().expect("the member runs");
        c.kill().unwrap(); // SIGKILL
        c.wait().unwrap();
    }

    fn restart(&mut self, id: u64) {
        let peers = self.peers.clone();
        let m = &mut self.members[id as usize - 1];
        let (child, client) = spawn(&peers, id, &m.root);
        m.child = Some(child);
        m.client = client;
    }

    fn running(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| m.child.is_some())
            .map(|m| m.id)
            .collect()
    }

    async fn status(&self, id: u64) -> Option<Status> {
        let mut c = NodeClient::connect(&self.member(id).client, SECRET.as_bytes())
            .await
            .ok()?;
        c.status().await.ok()
    }

    async fn statuses(&self) -> BTreeMap<u64, Option<Status>> {
        let mut out = BTreeMap::new();
        for id in self.running() {
            out.insert(id, self.status(id).await);
        }
        out
    }

    /// Waits until every running member names the same leader, one of
    /// them, in the same term, other than `not`.
    async fn leader(&self, not: Option<u64>) -> Status {
        let deadline = Instant::now() + WAIT;
        loop {
            let all = self.statuses().await;
            let leaders: BTreeSet<Option<u64>> = all
                .values()
                .map(|s| s.as_ref().and_then(|s| s.leader))
                .collect();
            if let [Some(l)] = leaders.iter().copied().collect::<Vec<_>>()[..] {
                if Some(l) != not {
                    if let Some(Some(s)) = all.get(&l) {
                        if s.role == "Leader" {
                            return s.clone();
                        }
                    }
                }
            }
            assert!(Instant::now() < deadline, "no agreed leader: {all:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Inserts `{_id}` through member `via`, retrying while no leader is
    /// known; a duplicate-key rejection after a try whose outcome was
    /// unknown means that try committed.
    async fn insert(&self, via: u64, id: &str) {
        let deadline = Instant::now() + WAIT;
        let mut unknown = false;
        loop {
            let answer =
                match NodeClient::connect(&self.member(via).client, SECRET.as_bytes()).await {
                    Ok(mut c) => c.insert("items", vec![json!({"_id": id})]).await,
                    Err(e) => Err(e),
                };
            match answer {
                Ok(ClientResponse::Inserted { ids, .. }) => {
                    assert_eq!(ids, vec![json!(id)]);
                    return;
                }
                Ok(ClientResponse::Rejected(m)) if unknown && m.contains("duplicate") => return,
                Ok(ClientResponse::Error(m)) => {
                    unknown |= m.contains("may or may not");
                }
                other => panic!("insert {id} through node {via}: {other:?}"),
            }
            assert!(Instant::now() < deadline, "insert {id} never acknowledged");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The ids member `id` holds (its local state).
    async fn ids(&self, id: u64) -> BTreeSet<String> {
        let mut c = NodeClient::connect(&self.member(id).client, SECRET.as_bytes())
            .await
            .unwrap();
        ids_of(c.find("items", json!({}), false).await.unwrap())
    }
}

fn ids_of(docs: Vec<Value>) -> BTreeSet<String> {
    docs.iter()
        .map(|d| d["_id"].as_str().unwrap().to_owned())
        .collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn three_processes_survive_a_sigkilled_leader_and_refuse_strangers() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let mut cluster = Cluster::start(dir.path());
        let first = cluster.leader(None).await;
        let follower = (1..=3).find(|i| *i != first.id).unwrap();
        let mut acked = BTreeSet::new();

        // Writes through a follower (forwarded to the leader, one hop).
        for i in 0..30 {
            let id = format!("a{i:03}");
            cluster.insert(follower, &id).await;
            acked.insert(id);
        }
        let mut c = NodeClient::connect(&cluster.member(follower).client, SECRET.as_bytes())
            .await
            .unwrap();
        // A linearizable read through the follower sees every acknowledged write.
        assert_eq!(
            ids_of(c.find("items", json!({}), true).await.unwrap()),
            acked
        );

        // The leader SIGKILLed: a new one is elected, in a later term.
        cluster.kill(first.id);
        let second = cluster.leader(Some(first.id)).await;
        assert!(second.term > first.term, "{first:?} then {second:?}");
        let other = cluster
            .running()
            .into_iter()
            .find(|i| *i != second.id)
            .unwrap();
        for i in 30..60 {
            let id = format!("b{i:03}");
            cluster.insert(other, &id).await;
            acked.insert(id);
        }

        // The old leader restarts and catches up.
        cluster.restart(first.id);
        for i in 60..70 {
            let id = format!("c{i:03}");
            cluster.insert(first.id, &id).await;
            acked.insert(id);
        }
        let third = cluster.leader(None).await;
        let target = third.committed_index.unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            let all = cluster.statuses().await;
            let behind: Vec<_> = all
                .values()
                .filter(|s| s.as_ref().and_then(|s| s.applied_index) < Some(target))
                .collect();
            if behind.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not caught up to {target}: {all:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for id in 1..=3 {
            assert_eq!(cluster.ids(id).await, acked, "node {id}");
        }
        let restarted = cluster.status(first.id).await.unwrap();
        assert!(
            restarted.snapshots_installed >= 1,
            "the restarted member caught up without a snapshot: {restarted:?}"
        );

        // Strangers: a peer and a client with another secret, and a peer
        // that skips the handshake, get nothing done.
        let before = cluster.leader(None).await;
        let wrong = b"not-the-cluster-secret-000";
        let mut s = tokio::net::TcpStream::connect(&cluster.member(before.id).peer)
            .await
            .unwrap();
        let r = client_handshake_as(&mut s, wrong, &wire::PEER).await;
        assert!(matches!(r, Err(Error::Unauthorized(_))), "{r:?}");
        let r = NodeClient::connect(&cluster.member(before.id).client, wrong).await;
        assert!(matches!(r, Err(Error::Unauthorized(_))), "{:?}", r.err());
        // A vote request for a far later term, sent without a handshake:
        // the member closes the connection without answering.
        let mut s = tokio::net::TcpStream::connect(&cluster.member(before.id).peer)
            .await
            .unwrap();
        let vote = PeerRequest::Vote(VoteRequest::new(Vote::new(before.term + 100, 3), None));
        wire::write_frame(&mut s, &vote).await.unwrap();
        let _ = s.flush().await;
        let answer = wire::read_frame::<_, PeerResponse>(&mut s).await;
        assert!(
            !matches!(answer, Ok(Some(_))),
            "an unauthenticated vote was answered: {answer:?}"
        );
        let after = cluster.leader(None).await;
        assert_eq!((after.id, after.term), (before.id, before.term));
        assert!(after.auth_failures >= 2, "{after:?}");
        for id in 1..=3 {
            assert_eq!(
                cluster.ids(id).await,
                acked,
                "node {id} after the strangers"
            );
        }
    });
}
