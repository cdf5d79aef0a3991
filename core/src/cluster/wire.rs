//! The cluster's wire format: after the replication handshake (with the
//! cluster's own labels, so a proof made for replication or for the other
//! cluster port never authenticates here), every message is one frame
//! `u32 LE length | JSON body`, the length at most [`MAX_FRAME`].
//!
//! Two ports, two protocols: the peer port carries Raft's RPCs and writes
//! forwarded by a follower ([`PeerRequest`]/[`PeerResponse`]); the client
//! port carries the application's requests ([`ClientRequest`]/
//! [`ClientResponse`]). Both need the shared secret.

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::types::{NodeId, Request, Response, TypeConfig};
use crate::error::{Error, Result};
use crate::replication::auth::{client_handshake_as, Labels};

/// Largest frame body accepted: 64 MiB (snapshot chunks are sent at
/// [`super::node::SNAPSHOT_CHUNK`] bytes, which JSON at most quadruples).
pub const MAX_FRAME: usize = 64 << 20;

/// Handshake labels of the peer port (Raft RPCs between members).
pub const PEER: Labels = Labels {
    server: b"cs-raft/1 peer accepts",
    client: b"cs-raft/1 peer dials",
};

/// Handshake labels of the client port.
pub const CLIENT: Labels = Labels {
    server: b"cs-raft/1 node",
    client: b"cs-raft/1 client",
};

/// How long dialling a member and authenticating may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Dials a member at `addr` and authenticates with `secret` under `labels`
/// (both directions); one place for peers and clients.
pub(crate) async fn dial(
    addr: &str,
    secret: &[u8],
    labels: &Labels,
) -> Result<tokio::net::TcpStream> {
    let dial = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        client_handshake_as(&mut stream, secret, labels).await?;
        Ok::<_, Error>(stream)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, dial).await {
        Ok(r) => r,
        Err(_) => Err(Error::Replication(format!(
            "connecting to the member at {addr} took over {CONNECT_TIMEOUT:?}"
        ))),
    }
}

/// A request on the peer port.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum PeerRequest {
    /// Raft's append-entries (and heartbeat).
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Raft's request for a vote.
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A write a follower accepted (its ids and time already fixed), for
    /// the leader to propose. Never forwarded again.
    Forward(Request),
    /// A linearizable read a follower accepted, for the leader to serve.
    Find {
        /// The collection.
        collection: String,
        /// A MongoDB filter.
        filter: Value,
    },
}

/// The answer to a [`PeerRequest`], variant for variant.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum PeerResponse {
    /// Append-entries' answer.
    AppendEntries(std::result::Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// The vote's answer.
    Vote(std::result::Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// The snapshot chunk's answer.
    InstallSnapshot(
        std::result::Result<
            InstallSnapshotResponse<NodeId>,
            RaftError<NodeId, InstallSnapshotError>,
        >,
    ),
    /// The forwarded write's answer.
    Forward(std::result::Result<Written, WriteError>),
    /// The forwarded read's documents, or why it failed.
    Find(std::result::Result<Vec<Value>, String>),
}

/// A committed and applied write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// The Raft log index of its entry.
    pub index: u64,
    /// What the state machine answered.
    pub response: Response,
}

/// Why a write was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteError {
    /// The member is not the leader (a forwarded write reached a member
    /// that lost leadership); the leader it knows of, if any.
    NotLeader(Option<NodeId>),
    /// No leader is known (an election is under way); retry.
    NoLeader,
    /// Anything else (the leader unreachable, Raft stopped); the outcome
    /// is unknown: the write may or may not be committed.
    Failed(String),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::NotLeader(Some(l)) => write!(f, "not the leader (node {l} is)"),
            WriteError::NotLeader(None) | WriteError::NoLeader => f.write_str("no leader known"),
            WriteError::Failed(m) => f.write_str(m),
        }
    }
}

