//! Users and their SCRAM-SHA-256 credentials.
//!
//! Passwords are never stored: a user is `{name, iterations, salt, storedKey,
//! serverKey}` (MongoDB's `SCRAM-SHA-256` credential document), derived with
//! PBKDF2-HMAC-SHA-256 over the SASLprep'd password and a random 28-byte salt.
//! Users come from `--user NAME:PASSWORD` (derived at start-up) or from a
//! users file of such entries (`collection-store-server hash-user` prints one).

pub mod scram;

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Iterations used when deriving credentials (mongod's default).
pub const DEFAULT_ITERATIONS: u32 = 15_000;
/// The least iteration count drivers accept.
pub const MIN_ITERATIONS: u32 = 4_096;

/// A stored SCRAM-SHA-256 credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// The user name.
    pub name: String,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// The salt, base64.
    pub salt: String,
    /// `H(HMAC(SaltedPassword, "Client Key"))`, base64.
    pub stored_key: String,
    /// `HMAC(SaltedPassword, "Server Key")`, base64.
    pub server_key: String,
}

/// Why a credential could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// The password is not acceptable under SASLprep (RFC 4013).
    #[error("the password of user '{0}' contains characters SASLprep prohibits")]
    Prep(String),
    /// `--user` without `NAME:PASSWORD`.
    #[error("--user expects NAME:PASSWORD, got '{0}'")]
    Format(String),
    /// A users file entry is malformed.
    #[error("users file: {0}")]
    File(String),
}

impl Credential {
    /// Derives a credential with a random salt.
    pub fn derive(
        name: &str,
        password: &str,
        iterations: u32,
    ) -> Result<Credential, AuthConfigError> {
        let mut salt = [0u8; 28];
        getrandom::fill(&mut salt)
            .map_err(|e| AuthConfigError::File(format!("no randomness: {e}")))?;
        Credential::derive_with_salt(name, password, &salt, iterations)
    }

    /// Derives a credential with the given salt.
    pub fn derive_with_salt(
        name: &str,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Credential, AuthConfigError> {
        let prepped =
            stringprep::saslprep(password).map_err(|_| AuthConfigError::Prep(name.to_owned()))?;
        let salted = scram::salted_password(prepped.as_bytes(), salt, iterations);
        let keys = scram::Keys::from_salted(&salted);
        Ok(Credential {
            name: name.to_owned(),
            iterations,
            salt: B64.encode(salt),
            stored_key: B64.encode(keys.stored_key),
            server_key: B64.encode(keys.server_key),
        })
    }

    /// Parses `NAME:PASSWORD` and derives a credential.
    pub fn from_flag(flag: &str) -> Result<Credential, AuthConfigError> {
        let (name, password) = flag
            .split_once(':')
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| {
                AuthConfigError::Format(flag.chars().take_while(|c| *c != ':').collect())
            })?;
        Credential::derive(name, password, DEFAULT_ITERATIONS)
    }

    fn decoded(&self) -> Result<scram::StoredCredential, AuthConfigError> {
        let bad = |what: &str| {
            AuthConfigError::File(format!(
                "user '{}': {what} is not valid base64 of the right length",
                self.name
            ))
        };
        let salt = B64.decode(&self.salt).map_err(|_| bad("salt"))?;
        let stored: [u8; 32] = B64
            .decode(&self.stored_key)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad("stored_key"))?;
        let server: [u8; 32] = B64
            .decode(&self.server_key)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad("server_key"))?;
        if self.iterations < MIN_ITERATIONS {
            return Err(AuthConfigError::File(format!(
                "user '{}': iterations must be at least {MIN_ITERATIONS} (drivers refuse fewer)",
                self.name
            )));
        }
        Ok(scram::StoredCredential {
            iterations: self.iterations,
            salt,
            stored_key: stored,
            server_key: server,
        })
    }
}

/// The users file: `[[user]]` tables holding [`Credential`]s (TOML).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct UsersFile {
    /// The users.
    #[serde(default)]
    pub user: Vec<Credential>,
}

/// The configured users.
#[derive(Debug, Default, Clone)]
pub struct Users {
    by_name: HashMap<String, scram::StoredCredential>,
}

impl Users {
    /// Users from credentials; a later entry for the same name replaces an earlier one.
    pub fn new(creds: Vec<Credential>) -> Result<Users, AuthConfigError> {
        let mut by_name = HashMap::new();
        for c in creds {
            by_name.insert(c.name.clone(), c.decoded()?);
        }
        Ok(Users { by_name })
    }

    /// Parses a users file.
    pub fn parse_file(text: &str) -> Result<Vec<Credential>, AuthConfigError> {
        toml::from_str::<UsersFile>(text)
            .map(|f| f.user)
            .map_err(|e| AuthConfigError::File(e.to_string()))
    }

    /// True when at least one user exists (then every data command needs authentication).
    pub fn required(&self) -> bool {
        !self.by_name.is_empty()
    }

    /// The credential of `name`.
    pub fn get(&self, name: &str) -> Option<&scram::StoredCredential> {
        self.by_name.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_and_file_round_trip() {
        let c = Credential::from_flag("ann:s3cret:with:colons").unwrap();
        assert_eq!(c.name, "ann");
        assert!(Credential::from_flag("nopassword").is_err());
        assert!(Credential::from_flag(":x").is_err());
        let text = toml::to_string(&UsersFile {
            user: vec![c.clone()],
        })
        .unwrap();
        assert!(!text.contains("s3cret"));
        let parsed = Users::parse_file(&text).unwrap();
        assert_eq!(parsed, vec![c]);
        let users = Users::new(parsed).unwrap();
        assert!(users.required() && users.get("ann").is_some());
    }

    #[test]
    fn weak_iteration_counts_are_refused() {
        let mut c = Credential::derive_with_salt("a", "p", b"salt", 4096).unwrap();
        c.iterations = 100;
        assert!(Users::new(vec![c]).is_err());
    }
}
