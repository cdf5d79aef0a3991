//! A cluster member: its Raft instance over the [`LogStore`] and the
//! [`StateMachine`], the peer port (Raft's RPCs, forwarded writes and
//! reads) and the client port (the application's requests).
//!
//! A write accepted by any member is prepared there (primary keys given,
//! commit time fixed), then proposed: by the member itself when it leads,
//! otherwise forwarded to the leader, one hop. It is acknowledged only once
//! committed by a majority and applied by the leader.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, Config, Raft, ServerState, SnapshotPolicy};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::network::{self, Network, PeerConn};
use super::types::{NodeId, Request, Response, TypeConfig};
use super::wire::{
    self, ClientRequest, ClientResponse, PeerRequest, PeerResponse, Status, WriteError, Written,
};
use super::{LogStore, StateMachine};
use crate::catalog::CollectionOptions;
use crate::doc::json::{document_from_json, json_from_bson};
use crate::error::{Error, Result};
use crate::exec::docs::{new_id, place_id};
use crate::exec::statement::{Command, Statement};
use crate::replication::auth::{check_secret, server_handshake_as, Labels};

/// Bytes of snapshot data per install-snapshot RPC.
pub const SNAPSHOT_CHUNK: u64 = 1 << 20;

/// How long a write may wait to be committed and applied before its
/// outcome is reported unknown.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an unauthenticated connection may take to finish the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a member needs to run.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This member's id (a key of `peers`).
    pub id: NodeId,
    /// Every voter's id and peer-port address, this member's included. The
    /// member with the smallest id initializes a pristine cluster.
    pub peers: BTreeMap<NodeId, String>,
    /// Where the member keeps its log (`raft/`) and database (`sm/`).
    pub root: PathBuf,
    /// The cluster's shared secret (at least 16 bytes).
    pub secret: Vec<u8>,
    /// Address of the client port (port 0: any free port).
    pub client_addr: String,
    /// Build a snapshot after this many applied entries since the last.
    pub snapshot_logs: u64,
    /// Entries kept in the log below a snapshot for followers that lag.
    pub keep_logs: u64,
}

struct Inner {
    id: NodeId,
    raft: Raft<TypeConfig>,
    sm: StateMachine,
    secret: Arc<Vec<u8>>,
    auth_failures: AtomicU64,
}

/// A running member. Dropping it stops its ports; [`RunningNode::shutdown`]
/// also stops Raft.
pub struct RunningNode {
    inner: Arc<Inner>,
    peer_addr: SocketAddr,
    client_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

fn raft_config(cfg: &NodeConfig) -> Result<Config> {
    let config = Config {
        cluster_name: "collection-store".into(),
        heartbeat_interval: 100,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        install_snapshot_timeout: 2000,
        snapshot_max_chunk_size: SNAPSHOT_CHUNK,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_logs.max(1)),
        max_in_snapshot_log_to_keep: cfg.keep_logs,
        ..Default::default()
    };
    config
        .validate()
        .map_err(|e| Error::Replication(format!("the Raft configuration is invalid: {e}")))
}

fn fatal<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> Error + '_ {
    move |e| Error::Replication(format!("{what}: {e}"))
}

