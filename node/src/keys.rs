//! Agent identity keys on disk: 64 hex digits of the ed25519 secret and a newline, mode 0600.

use crate::error::{NodeError, Result};
use rand::RngCore;
use slotmesh_proto::Identity;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// Generates a new identity and writes it to `path`, which must not exist yet.
pub fn generate(path: &Path) -> Result<Identity> {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    write_secret(
        path,
        format!("{}\n", hex::encode(secret)).as_bytes(),
        Secret::IdentityKey,
    )?;
    Ok(Identity::from_secret(secret))
}

/// Which secret a file holds, as its errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// An agent's identity key.
    IdentityKey,
    /// A private swarm's pre-shared key.
    SwarmKey,
}

impl Secret {
    fn actions(self) -> (&'static str, &'static str) {
        match self {
            Secret::IdentityKey => ("cannot create key file", "cannot write key file"),
            Secret::SwarmKey => ("cannot create swarm key", "cannot write swarm key"),
        }
    }
}

/// Writes a secret to a new file (mode 0600, flushed); refuses to overwrite one.
pub fn write_secret(path: &Path, contents: &[u8], what: Secret) -> Result<()> {
    let (create, write) = what.actions();
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| NodeError::file(create, path, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| NodeError::file(write, path, e))
}

/// Reads the identity in `path` (64 hex digits of the secret).
pub fn load(path: &Path) -> Result<Identity> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| NodeError::file("cannot read key file", path, e))?;
    let malformed = |problem: String| NodeError::Malformed {
        path: path.to_path_buf(),
        problem,
    };
    let bytes = hex::decode(text.trim())
        .map_err(|e| malformed(format!("is not a key file: not hex ({e})")))?;
    let Ok(secret) = <[u8; 32]>::try_from(bytes.as_slice()) else {
        return Err(malformed(format!(
            "is not a key file: it holds {} bytes, an ed25519 secret is 32",
            bytes.len()
        )));
    };
    Ok(Identity::from_secret(secret))
}

/// Reads the identity in `path`, generating it there first if the file does not exist.
/// Returns it and whether it was generated.
pub fn load_or_generate(path: &Path) -> Result<(Identity, bool)> {
    if path.exists() {
        return Ok((load(path)?, false));
    }
    Ok((generate(path)?, true))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn generated_key_is_the_identity_printed_and_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("slotmesh-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("identity.key");
        let _ = std::fs::remove_file(&path);
        let made = generate(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let secret: [u8; 32] = hex::decode(text.trim()).unwrap().try_into().unwrap();
        assert_eq!(Identity::from_secret(secret).id(), made.id());
        assert_eq!(load(&path).unwrap().id(), made.id());
        assert!(!load_or_generate(&path).unwrap().1);
        assert!(
            generate(&path).is_err(),
            "an existing key is never overwritten"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
