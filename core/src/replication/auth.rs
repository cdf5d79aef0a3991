//! Mutual challenge–response authentication with a shared secret.
//!
//! ```text
//! replica → primary  Hello     { version, nonce_r }
//! primary → replica  Challenge { version, nonce_p, proof_p = HMAC(secret, "cs-repl/1 primary" | nonce_r | nonce_p) }
//! replica → primary  Proof     { proof_r = HMAC(secret, "cs-repl/1 replica" | nonce_r | nonce_p) }
//! primary → replica  AuthOk    { last_lsn }            (or Error { UNAUTHORIZED } and close)
//! ```
//! Both nonces are 32 random bytes from the operating system; tags are compared
//! in constant time. The replica checks the primary's proof before answering, so
//! neither side talks to a peer that does not hold the secret. The traffic that
//! follows is authenticated at connection time only and is **not encrypted**: run
//! it on a trusted network or inside a tunnel (WireGuard, SSH, TLS proxy).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite};

use super::protocol::{
    code, read_message_max, write_message, Message, MAC_LEN, MAX_SMALL_FRAME, NONCE_LEN,
    PROTOCOL_VERSION,
};
use super::Lsn;
use crate::error::{Error, Result};

/// Smallest accepted shared secret.
pub const MIN_SECRET_LEN: usize = 16;

const PRIMARY_LABEL: &[u8] = b"cs-repl/1 primary";
const REPLICA_LABEL: &[u8] = b"cs-repl/1 replica";

/// The labels mixed into the two proofs of a handshake. Each protocol that
/// reuses the handshake has its own pair, so a proof made for one protocol
/// never authenticates a connection of another (domain separation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Labels {
    /// Mixed into the proof of the side that accepts the connection.
    pub server: &'static [u8],
    /// Mixed into the proof of the side that opens it.
    pub client: &'static [u8],
}

/// The labels of replication connections (primary accepts, replica dials).
pub const REPLICATION: Labels = Labels {
    server: PRIMARY_LABEL,
    client: REPLICA_LABEL,
};

/// Checks that a configured secret is usable.
pub fn check_secret(secret: &[u8]) -> Result<()> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(Error::Replication(format!(
            "the shared secret is {} bytes; use at least {MIN_SECRET_LEN} (32 random bytes recommended)",
            secret.len()
        )));
    }
    Ok(())
}

/// A fresh random nonce.
pub fn nonce() -> Result<[u8; NONCE_LEN]> {
    let mut n = [0u8; NONCE_LEN];
    getrandom::fill(&mut n)
        .map_err(|e| Error::Io(std::io::Error::other(format!("no random bytes: {e}"))))?;
    Ok(n)
}

fn tag(secret: &[u8], label: &[u8], nonce_r: &[u8], nonce_p: &[u8]) -> Result<[u8; MAC_LEN]> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .map_err(|e| Error::Replication(format!("unusable secret: {e}")))?;
    mac.update(label);
    mac.update(nonce_r);
    mac.update(nonce_p);
    Ok(mac.finalize().into_bytes().into())
}

fn verify(
    secret: &[u8],
    label: &[u8],
    nonce_r: &[u8],
    nonce_p: &[u8],
    proof: &[u8],
) -> Result<bool> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .map_err(|e| Error::Replication(format!("unusable secret: {e}")))?;
    mac.update(label);
    mac.update(nonce_r);
    mac.update(nonce_p);
    // `verify_slice` compares in constant time.
    Ok(mac.verify_slice(proof).is_ok())
}

fn unexpected(m: &Message, expected: &str, peer: &str) -> Error {
    match m {
        Message::Error { code, message } if *code == code::UNAUTHORIZED => {
            Error::Unauthorized(format!("the {peer} refused the connection: {message}"))
        }
        Message::Error { message, .. } => {
            Error::Protocol(format!("the peer reported an error: {message}"))
        }
        other => Error::Protocol(format!("expected {expected}, received {}", other.name())),
    }
}

/// Replica side of the handshake. Returns the primary's last LSN.
pub async fn client_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    secret: &[u8],
) -> Result<Lsn> {
    client_handshake_as(s, secret, &REPLICATION).await
}

/// The dialing side of the handshake with another protocol's `labels`.
/// Returns the number the accepting side sent in `AuthOk`.
pub async fn client_handshake_as<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    secret: &[u8],
    labels: &Labels,
) -> Result<Lsn> {
    let nonce_r = nonce()?;
    write_message(
        s,
        &Message::Hello {
            version: PROTOCOL_VERSION,
            nonce: nonce_r,
        },
    )
    .await?;
    let (version, nonce_p, proof) = match read_message_max(s, MAX_SMALL_FRAME).await? {
        Message::Challenge {
            version,
            nonce,
            proof,
        } => (version, nonce, proof),
        other => return Err(unexpected(&other, "Challenge", "primary")),
    };
    if version != PROTOCOL_VERSION {
        return Err(Error::Protocol(format!(
            "the primary speaks replication protocol version {version}, this replica speaks {PROTOCOL_VERSION}"
        )));
    }
    if !verify(secret, labels.server, &nonce_r, &nonce_p, &proof)? {
        let _ = write_message(
            s,
            &Message::Error {
                code: code::UNAUTHORIZED,
                message: "the primary's proof does not match this replica's shared secret".into(),
            },
        )
        .await;
        return Err(Error::Unauthorized(
            "the primary did not prove knowledge of the shared secret (secrets differ?); connection closed".into(),
        ));
    }
    let proof = tag(secret, labels.client, &nonce_r, &nonce_p)?;
    write_message(s, &Message::Proof { proof }).await?;
    match read_message_max(s, MAX_SMALL_FRAME).await? {
        Message::AuthOk { last_lsn } => Ok(last_lsn),
        other => Err(unexpected(&other, "AuthOk", "primary")),
    }
}

