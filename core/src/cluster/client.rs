//! A connection to one member's client port (authenticated with the
//! cluster's secret). It talks to that member only: a write sent to a
//! follower is forwarded to the leader by the follower itself. Discovering
//! the leader and failing over across members is the caller's job (a full
//! `Cluster` handle is not built yet).

use serde_json::Value;
use tokio::net::TcpStream;

use super::wire::{self, ClientRequest, ClientResponse, Status};
use crate::error::{Error, Result};

/// One authenticated connection to a member's client port.
pub struct NodeClient {
    stream: TcpStream,
}

impl NodeClient {
    /// Dials the client port at `addr` and authenticates with `secret`.
    pub async fn connect(addr: &str, secret: &[u8]) -> Result<NodeClient> {
        Ok(NodeClient {
            stream: wire::dial(addr, secret, &wire::CLIENT).await?,
        })
    }

    /// Sends one request and reads its answer.
    pub async fn request(&mut self, req: &ClientRequest) -> Result<ClientResponse> {
        wire::write_frame(&mut self.stream, req).await?;
        wire::read_frame(&mut self.stream)
            .await?
            .ok_or_else(|| Error::Protocol("the member closed the connection".into()))
    }

    /// Inserts `documents` into `collection`.
    pub async fn insert(
        &mut self,
        collection: &str,
        documents: Vec<Value>,
    ) -> Result<ClientResponse> {
        self.request(&ClientRequest::Insert {
            collection: collection.into(),
            documents,
        })
        .await
    }

    /// The documents of `collection` matching `filter`.
    pub async fn find(
        &mut self,
        collection: &str,
        filter: Value,
        linearizable: bool,
    ) -> Result<Vec<Value>> {
        match self
            .request(&ClientRequest::Find {
                collection: collection.into(),
                filter,
                linearizable,
            })
            .await?
        {
            ClientResponse::Documents(d) => Ok(d),
            ClientResponse::Error(m) => Err(Error::Replication(m)),
            other => Err(Error::Protocol(format!(
                "a read was answered with {other:?}"
            ))),
        }
    }

    /// The member's status.
    pub async fn status(&mut self) -> Result<Status> {
        match self.request(&ClientRequest::Status).await? {
            ClientResponse::Status(s) => Ok(s),
            other => Err(Error::Protocol(format!(
                "a status request was answered with {other:?}"
            ))),
        }
    }
}
