//! Reading the standalone host's input: manifests (YAML, one or many documents per file, a file
//! or a directory) and object listings (JSON Lines). Every error names the file, the line or
//! document, and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::api::compile::{self, ValidationErrors};
use crate::api::v1alpha1::{
    LegalHoldSpec, RecordingBucketSpec, RetentionPolicySpec, SubjectRequestSpec,
};
use crate::retention::{BucketRules, Hold, ObjectInfo, Policy};

pub const API_VERSION: &str = "gallring.io/v1alpha1";

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not UTF-8 text")]
    NotText { path: PathBuf },
    #[error("{path}: no .yaml or .yml files in this directory")]
    EmptyDir { path: PathBuf },
    /// A problem in one YAML document: syntax, shape, or a field of the wrong type.
    #[error("{origin}: {message}")]
    At { origin: Origin, message: String },
    #[error("{origin}: {errors}")]
    Invalid {
        origin: Origin,
        errors: Box<ValidationErrors>,
    },
    #[error("{0}")]
    Reference(String),
    #[error("{path}: line {line}: {message}")]
    ObjectLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Where a resource came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub path: PathBuf,
    pub doc: usize,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: document {} (line {})",
            self.path.display(),
            self.doc,
            self.line
        )
    }
}

/// A parsed resource with its namespace/name and origin.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    pub namespace: String,
    pub name: String,
    pub origin: Origin,
    /// `metadata.creationTimestamp`, when the manifest gives one.
    pub created: Option<chrono::DateTime<chrono::Utc>>,
    pub spec: T,
}

impl<T> Loaded<T> {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// All manifests found, not yet cross-checked.
#[derive(Debug, Default)]
pub struct Manifests {
    pub policies: Vec<Loaded<RetentionPolicySpec>>,
    pub buckets: Vec<Loaded<RecordingBucketSpec>>,
    pub holds: Vec<Loaded<LegalHoldSpec>>,
    pub requests: Vec<Loaded<SubjectRequestSpec>>,
}

fn yaml_files(path: &Path) -> Result<Vec<PathBuf>, InputError> {
    let read_err = |source| InputError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read_err)? {
        let p = entry.map_err(read_err)?.path();
        let is_yaml = p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "yaml" || e == "yml");
        if is_yaml && p.is_file() {
            files.push(p);
        }
    }
    if files.is_empty() {
        return Err(InputError::EmptyDir {
            path: path.to_path_buf(),
        });
    }
    files.sort();
    Ok(files)
}

/// Line (1-based) where each YAML document starts: the first line, then each line after `---`.
fn document_lines(text: &str) -> Vec<usize> {
    let mut starts = vec![1];
    for (i, line) in text.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") {
            if i == 0 {
                starts[0] = 2;
            } else {
                starts.push(i + 2);
            }
        }
    }
    starts
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    name: Option<String>,
    namespace: Option<String>,
    /// A LegalHold's creation, for the policy's `holdRelease[].maxHold`.
    creation_timestamp: Option<chrono::DateTime<chrono::Utc>>,
}

