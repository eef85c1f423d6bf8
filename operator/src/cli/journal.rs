//! `gallring journal verify` and `gallring journal keygen` (issue 11): the journal as evidence.

use std::fmt::Write as _;

use crate::cli::explain::ExplainError;
use crate::input::CompiledBucket;
use crate::state::journal::{VerifyReport, verify};
use crate::state::seal::{KeyError, PublicKey, Signer};
use crate::store::ObjectStore;
use crate::store::s3::S3Settings;

#[derive(Debug, thiserror::Error)]
pub enum JournalCliError {
    #[error(transparent)]
    Explain(#[from] ExplainError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("{path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} already exists: a signing key is never overwritten")]
    Exists(String),
    #[error("the journal does not verify: {0}")]
    Failed(String),
}

/// Verifies the bucket's journal in its state location; `Err(Failed)` names the first problem.
async fn verify_at(
    settings: S3Settings,
    b: &CompiledBucket,
    key: Option<&PublicKey>,
) -> Result<(String, VerifyReport), JournalCliError> {
    let (store, state) = crate::cli::explain::connect(settings, b).await?;
    let state = state.as_ref().unwrap_or(&store);
    let where_ = format!("s3://{}/{}", state.bucket(), b.state.prefix);
    let report = verify(state, &b.state.prefix, key)
        .await
        .map_err(|e| JournalCliError::Explain(e.into()))?;
    Ok((where_, report))
}

/// Renders a report; `Err` when the journal does not verify, or nothing verifies under `key`.
pub fn judge(where_: &str, r: &VerifyReport) -> Result<String, JournalCliError> {
    let mut out = String::new();
    let _ = writeln!(out, "journal     {where_}");
    let _ = writeln!(
        out,
        "chain       {} records in {} segments, head {}",
        r.records, r.segments, r.head
    );
    let signers: Vec<&str> = r.signers.iter().map(String::as_str).collect();
    let _ = writeln!(
        out,
        "seals       {} valid{}; signed by {}{}",
        r.seals_valid,
        r.sealed_through
            .map(|s| format!(", through record {s}"))
            .unwrap_or_default(),
        if signers.is_empty() {
            "nobody".to_string()
        } else {
            signers.join(", ")
        },
        if r.key_checked {
            " (checked against the expected key)"
        } else {
            " (no expected key given: each seal checked against its own key only)"
        },
    );
    if r.unsealed_records > 0 {
        let _ = writeln!(
            out,
            "unsealed    {} record(s) after the last seal: chained, not signed",
            r.unsealed_records
        );
    }
    if let Some(p) = &r.problem {
        return Err(JournalCliError::Failed(format!("{p}\n{out}")));
    }
    if r.key_checked && r.records > 0 && r.seals_valid == 0 {
        return Err(JournalCliError::Failed(format!(
            "no record is sealed by the expected key\n{out}"
        )));
    }
    let _ = writeln!(out, "verified    yes");
    Ok(out)
}

/// From manifests (the default AWS credential chain) or the cluster (the RecordingBucket's
/// Secret, and its `status.journalPublicKey` as the expected key unless one is given).
pub async fn verify_bucket(
    manifests: Option<&std::path::Path>,
    bucket: Option<&str>,
    namespace: Option<&str>,
    public_key: Option<&str>,
) -> Result<String, JournalCliError> {
    let (b, settings, rb) = crate::cli::explain::resolve(manifests, bucket, namespace).await?;
    let published = rb
        .and_then(|rb| rb.status)
        .and_then(|s| s.journal_public_key);
    let key = public_key
        .map(str::to_string)
        .or(published)
        .map(|k| PublicKey::parse(&k))
        .transpose()?;
    let (where_, report) = verify_at(settings, &b, key.as_ref()).await?;
    judge(&where_, &report)
}

/// Writes a new signing key to `path` (never over an existing file; owner-only on Unix) and
/// returns its public key.
pub fn keygen(path: &std::path::Path) -> Result<String, JournalCliError> {
    let shown = path.display().to_string();
    let seed = Signer::generate_seed_hex().map_err(|source| JournalCliError::Write {
        path: "/dev/urandom".into(),
        source,
    })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            JournalCliError::Exists(shown.clone())
        } else {
            JournalCliError::Write {
                path: shown.clone(),
                source,
            }
        }
    })?;
    std::io::Write::write_all(&mut file, format!("{seed}\n").as_bytes()).map_err(|source| {
        JournalCliError::Write {
            path: shown.clone(),
            source,
        }
    })?;
    Ok(Signer::load(path)?.public_hex())
}