/// Primary side of the handshake. On failure the peer has been told why (when
/// the connection still works) and the caller closes the connection.
pub async fn server_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    secret: &[u8],
    last_lsn: Lsn,
) -> Result<()> {
    server_handshake_as(s, secret, last_lsn, &REPLICATION).await
}

/// The accepting side of the handshake with another protocol's `labels`;
/// `last_lsn` is sent in `AuthOk`.
pub async fn server_handshake_as<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    secret: &[u8],
    last_lsn: Lsn,
    labels: &Labels,
) -> Result<()> {
    let (version, nonce_r) = match read_message_max(s, MAX_SMALL_FRAME).await? {
        Message::Hello { version, nonce } => (version, nonce),
        other => {
            let e = unexpected(&other, "Hello", "replica");
            let _ = write_message(
                s,
                &Message::Error {
                    code: code::PROTOCOL,
                    message: e.to_string(),
                },
            )
            .await;
            return Err(e);
        }
    };
    if version != PROTOCOL_VERSION {
        let msg = format!(
            "this primary speaks replication protocol version {PROTOCOL_VERSION}, the replica {version}"
        );
        let _ = write_message(
            s,
            &Message::Error {
                code: code::VERSION,
                message: msg.clone(),
            },
        )
        .await;
        return Err(Error::Protocol(msg));
    }
    let nonce_p = nonce()?;
    let proof = tag(secret, labels.server, &nonce_r, &nonce_p)?;
    write_message(
        s,
        &Message::Challenge {
            version: PROTOCOL_VERSION,
            nonce: nonce_p,
            proof,
        },
    )
    .await?;
    let proof = match read_message_max(s, MAX_SMALL_FRAME).await? {
        Message::Proof { proof } => proof,
        other => return Err(unexpected(&other, "Proof", "replica")),
    };
    if !verify(secret, labels.client, &nonce_r, &nonce_p, &proof)? {
        let _ = write_message(
            s,
            &Message::Error {
                code: code::UNAUTHORIZED,
                message: "wrong shared secret".into(),
            },
        )
        .await;
        return Err(Error::Unauthorized(
            "a replica failed the shared-secret challenge; connection refused".into(),
        ));
    }
    write_message(s, &Message::AuthOk { last_lsn }).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        client_secret: &'static [u8],
        server_secret: &'static [u8],
    ) -> (Result<Lsn>, Result<()>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (mut a, mut b) = tokio::io::duplex(1 << 16);
            let server = async move { server_handshake(&mut b, server_secret, 17).await };
            let client = async move { client_handshake(&mut a, client_secret).await };
            tokio::join!(client, server)
        })
    }

    #[test]
    fn same_secret_authenticates() {
        let (c, s) = run(b"0123456789abcdef-secret", b"0123456789abcdef-secret");
        assert_eq!(c.unwrap(), 17);
        s.unwrap();
    }

    #[test]
    fn wrong_secret_refused_on_both_sides() {
        let (c, s) = run(b"0123456789abcdef-secret", b"0123456789abcdef-other!");
        assert!(matches!(c, Err(Error::Unauthorized(_))), "{c:?}");
        // The replica rejects the primary's proof first, so the primary sees the
        // replica's refusal instead of a proof.
        assert!(matches!(s, Err(Error::Unauthorized(_))), "{s:?}");
    }

    #[test]
    fn labels_separate_protocols() {
        const OTHER: Labels = Labels {
            server: b"cs-test/1 server",
            client: b"cs-test/1 client",
        };
        let secret: &'static [u8] = b"0123456789abcdef-secret";
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (same, crossed) = rt.block_on(async move {
            let (mut a, mut b) = tokio::io::duplex(1 << 16);
            let same = tokio::join!(
                client_handshake_as(&mut a, secret, &OTHER),
                server_handshake_as(&mut b, secret, 5, &OTHER)
            );
            let (mut a, mut b) = tokio::io::duplex(1 << 16);
            let crossed = tokio::join!(
                client_handshake_as(&mut a, secret, &OTHER),
                server_handshake(&mut b, secret, 5)
            );
            (same, crossed)
        });
        assert_eq!(same.0.unwrap(), 5);
        same.1.unwrap();
        // Same secret, another protocol's labels: refused on both sides.
        assert!(
            matches!(crossed.0, Err(Error::Unauthorized(_))),
            "{:?}",
            crossed.0
        );
        assert!(
            matches!(crossed.1, Err(Error::Unauthorized(_))),
            "{:?}",
            crossed.1
        );
    }

    #[test]
    fn short_secret_rejected() {
        assert!(matches!(check_secret(b"short"), Err(Error::Replication(_))));
        check_secret(&[0u8; 16]).unwrap();
    }

    #[test]
    fn tags_depend_on_label_and_nonces() {
        let k = b"0123456789abcdef";
        let a = tag(k, PRIMARY_LABEL, &[1; 32], &[2; 32]).unwrap();
        assert_ne!(a, tag(k, REPLICA_LABEL, &[1; 32], &[2; 32]).unwrap());
        assert_ne!(a, tag(k, PRIMARY_LABEL, &[2; 32], &[1; 32]).unwrap());
        assert!(verify(k, PRIMARY_LABEL, &[1; 32], &[2; 32], &a).unwrap());
        assert!(!verify(k, PRIMARY_LABEL, &[1; 32], &[2; 32], &[0; 32]).unwrap());
    }
}
