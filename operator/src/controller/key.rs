//! One typed identity for the resources the controllers handle, instead of formatted strings.

use std::fmt;

use kube::{Resource, ResourceExt};

/// `Kind/namespace/name`, as used in logs, backoff bookkeeping and the engine's hold names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceKey {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

impl ResourceKey {
    pub fn of<K: Resource<DynamicType = ()>>(obj: &K) -> Self {
        ResourceKey {
            kind: kind_name(&K::kind(&())),
            namespace: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
        }
    }

    /// `namespace/name`: how the engine names a hold (and `held_by_hold` counts it).
    pub fn namespaced_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The kinds gallring handles, as static names (the key is built often).
fn kind_name(kind: &str) -> &'static str {
    match kind {
        "RecordingBucket" => "RecordingBucket",
        "LegalHold" => "LegalHold",
        "RetentionPolicy" => "RetentionPolicy",
        "Secret" => "Secret",
        _ => "Object",
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}
