//! Signed seals over the journal's hash chain (issue 11).
//!
//! After each segment gallring writes `seals/<first seq>.json`: the segment's last seq and the
//! chain's hash there, signed with the host's Ed25519 key. The chain links every record to the
//! one before, so a valid seal vouches for every record up to it: altering, removing or
//! reordering one means recomputing the chain, which needs the private key to seal again. The
//! key is a 32-byte seed kept as 64 hex characters in a file (a Secret in the cluster).

use std::path::Path;

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// What a seal signs: the domain, the journal's place and the chain at one seq.
pub fn message(prefix: &str, last_seq: u64, head: &str) -> Vec<u8> {
    format!("gallring-journal-seal-v1\n{prefix}\n{last_seq}\n{head}\n").into_bytes()
}

/// One seal object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seal {
    /// The segment it closes.
    pub segment: String,
    pub first_seq: u64,
    pub last_seq: u64,
    /// The chain's hash at `last_seq` (sha256 of that record's line).
    pub head: String,
    /// Hex Ed25519 public key of the signer.
    pub public_key: String,
    /// Hex Ed25519 signature over [`message`].
    pub signature: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("signing key {path}: expected 64 hex characters (a 32-byte Ed25519 seed)")]
    Format { path: String },
    #[error(
        "public key `{0}`: not an Ed25519 public key (64 hex characters, as `gallring journal keygen` prints)"
    )]
    PublicKey(String),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.trim();
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The host's signing key.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private half.
        write!(f, "Signer({})", self.public_hex())
    }
}

impl Signer {
    pub fn from_seed(seed: [u8; 32]) -> Signer {
        Signer {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Reads a seed file (64 hex characters, surrounding whitespace ignored).
    pub fn load(path: &Path) -> Result<Signer, KeyError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?;
        let seed = unhex::<32>(&text).ok_or(KeyError::Format { path: shown })?;
        Ok(Signer::from_seed(seed))
    }

    /// A new seed from the operating system's random source, as hex.
    pub fn generate_seed_hex() -> std::io::Result<String> {
        use std::io::Read;
        let mut seed = [0u8; 32];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
        Ok(hex(&seed))
    }

    /// A hex Ed25519 signature over `bytes` (the evidence summary).
    pub fn sign_hex(&self, bytes: &[u8]) -> String {
        hex(&self.key.sign(bytes).to_bytes())
    }

    pub fn public_hex(&self) -> String {
        hex(self.key.verifying_key().as_bytes())
    }

    pub fn seal(
        &self,
        prefix: &str,
        segment: &str,
        first_seq: u64,
        last_seq: u64,
        head: &str,
    ) -> Seal {
        let sig = self.key.sign(&message(prefix, last_seq, head));
        Seal {
            segment: segment.to_string(),
            first_seq,
            last_seq,
            head: head.to_string(),
            public_key: self.public_hex(),
            signature: hex(&sig.to_bytes()),
        }
    }
}

/// A public key to verify seals with.
#[derive(Debug, Clone)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn parse(hex_key: &str) -> Result<PublicKey, KeyError> {
        unhex::<32>(hex_key)
            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
            .map(PublicKey)
            .ok_or_else(|| KeyError::PublicKey(hex_key.to_string()))
    }

    pub fn hex(&self) -> String {
        hex(self.0.as_bytes())
    }

    /// Whether `signature_hex` is this key's signature over `bytes` (an evidence summary).
    pub fn verifies_bytes(&self, bytes: &[u8], signature_hex: &str) -> bool {
        unhex::<64>(signature_hex)
            .is_some_and(|sig| self.0.verify(bytes, &Signature::from_bytes(&sig)).is_ok())
    }

    /// Whether `seal` is signed by this key over its own seq and head.
    pub fn verifies(&self, prefix: &str, seal: &Seal) -> bool {
        let Some(sig) = unhex::<64>(&seal.signature) else {
            return false;
        };
        self.0
            .verify(
                &message(prefix, seal.last_seq, &seal.head),
                &Signature::from_bytes(&sig),
            )
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_verifies_under_its_key_only_and_only_unchanged() {
        let signer = Signer::from_seed([7; 32]);
        let seal = signer.seal(".gallring/", "s", 0, 4, "ab");
        let key = PublicKey::parse(&signer.public_hex()).expect("valid key");
        assert!(key.verifies(".gallring/", &seal));
        let mut moved = seal.clone();
        moved.head = "ac".into();
        assert!(!key.verifies(".gallring/", &moved));
        let mut later = seal.clone();
        later.last_seq = 5;
        assert!(!key.verifies(".gallring/", &later));
        assert!(
            !key.verifies("other/", &seal),
            "bound to the journal's place"
        );
        let other = PublicKey::parse(&Signer::from_seed([8; 32]).public_hex()).expect("valid");
        assert!(!other.verifies(".gallring/", &seal));
        assert!(format!("{signer:?}").contains(&signer.public_hex()));
    }

    #[test]
    fn bad_key_files_are_named() {
        let dir = std::env::temp_dir().join(format!("gallring-seal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("key");
        std::fs::write(&path, "not hex").expect("write");
        let err = Signer::load(&path).expect_err("rejected");
        assert!(err.to_string().contains("64 hex characters"), "{err}");
        std::fs::write(&path, format!("{}\n", "0f".repeat(32))).expect("write");
        assert!(Signer::load(&path).is_ok());
        assert!(PublicKey::parse("zz").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