impl Manifests {
    /// Reads a file or every `*.yaml` / `*.yml` file of a directory (sorted by name).
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let mut out = Manifests::default();
        for file in yaml_files(path)? {
            let bytes = std::fs::read(&file).map_err(|source| InputError::Read {
                path: file.clone(),
                source,
            })?;
            let text =
                String::from_utf8(bytes).map_err(|_| InputError::NotText { path: file.clone() })?;
            out.add_text(&file, &text)?;
        }
        Ok(out)
    }

    /// Parses one file's text (several documents allowed).
    pub fn add_text(&mut self, file: &Path, text: &str) -> Result<(), InputError> {
        let lines = document_lines(text);
        for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
            let line = lines.get(i).copied().unwrap_or(1);
            let origin = Origin {
                path: file.to_path_buf(),
                doc: i + 1,
                line,
            };
            let value = serde_norway::Value::deserialize(doc).map_err(|e| InputError::At {
                origin: Origin {
                    line: e.location().map_or(line, |l| l.line()),
                    ..origin.clone()
                },
                message: format!("invalid YAML: {e}"),
            })?;
            if value.is_null() {
                continue; // an empty document, e.g. after a trailing `---`
            }
            self.add_value(origin, value)?;
        }
        Ok(())
    }

    fn add_value(&mut self, origin: Origin, value: serde_norway::Value) -> Result<(), InputError> {
        let doc_err = |message: String| InputError::At {
            origin: origin.clone(),
            message,
        };
        let map = value.as_mapping().ok_or_else(|| {
            doc_err("expected a mapping with apiVersion, kind, metadata and spec".into())
        })?;
        let field = |k: &str| map.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let api_version =
            field("apiVersion").ok_or_else(|| doc_err("`apiVersion` is missing".into()))?;
        let kind = field("kind").ok_or_else(|| doc_err("`kind` is missing".into()))?;
        if api_version != API_VERSION {
            return Err(doc_err(format!(
                "apiVersion `{api_version}` is not {API_VERSION} (kind {kind})"
            )));
        }
        let meta: Meta = map
            .get("metadata")
            .cloned()
            .map(serde_norway::from_value)
            .transpose()
            .map_err(|e| doc_err(format!("field `metadata`: {e}")))?
            .unwrap_or(Meta {
                name: None,
                namespace: None,
                creation_timestamp: None,
            });
        let created = meta.creation_timestamp;
        let name = meta
            .name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| doc_err(format!("{kind}: `metadata.name` is missing")))?;
        let namespace = meta.namespace.unwrap_or_else(|| "default".into());
        let spec_value = map
            .get("spec")
            .cloned()
            .ok_or_else(|| doc_err(format!("{kind} {name}: `spec` is missing")))?;
        let parse = |value: serde_norway::Value| -> Result<_, InputError> {
            Ok(Loaded {
                namespace: namespace.clone(),
                name: name.clone(),
                origin: origin.clone(),
                created,
                spec: value,
            })
        };
        let typed_err = |e: serde_path_to_error::Error<serde_norway::Error>| InputError::At {
            origin: origin.clone(),
            message: format!("{kind} {name}: field `spec.{}`: {}", e.path(), e.inner()),
        };
        let loaded = parse(spec_value)?;
        match kind.as_str() {
            "RetentionPolicy" => {
                let spec =
                    serde_path_to_error::deserialize(loaded.spec.clone()).map_err(typed_err)?;
                self.policies.push(with_spec(loaded, spec));
            }
            "RecordingBucket" => {
                let spec =
                    serde_path_to_error::deserialize(loaded.spec.clone()).map_err(typed_err)?;
                self.buckets.push(with_spec(loaded, spec));
            }
            "LegalHold" => {
                let spec =
                    serde_path_to_error::deserialize(loaded.spec.clone()).map_err(typed_err)?;
                self.holds.push(with_spec(loaded, spec));
            }
            "SubjectRequest" => {
                let spec =
                    serde_path_to_error::deserialize(loaded.spec.clone()).map_err(typed_err)?;
                self.requests.push(with_spec(loaded, spec));
            }
            other => {
                return Err(doc_err(format!(
                    "unknown kind `{other}`: expected RetentionPolicy, RecordingBucket, LegalHold or SubjectRequest"
                )));
            }
        }
        Ok(())
    }

    /// Validates everything and resolves references, giving one ready-to-run set per bucket.
    pub fn compile(&self) -> Result<Vec<CompiledBucket>, InputError> {
        let invalid = |origin: &Origin, errors| InputError::Invalid {
            origin: origin.clone(),
            errors: Box::new(errors),
        };
        let mut policies: BTreeMap<String, (Policy, &Loaded<RetentionPolicySpec>)> =
            BTreeMap::new();
        for p in &self.policies {
            let resource = format!("RetentionPolicy/{}", p.key());
            let compiled =
                compile::policy(&resource, &p.spec).map_err(|e| invalid(&p.origin, e))?;
            if policies.insert(p.key(), (compiled, p)).is_some() {
                return Err(InputError::Reference(format!(
                    "{}: {resource} is defined twice",
                    p.origin
                )));
            }
        }
        let mut buckets = Vec::new();
        let mut seen = BTreeMap::new();
        for b in &self.buckets {
            let resource = format!("RecordingBucket/{}", b.key());
            if seen.insert(b.key(), ()).is_some() {
                return Err(InputError::Reference(format!(
                    "{}: {resource} is defined twice",
                    b.origin
                )));
            }
            let policy_key = format!("{}/{}", b.namespace, b.spec.policy_ref.name);
            let (policy, _) = policies.get(&policy_key).ok_or_else(|| {
                InputError::Reference(format!(
                    "{}: {resource}: spec.policyRef.name: RetentionPolicy `{}` not found in namespace `{}`",
                    b.origin, b.spec.policy_ref.name, b.namespace
                ))
            })?;
            let rules =
                compile::bucket(&resource, &b.spec, policy).map_err(|e| invalid(&b.origin, e))?;
            let state = compile::state(&resource, &b.spec).map_err(|e| invalid(&b.origin, e))?;
            buckets.push(CompiledBucket {
                key: b.key(),
                spec: b.spec.clone(),
                policy: policy.clone(),
                rules,
                state,
                holds: Vec::new(),
                requests: Vec::new(),
            });
        }
        for h in &self.holds {
            let resource = format!("LegalHold/{}", h.key());
            let mut hold = compile::hold(&resource, &h.spec).map_err(|e| invalid(&h.origin, e))?;
            hold.created_at = h.created;
            let bucket_key = format!("{}/{}", h.namespace, h.spec.bucket_ref.name);
            let bucket = buckets.iter_mut().find(|b| b.key == bucket_key).ok_or_else(|| {
                InputError::Reference(format!(
                    "{}: {resource}: spec.bucketRef.name: RecordingBucket `{}` not found in namespace `{}`",
                    h.origin, h.spec.bucket_ref.name, h.namespace
                ))
            })?;
            bucket.holds.push(hold);
        }
        for r in &self.requests {
            let resource = format!("SubjectRequest/{}", r.key());
            let bucket_key = format!("{}/{}", r.namespace, r.spec.bucket_ref.name);
            let bucket = buckets.iter_mut().find(|b| b.key == bucket_key).ok_or_else(|| {
                InputError::Reference(format!(
                    "{}: {resource}: spec.bucketRef.name: RecordingBucket `{}` not found in namespace `{}`",
                    r.origin, r.spec.bucket_ref.name, r.namespace
                ))
            })?;
            let request = compile::subject_request(&resource, &r.spec, Some(&bucket.policy))
                .map_err(|e| invalid(&r.origin, e))?;
            // A restriction is carried out as a hold.
            bucket.holds.extend(request.as_hold());
            bucket.requests.push(request);
        }
        Ok(buckets)
    }
}

