//! The dialing side of the peer port: openraft's network (one client per
//! target member), and the one-hop forwarding of writes to the leader.
//!
//! A client keeps one authenticated TCP connection to its target and sends
//! one request at a time on it. Any failure (refused, the handshake or a
//! frame failing, no answer within the RPC's time limit) drops the
//! connection and reports the target `Unreachable`, so openraft backs off
//! and the next call dials again.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use tokio::net::TcpStream;

use super::types::{NodeId, Request, TypeConfig};
use super::wire::{self, PeerRequest, PeerResponse, WriteError, Written};
use crate::error::{Error, Result};

/// Pause between calls to an unreachable member.
const BACKOFF: Duration = Duration::from_millis(200);

/// One authenticated connection to a member's peer port.
pub(crate) struct PeerConn {
    stream: TcpStream,
}

impl PeerConn {
    /// Dials `addr` and authenticates with `secret` (both directions).
    pub(crate) async fn connect(addr: &str, secret: &[u8]) -> Result<PeerConn> {
        Ok(PeerConn {
            stream: wire::dial(addr, secret, &wire::PEER).await?,
        })
    }

    /// Sends `req` and reads its answer.
    pub(crate) async fn call(&mut self, req: &PeerRequest) -> Result<PeerResponse> {
        wire::write_frame(&mut self.stream, req).await?;
        wire::read_frame(&mut self.stream)
            .await?
            .ok_or_else(|| Error::Protocol("the member closed the connection".into()))
    }
}

/// Forwards a write to the leader at `addr` (one hop: the leader proposes
/// it and never forwards it again).
pub(crate) async fn forward(
    addr: &str,
    secret: &[u8],
    request: Request,
    limit: Duration,
) -> std::result::Result<Written, WriteError> {
    let go = async {
        let mut conn = PeerConn::connect(addr, secret).await?;
        conn.call(&PeerRequest::Forward(request)).await
    };
    match tokio::time::timeout(limit, go).await {
        Err(_) => Err(WriteError::Failed(format!(
            "the leader at {addr} did not answer within {limit:?}; the write may or may not be committed"
        ))),
        Ok(Err(e)) => Err(WriteError::Failed(format!(
            "forwarding to the leader at {addr} failed: {e}; the write may or may not be committed"
        ))),
        Ok(Ok(PeerResponse::Forward(r))) => r,
        Ok(Ok(other)) => Err(WriteError::Failed(format!(
            "the leader answered a forwarded write with {other:?}"
        ))),
    }
}

/// openraft's network: makes a [`PeerClient`] per target.
#[derive(Clone)]
pub struct Network {
    secret: Arc<Vec<u8>>,
}

impl Network {
    /// A network whose connections authenticate with `secret`.
    pub fn new(secret: Arc<Vec<u8>>) -> Network {
        Network { secret }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            secret: self.secret.clone(),
            conn: None,
        }
    }
}

/// Sends Raft's RPCs to one member.
pub struct PeerClient {
    target: NodeId,
    addr: String,
    secret: Arc<Vec<u8>>,
    conn: Option<PeerConn>,
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl PeerClient {
    async fn send(&mut self, req: PeerRequest, ttl: Duration) -> Result<PeerResponse> {
        let go = async {
            if self.conn.is_none() {
                self.conn = Some(PeerConn::connect(&self.addr, &self.secret).await?);
            }
            match self.conn.as_mut() {
                Some(c) => c.call(&req).await,
                None => Err(Error::Protocol("no connection".into())),
            }
        };
        let out = match tokio::time::timeout(ttl, go).await {
            Ok(r) => r,
            Err(_) => Err(Error::Replication(format!(
                "member {} at {} did not answer within {ttl:?}",
                self.target, self.addr
            ))),
        };
        if out.is_err() {
            self.conn = None;
        }
        out
    }

    fn unreachable<E: std::error::Error>(&self, e: &Error) -> RpcErr<E> {
        RPCError::Unreachable(Unreachable::new(e))
    }

    fn mismatch<E: std::error::Error>(&mut self, got: &PeerResponse) -> RpcErr<E> {
        self.conn = None;
        RPCError::Network(NetworkError::new(&Error::Protocol(format!(
            "member {} answered with {got:?}",
            self.target
        ))))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> std::result::Result<AppendEntriesResponse<NodeId>, RpcErr> {
        match self
            .send(PeerRequest::AppendEntries(rpc), option.hard_ttl())
            .await
        {
            Err(e) => Err(self.unreachable(&e)),
            Ok(PeerResponse::AppendEntries(r)) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(other) => Err(self.mismatch(&other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> std::result::Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        match self
            .send(PeerRequest::InstallSnapshot(rpc), option.hard_ttl())
            .await
        {
            Err(e) => Err(self.unreachable(&e)),
            Ok(PeerResponse::InstallSnapshot(r)) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(other) => Err(self.mismatch(&other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> std::result::Result<VoteResponse<NodeId>, RpcErr> {
        match self.send(PeerRequest::Vote(rpc), option.hard_ttl()).await {
            Err(e) => Err(self.unreachable(&e)),
            Ok(PeerResponse::Vote(r)) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(other) => Err(self.mismatch(&other)),
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(BACKOFF))
    }
}