impl RunningNode {
    /// Opens the member's storage, binds its two ports, starts Raft and,
    /// on the member with the smallest id of a pristine cluster,
    /// initializes the membership.
    pub async fn start(cfg: NodeConfig) -> Result<RunningNode> {
        check_secret(&cfg.secret)?;
        let own = cfg.peers.get(&cfg.id).cloned().ok_or_else(|| {
            Error::Replication(format!("node {} is not one of the peers", cfg.id))
        })?;
        let log = LogStore::open(&cfg.root.join("raft"))?;
        let sm = StateMachine::open(&cfg.root.join("sm"))?;
        let peer_listener = TcpListener::bind(&own).await?;
        let client_listener = TcpListener::bind(&cfg.client_addr).await?;
        let secret = Arc::new(cfg.secret.clone());
        let raft = Raft::new(
            cfg.id,
            Arc::new(raft_config(&cfg)?),
            Network::new(secret.clone()),
            log,
            sm.clone(),
        )
        .await
        .map_err(fatal("Raft did not start"))?;
        let inner = Arc::new(Inner {
            id: cfg.id,
            raft,
            sm,
            secret,
            auth_failures: AtomicU64::new(0),
        });
        let node = RunningNode {
            peer_addr: peer_listener.local_addr()?,
            client_addr: client_listener.local_addr()?,
            tasks: vec![
                tokio::spawn(accept(peer_listener, inner.clone(), Port::Peer)),
                tokio::spawn(accept(client_listener, inner.clone(), Port::Client)),
            ],
            inner,
        };
        let first = cfg.peers.keys().next().copied();
        if first == Some(cfg.id)
            && !node
                .inner
                .raft
                .is_initialized()
                .await
                .map_err(fatal("Raft stopped"))?
        {
            let members: BTreeMap<NodeId, BasicNode> = cfg
                .peers
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr)))
                .collect();
            if let Err(e) = node.inner.raft.initialize(members).await {
                tracing::warn!("initializing the cluster: {e}");
            }
        }
        Ok(node)
    }

    /// The bound peer-port address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// The bound client-port address.
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The member's status.
    pub async fn status(&self) -> Status {
        self.inner.status().await
    }

    /// The member's state machine (its database, read-only).
    pub fn state_machine(&self) -> &StateMachine {
        &self.inner.sm
    }

    /// Stops the ports and Raft.
    pub async fn shutdown(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let _ = self.inner.raft.shutdown().await;
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[derive(Clone, Copy)]
enum Port {
    Peer,
    Client,
}

impl Port {
    fn labels(self) -> &'static Labels {
        match self {
            Port::Peer => &wire::PEER,
            Port::Client => &wire::CLIENT,
        }
    }
}

async fn accept(listener: TcpListener, inner: Arc<Inner>, port: Port) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let inner = inner.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(stream, &inner, port).await {
                tracing::debug!("a cluster connection ended: {e}");
            }
        });
    }
}

async fn serve(mut s: TcpStream, inner: &Arc<Inner>, port: Port) -> Result<()> {
    s.set_nodelay(true)?;
    let hs = server_handshake_as(&mut s, &inner.secret, 0, port.labels());
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, hs).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            inner.auth_failures.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        Err(_) => {
            inner.auth_failures.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Unauthorized(
                "the peer did not finish the handshake in time".into(),
            ));
        }
    }
    match port {
        Port::Peer => {
            while let Some(req) = wire::read_frame::<_, PeerRequest>(&mut s).await? {
                let resp = inner.peer(req).await;
                wire::write_frame(&mut s, &resp).await?;
            }
        }
        Port::Client => {
            while let Some(req) = wire::read_frame::<_, ClientRequest>(&mut s).await? {
                let resp = inner.client(req).await;
                wire::write_frame(&mut s, &resp).await?;
            }
        }
    }
    Ok(())
}

/// Prepares an insert: primary keys given where missing, the time fixed.
fn prepare_insert(collection: String, documents: &[Value]) -> Result<(Vec<Value>, Request)> {
    let options = CollectionOptions::default();
    let mut ids = Vec::with_capacity(documents.len());
    let mut docs = Vec::with_capacity(documents.len());
    for d in documents {
        let (id, doc) = place_id(&options.id_field, document_from_json(d)?, new_id)?;
        ids.push(json_from_bson(&id));
        docs.push(doc);
    }
    let statement = Statement::Insert {
        collection,
        options,
        documents: docs,
    };
    let command = Command::single(statement, crate::log::state::now_ms());
    Ok((ids, Request { command }))
}

impl Inner {
    async fn peer(&self, req: PeerRequest) -> PeerResponse {
        match req {
            PeerRequest::AppendEntries(r) => {
                PeerResponse::AppendEntries(self.raft.append_entries(r).await)
            }
            PeerRequest::Vote(r) => PeerResponse::Vote(self.raft.vote(r).await),
            PeerRequest::InstallSnapshot(r) => {
                PeerResponse::InstallSnapshot(self.raft.install_snapshot(r).await)
            }
            PeerRequest::Forward(r) => PeerResponse::Forward(self.write(r, false).await),
            PeerRequest::Find { collection, filter } => PeerResponse::Find(
                self.find(collection, filter, true, false)
                    .await
                    .map_err(|e| e.to_string()),
            ),
        }
    }

