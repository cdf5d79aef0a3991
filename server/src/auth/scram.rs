//! SCRAM-SHA-256, server side (RFC 5802, RFC 7677), as MongoDB runs it over
//! `saslStart` / `saslContinue`.
//!
//! ```text
//! client-first  n,,n=<user>,r=<client nonce>
//! server-first  r=<client nonce><server nonce>,s=<salt b64>,i=<iterations>
//! client-final  c=biws,r=<nonce>,p=<proof b64>
//! server-final  v=<server signature b64>
//! ```
//! Unknown users get a deterministic fake salt and fail at the proof, so the
//! reply does not reveal which user names exist.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// A user's decoded credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredential {
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// Salt bytes.
    pub salt: Vec<u8>,
    /// StoredKey.
    pub stored_key: [u8; 32],
    /// ServerKey.
    pub server_key: [u8; 32],
}

/// The keys derived from a salted password.
pub struct Keys {
    /// `H(ClientKey)`.
    pub stored_key: [u8; 32],
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: [u8; 32],
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// `Hi(password, salt, i)` = PBKDF2-HMAC-SHA-256.
pub fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
    out
}

impl Keys {
    /// Derives StoredKey and ServerKey.
    pub fn from_salted(salted: &[u8; 32]) -> Keys {
        let client_key = hmac(salted, b"Client Key");
        Keys {
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(salted, b"Server Key"),
        }
    }
}

/// Why a conversation failed. The client is only told "Authentication failed."
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// A message does not follow the grammar.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// Channel binding was requested (not supported).
    #[error("channel binding is not supported")]
    ChannelBinding,
    /// The nonce was changed.
    #[error("nonce mismatch")]
    Nonce,
    /// Wrong password or unknown user.
    #[error("invalid proof")]
    Proof,
}

/// A conversation after the server-first message.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// The (unescaped) user name.
    pub user: String,
    cred: Option<StoredCredential>,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    gs2_header: String,
}

/// Parses the client-first message and answers with the server-first message.
/// `server_nonce` must be fresh random printable characters (no comma).
pub fn start(
    client_first: &[u8],
    lookup: impl FnOnce(&str) -> Option<StoredCredential>,
    server_nonce: &str,
) -> Result<(Conversation, String), ScramError> {
    let msg = std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    let (gs2, bare) = split_gs2(msg)?;
    let mut user = None;
    let mut cnonce = None;
    for attr in bare.split(',') {
        if let Some(v) = attr.strip_prefix("n=") {
            user = Some(unescape(v)?);
        } else if let Some(v) = attr.strip_prefix("r=") {
            cnonce = Some(v);
        } else if attr.starts_with("m=") {
            return Err(ScramError::Malformed(
                "mandatory extensions are not supported",
            ));
        }
    }
    let user = user.ok_or(ScramError::Malformed("no user name"))?;
    let cnonce = cnonce
        .filter(|n| !n.is_empty())
        .ok_or(ScramError::Malformed("no client nonce"))?;
    let cred = lookup(&user);
    let (salt, iterations) = match &cred {
        Some(c) => (c.salt.clone(), c.iterations),
        None => (
            hmac(b"collection-store unknown user", user.as_bytes())[..28].to_vec(),
            super::DEFAULT_ITERATIONS,
        ),
    };
    let nonce = format!("{cnonce}{server_nonce}");
    let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(salt));
    Ok((
        Conversation {
            user,
            cred,
            client_first_bare: bare.to_owned(),
            server_first: server_first.clone(),
            nonce,
            gs2_header: gs2.to_owned(),
        },
        server_first,
    ))
}

fn split_gs2(msg: &str) -> Result<(&str, &str), ScramError> {
    let mut parts = msg.splitn(3, ',');
    let cb = parts.next().ok_or(ScramError::Malformed("no GS2 header"))?;
    let authzid = parts.next().ok_or(ScramError::Malformed("no GS2 header"))?;
    let bare = parts
        .next()
        .ok_or(ScramError::Malformed("no client-first-message-bare"))?;
    match cb {
        "n" | "y" => {}
        c if c.starts_with("p=") => return Err(ScramError::ChannelBinding),
        _ => return Err(ScramError::Malformed("bad GS2 channel-binding flag")),
    }
    if !(authzid.is_empty() || authzid.starts_with("a=")) {
        return Err(ScramError::Malformed("bad GS2 authzid"));
    }
    let header_len = cb.len() + authzid.len() + 2;
    Ok((&msg[..header_len], bare))
}