fn with_spec<T>(loaded: Loaded<serde_norway::Value>, spec: T) -> Loaded<T> {
    Loaded {
        namespace: loaded.namespace,
        name: loaded.name,
        origin: loaded.origin,
        created: loaded.created,
        spec,
    }
}

/// A bucket with its policy and holds, validated.
#[derive(Debug, Clone)]
pub struct CompiledBucket {
    /// `namespace/name`.
    pub key: String,
    pub spec: RecordingBucketSpec,
    pub policy: Policy,
    pub rules: BucketRules,
    /// Where its journal is.
    pub state: crate::retention::StateLocation,
    /// LegalHolds, and the holds that carry out restriction requests.
    pub holds: Vec<Hold>,
    /// Data-subject requests (SubjectRequest manifests).
    pub requests: Vec<crate::retention::SubjectRequest>,
}

/// One line of an objects file.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ObjectLine {
    key: String,
    #[serde(default)]
    version_id: Option<String>,
    last_modified: DateTime<Utc>,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

/// Parses a JSON Lines listing: `{"key", "lastModified", "size", "tags", "metadata",
/// "versionId"}` per line; blank lines and lines starting with `#` are skipped.
pub fn parse_objects(path: &Path, text: &str) -> Result<Vec<ObjectInfo>, InputError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let line_err = |message: String| InputError::ObjectLine {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let mut de = serde_json::Deserializer::from_str(trimmed);
        let o: ObjectLine = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let field = e.path().to_string();
            // serde_json counts lines within this one line; only the column helps the reader.
            let inner = e
                .inner()
                .to_string()
                .replace(" at line 1 column ", " at column ");
            if field == "." {
                line_err(inner)
            } else {
                line_err(format!("field `{field}`: {inner}"))
            }
        })?;
        if o.key.is_empty() {
            return Err(line_err("field `key`: must not be empty".into()));
        }
        if o.tags.len() > crate::retention::MAX_TAGS {
            return Err(line_err(format!(
                "field `tags`: {} tags, S3 allows at most {}",
                o.tags.len(),
                crate::retention::MAX_TAGS
            )));
        }
        out.push(ObjectInfo {
            key: o.key,
            version_id: o.version_id,
            last_modified: o.last_modified,
            size: o.size,
            tags: o.tags,
            metadata: o
                .metadata
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        });
    }
    Ok(out)
}

/// Reads and parses an objects file.
pub fn load_objects(path: &Path) -> Result<Vec<ObjectInfo>, InputError> {
    let bytes = std::fs::read(path).map_err(|source| InputError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| InputError::NotText {
        path: path.to_path_buf(),
    })?;
    parse_objects(path, &text)
}