    async fn client(&self, req: ClientRequest) -> ClientResponse {
        match req {
            ClientRequest::Insert {
                collection,
                documents,
            } => {
                let (ids, request) = match prepare_insert(collection, &documents) {
                    Ok(p) => p,
                    Err(e) => return ClientResponse::Error(e.to_string()),
                };
                match self.write(request, true).await {
                    Ok(Written {
                        index,
                        response: Response::Applied(_),
                    }) => ClientResponse::Inserted { ids, index },
                    Ok(Written {
                        response: Response::Failed(m),
                        ..
                    }) => ClientResponse::Rejected(m),
                    Err(e) => ClientResponse::Error(e.to_string()),
                }
            }
            ClientRequest::Find {
                collection,
                filter,
                linearizable,
            } => match self.find(collection, filter, linearizable, true).await {
                Ok(docs) => ClientResponse::Documents(docs),
                Err(e) => ClientResponse::Error(e.to_string()),
            },
            ClientRequest::Status => ClientResponse::Status(self.status().await),
        }
    }

    /// Proposes `req`; a follower forwards it to the leader when `may_forward`.
    async fn write(
        &self,
        req: Request,
        may_forward: bool,
    ) -> std::result::Result<Written, WriteError> {
        let proposed =
            tokio::time::timeout(WRITE_TIMEOUT, self.raft.client_write(req.clone())).await;
        let err = match proposed {
            Err(_) => {
                return Err(WriteError::Failed(format!(
                    "not committed within {WRITE_TIMEOUT:?}; the write may or may not be committed"
                )))
            }
            Ok(Ok(resp)) => {
                return Ok(Written {
                    index: resp.log_id.index,
                    response: resp.data,
                })
            }
            Ok(Err(e)) => e,
        };
        let Some(f) = err.forward_to_leader::<BasicNode>() else {
            return Err(WriteError::Failed(err.to_string()));
        };
        match (&f.leader_id, &f.leader_node) {
            (Some(id), Some(node)) if may_forward && *id != self.id => {
                network::forward(&node.addr, &self.secret, req, WRITE_TIMEOUT).await
            }
            (Some(id), _) => Err(WriteError::NotLeader(Some(*id))),
            (None, _) => Err(WriteError::NoLeader),
        }
    }

    /// Reads `collection`: linearizable (the leader confirms its leadership
    /// first; a follower asks the leader when `may_forward`) or local.
    async fn find(
        &self,
        collection: String,
        filter: Value,
        linearizable: bool,
        may_forward: bool,
    ) -> Result<Vec<Value>> {
        if linearizable {
            if let Err(e) = self.raft.ensure_linearizable().await {
                let leader = e
                    .forward_to_leader::<BasicNode>()
                    .and_then(|f| f.leader_node.clone());
                return match leader {
                    Some(node) if may_forward => {
                        self.forward_find(&node.addr, collection, filter).await
                    }
                    _ => Err(Error::Replication(format!(
                        "a linearizable read needs the leader: {e}"
                    ))),
                };
            }
        }
        let db = self.sm.database();
        tokio::task::spawn_blocking(move || db.collection(&collection)?.find(filter).to_vec())
            .await
            .map_err(|e| Error::Replication(format!("the read task failed: {e}")))?
    }

    async fn forward_find(
        &self,
        addr: &str,
        collection: String,
        filter: Value,
    ) -> Result<Vec<Value>> {
        let mut conn = PeerConn::connect(addr, &self.secret).await?;
        match conn.call(&PeerRequest::Find { collection, filter }).await? {
            PeerResponse::Find(r) => r.map_err(Error::Replication),
            other => Err(Error::Protocol(format!(
                "the leader answered a read with {other:?}"
            ))),
        }
    }

    async fn status(&self) -> Status {
        let m = self.raft.metrics().borrow().clone();
        let committed = self
            .raft
            .with_raft_state(|st| st.committed.map(|l| l.index))
            .await
            .ok()
            .flatten();
        let role = match m.state {
            ServerState::Leader => "Leader",
            ServerState::Follower => "Follower",
            ServerState::Candidate => "Candidate",
            ServerState::Learner => "Learner",
            ServerState::Shutdown => "Shutdown",
        };
        Status {
            id: self.id,
            role: role.into(),
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            committed_index: committed,
            applied_index: m.last_applied.map(|l| l.index),
            voters: m.membership_config.membership().voter_ids().collect(),
            auth_failures: self.auth_failures.load(Ordering::Relaxed),
            snapshot_index: m.snapshot.map(|l| l.index),
            snapshots_installed: self.sm.snapshots_installed(),
        }
    }
}