/// A request on the client port.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ClientRequest {
    /// Insert documents into a collection, all or none. The member that
    /// accepts it gives documents without a primary key a new one and fixes
    /// the commit time, then proposes it (through the leader).
    Insert {
        /// The collection (created when missing).
        collection: String,
        /// The documents (JSON objects).
        documents: Vec<Value>,
    },
    /// The documents matching `filter`, in primary-key order.
    Find {
        /// The collection.
        collection: String,
        /// A MongoDB filter.
        filter: Value,
        /// True: a linearizable read (served by the leader after it
        /// confirmed its leadership with a quorum; a follower forwards it
        /// one hop). False: this member's applied state as it is.
        linearizable: bool,
    },
    /// The member's Raft status.
    Status,
}

/// The answer to a [`ClientRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ClientResponse {
    /// The insert was committed and applied; the primary keys, in order.
    Inserted {
        /// The documents' primary keys.
        ids: Vec<Value>,
        /// The Raft log index of the write.
        index: u64,
    },
    /// A write committed but failed identically on every member (a
    /// duplicate key, for example); it changed nothing.
    Rejected(String),
    /// The documents found.
    Documents(Vec<Value>),
    /// The status.
    Status(Status),
    /// The request was not served: bad input, or a write whose outcome is
    /// unknown ([`WriteError`]).
    Error(String),
}

/// A member's Raft status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The member's id.
    pub id: NodeId,
    /// `Leader`, `Follower`, `Candidate` or `Learner`.
    pub role: String,
    /// The current term.
    pub term: u64,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Index of the last log entry it holds.
    pub last_log_index: Option<u64>,
    /// Index of the last entry it knows committed.
    pub committed_index: Option<u64>,
    /// Index of the last entry its state machine applied.
    pub applied_index: Option<u64>,
    /// The voters of its current membership.
    pub voters: Vec<NodeId>,
    /// Connections to its ports that failed the handshake since it started.
    pub auth_failures: u64,
    /// Index of the newest snapshot it holds.
    pub snapshot_index: Option<u64>,
    /// Snapshots received from the leader and installed since it started.
    pub snapshots_installed: u64,
}

/// Writes `msg` as one frame.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, msg: &T) -> Result<()> {
    let body = serde_json::to_vec(msg)
        .map_err(|e| Error::Protocol(format!("a cluster message did not encode: {e}")))?;
    if body.len() > MAX_FRAME {
        return Err(Error::Protocol(format!(
            "a cluster message of {} bytes exceeds the {MAX_FRAME}-byte frame limit",
            body.len()
        )));
    }
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame. `Ok(None)`: the peer closed the connection between
/// frames. An oversized or undecodable frame is [`Error::Protocol`].
pub async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(r: &mut R) -> Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(Error::Protocol(format!(
            "a cluster frame announces {len} bytes, over the {MAX_FRAME}-byte limit"
        )));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| Error::Protocol(format!("a cluster frame does not decode: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn frames_round_trip_and_limits_hold() {
        rt().block_on(async {
            let (mut a, mut b) = tokio::io::duplex(1 << 16);
            write_frame(&mut a, &ClientRequest::Status).await.unwrap();
            let got: Option<ClientRequest> = read_frame(&mut b).await.unwrap();
            assert!(matches!(got, Some(ClientRequest::Status)));
            // An announced length over the limit is refused before reading it.
            let (mut a, mut b) = tokio::io::duplex(1 << 16);
            a.write_all(&((MAX_FRAME as u32) + 1).to_le_bytes())
                .await
                .unwrap();
            let err = read_frame::<_, ClientRequest>(&mut b).await.unwrap_err();
            assert!(matches!(err, Error::Protocol(_)), "{err:?}");
            // Garbage is a typed error, a clean close is None.
            let (mut a, mut b) = tokio::io::duplex(1 << 16);
            a.write_all(&3u32.to_le_bytes()).await.unwrap();
            a.write_all(b"{x]").await.unwrap();
            drop(a);
            let err = read_frame::<_, ClientRequest>(&mut b).await.unwrap_err();
            assert!(matches!(err, Error::Protocol(_)), "{err:?}");
            assert!(read_frame::<_, ClientRequest>(&mut b)
                .await
                .unwrap()
                .is_none());
        });
    }
}