fn unescape(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in user name")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Conversation {
    /// Checks the client-final message; returns the server-final message.
    pub fn finish(&self, client_final: &[u8]) -> Result<String, ScramError> {
        let msg =
            std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = msg
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no proof"))?;
        let mut cb = None;
        let mut nonce = None;
        for attr in without_proof.split(',') {
            if let Some(v) = attr.strip_prefix("c=") {
                cb = Some(v);
            } else if let Some(v) = attr.strip_prefix("r=") {
                nonce = Some(v);
            }
        }
        if cb != Some(B64.encode(&self.gs2_header).as_str()) {
            return Err(ScramError::Malformed(
                "channel binding data differs from the GS2 header",
            ));
        }
        if nonce != Some(self.nonce.as_str()) {
            return Err(ScramError::Nonce);
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let Some(cred) = &self.cred else {
            return Err(ScramError::Proof);
        };
        if proof.len() != 32 {
            return Err(ScramError::Proof);
        }
        let signature = hmac(&cred.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(signature.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        let stored: [u8; 32] = Sha256::digest(&client_key).into();
        if !bool::from(stored.ct_eq(&cred.stored_key)) {
            return Err(ScramError::Proof);
        }
        let server_sig = hmac(&cred.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_sig)))
    }
}

/// A fresh server nonce: 24 random bytes, base64 (no commas).
pub fn new_nonce() -> String {
    let mut b = [0u8; 24];
    if getrandom::fill(&mut b).is_err() {
        // Never reached on supported platforms; a failed nonce must not be predictable,
        // so fall back to the clock mixed through SHA-256.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b.copy_from_slice(&Sha256::digest(t.to_le_bytes())[..24]);
    }
    B64.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: user "user", password "pencil".
    #[test]
    fn rfc7677_example() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = salted_password(b"pencil", &salt, 4096);
        let keys = Keys::from_salted(&salted);
        let cred = StoredCredential {
            iterations: 4096,
            salt,
            stored_key: keys.stored_key,
            server_key: keys.server_key,
        };
        let (conv, server_first) = start(
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            |u| (u == "user").then(|| cred.clone()),
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        )
        .unwrap();
        assert_eq!(
            server_first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let final_msg = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            conv.finish(final_msg.as_bytes()).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let wrong = final_msg.replace("p=dHzb", "p=dHzc");
        assert_eq!(conv.finish(wrong.as_bytes()), Err(ScramError::Proof));
        let other_nonce = final_msg.replace("k0,p=", "k1,p=");
        assert_eq!(conv.finish(other_nonce.as_bytes()), Err(ScramError::Nonce));
    }

    #[test]
    fn unknown_users_look_like_known_ones_until_the_proof() {
        let (conv, first) = start(b"n,,n=ghost,r=abc", |_| None, "xyz").unwrap();
        assert!(first.starts_with("r=abcxyz,s=") && first.ends_with(",i=15000"));
        let (_, again) = start(b"n,,n=ghost,r=abc", |_| None, "xyz").unwrap();
        assert_eq!(first, again, "the fake salt is stable per name");
        let p = B64.encode([0u8; 32]);
        assert_eq!(
            conv.finish(format!("c=biws,r=abcxyz,p={p}").as_bytes()),
            Err(ScramError::Proof)
        );
    }

    #[test]
    fn escaped_names_and_bad_messages() {
        let (conv, _) = start(b"n,,n=a=2Cb=3Dc,r=n1", |_| None, "s").unwrap();
        assert_eq!(conv.user, "a,b=c");
        assert!(start(b"n,,n=a=2Xb,r=n1", |_| None, "s").is_err());
        assert!(start(b"p=tls-unique,,n=a,r=n1", |_| None, "s").is_err());
        assert!(start(b"n,,r=n1", |_| None, "s").is_err());
        assert!(start(b"garbage", |_| None, "s").is_err());
        assert!(start(&[0xff, 0xfe], |_| None, "s").is_err());
    }
}
