//! Checks of the Helm chart in `charts/gallring`.
//!
//! Static ones: its YAML and JSON parse, its CRDs are the generated ones, every `.Values` path a
//! template reads exists in values.yaml (and every value is read), values.yaml satisfies
//! values.schema.json, the alerts are complete and use metrics the operator exports, the RBAC
//! has no wildcards, and the Deployment passes only flags `gallring operator` accepts.
//!
//! Rendered ones, with the helm v3 binary named by `$HELM` (`helm template`, no cluster
//! needed; `eval "$(../shared/k8s/up.sh)"` exports it): the PrometheusRule and ServiceMonitor
//! render only where their API exists and fail with a clear message otherwise, the RBAC is
//! exactly the operator's calls (Secrets only where allowed, no ClusterRole in namespace mode),
//! the Deployment passes the flags that match the values, and releases in different
//! namespaces never render the same object. Without `$HELM` these tests fail with a hint; they
//! never skip.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value as Json;
use serde_norway::Value as Yaml;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in a workspace")
        .to_path_buf()
}

fn chart() -> PathBuf {
    repo().join("charts/gallring")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml(path: &Path) -> Yaml {
    serde_norway::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

fn values() -> Yaml {
    yaml(&chart().join("values.yaml"))
}

fn schema() -> Json {
    let path = chart().join("values.schema.json");
    serde_json::from_str(&read(&path))
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad regex {pattern}: {e}"))
}

/// The chart's template files that Helm renders or reads for defines: `templates/*.yaml`,
/// `*.tpl` and `NOTES.txt`, as (file name, text).
fn templates() -> Vec<(String, String)> {
    let dir = chart().join("templates");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.ends_with(".yaml") || name.ends_with(".tpl") || name == "NOTES.txt"
        })
        .map(|p| {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            (name, read(&p))
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 8,
        "expected the chart's templates in {}, found {:?}",
        dir.display(),
        files.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    files
}

fn template(name: &str) -> String {
    read(&chart().join("templates").join(name))
}

/// Every `.Values.a.b.c` (also `$.Values…`) a template mentions, as (file, "a.b.c").
fn value_references() -> Vec<(String, String)> {
    let re = regex(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)");
    let mut refs = Vec::new();
    for (file, text) in templates() {
        for cap in re.captures_iter(&text) {
            refs.push((file.clone(), cap[1].trim_start_matches('.').to_string()));
        }
    }
    refs
}

/// Looks up a dotted path in a YAML mapping.
fn lookup<'a>(root: &'a Yaml, path: &str) -> Option<&'a Yaml> {
    path.split('.')
        .try_fold(root, |node, key| node.as_mapping()?.get(key))
}

/// Every path to a key in a YAML mapping, depth first: "image", "image.repository", …
fn key_paths(node: &Yaml, prefix: &str, out: &mut Vec<String>) {
    if let Some(map) = node.as_mapping() {
        for (k, v) in map {
            let key = k.as_str().expect("values.yaml keys are strings");
            let path = if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            };
            out.push(path.clone());
            key_paths(v, &path, out);
        }
    }
}

#[test]
fn chart_yaml_and_json_files_parse() {
    for file in ["Chart.yaml", "values.yaml"] {
        let doc = yaml(&chart().join(file));
        assert!(doc.is_mapping(), "{file} must be a YAML mapping");
    }
    assert!(schema().is_object(), "values.schema.json must be an object");

    let crds = chart().join("crds");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&crds)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", crds.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no CRDs in {}", crds.display());
    let mut names = BTreeSet::new();
    for file in files {
        let text = read(&file);
        for doc in serde_norway::Deserializer::from_str(&text) {
            let doc = Yaml::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", file.display()));
            if doc.is_null() {
                continue;
            }
            assert_eq!(
                doc.get("kind").and_then(Yaml::as_str),
                Some("CustomResourceDefinition"),
                "{}: every document in a chart's crds/ must be a CRD",
                file.display()
            );
            let name = doc
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Yaml::as_str)
                .unwrap_or_else(|| panic!("{}: a CRD without metadata.name", file.display()));
            names.insert(name.to_string());
        }
    }
    let expected: BTreeSet<String> = [
        "retentionpolicies.gallring.io",
        "recordingbuckets.gallring.io",
        "legalholds.gallring.io",
        "subjectrequests.gallring.io",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(names, expected, "the chart's CRDs");
}

#[test]
fn chart_crds_are_a_copy_of_the_generated_crds() {
    let generated = repo().join("crds/gallring.yaml");
    let copy = chart().join("crds/gallring.yaml");
    let a = std::fs::read(&generated)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", generated.display()));
    let b = std::fs::read(&copy).unwrap_or_else(|e| panic!("cannot read {}: {e}", copy.display()));
    assert!(
        a == b,
        "charts/gallring/crds/gallring.yaml differs from crds/gallring.yaml (Helm installs the \
         chart's copy). Copy it: cp crds/gallring.yaml charts/gallring/crds/gallring.yaml"
    );
}

#[test]
fn every_value_a_template_reads_exists_in_values_yaml() {
    let values = values();
    let refs = value_references();
    assert!(!refs.is_empty(), "no .Values references found in templates");
    let missing: BTreeSet<String> = refs
        .iter()
        .filter(|(_, path)| lookup(&values, path).is_none())
        .map(|(file, path)| format!("templates/{file}: .Values.{path}"))
        .collect();
    assert!(
        missing.is_empty(),
        "templates read values that values.yaml does not define (add them, documented, to \
         values.yaml and values.schema.json):\n  {}",
        missing.into_iter().collect::<Vec<_>>().join("\n  ")
    );
}

#[test]
fn every_value_in_values_yaml_is_read_by_a_template() {
    let refs: BTreeSet<String> = value_references().into_iter().map(|(_, p)| p).collect();
    let mut paths = Vec::new();
    key_paths(&values(), "", &mut paths);
    // A value is read when a template reads it, a value inside it, or the map holding it
    // (`toYaml .Values.resources`).
    let unused: Vec<String> = paths
        .into_iter()
        .filter(|p| {
            !refs.iter().any(|r| {
                r == p || r.starts_with(&format!("{p}.")) || p.starts_with(&format!("{r}."))
            })
        })
        .collect();
    assert!(
        unused.is_empty(),
        "values.yaml documents values no template reads:\n  {}",
        unused.join("\n  ")
    );
}

fn type_matches(ty: &str, v: &Json) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        other => panic!("values.schema.json uses an unknown type {other}"),
    }
}

/// A JSON Schema (draft-07) validator for the keywords values.schema.json uses: type,
/// properties, additionalProperties, required, items, enum, minimum, maximum, minLength,
/// pattern. Helm itself validates the full schema on install; this keeps values.yaml and the
/// schema in step without helm.
fn validate(schema: &Json, v: &Json, at: &str, errors: &mut Vec<String>) {
    let here = if at.is_empty() { "(root)" } else { at };
    if let Some(ty) = schema.get("type") {
        let types: Vec<&str> = match ty {
            Json::String(s) => vec![s.as_str()],
            Json::Array(a) => a.iter().filter_map(Json::as_str).collect(),
            _ => panic!("{here}: type must be a string or an array"),
        };
        if !types.iter().any(|t| type_matches(t, v)) {
            errors.push(format!("{here}: {v} is not of type {types:?}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Json::as_array)
        && !allowed.contains(v)
    {
        errors.push(format!("{here}: {v} is not one of {allowed:?}"));
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Json::as_f64)
            && n < min
        {
            errors.push(format!("{here}: {n} < minimum {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Json::as_f64)
            && n > max
        {
            errors.push(format!("{here}: {n} > maximum {max}"));
        }
    }
    if let Some(s) = v.as_str() {
        if let Some(min) = schema.get("minLength").and_then(Json::as_u64)
            && (s.chars().count() as u64) < min
        {
            errors.push(format!("{here}: {s:?} is shorter than {min}"));
        }
        if let Some(p) = schema.get("pattern").and_then(Json::as_str)
            && !regex(p).is_match(s)
        {
            errors.push(format!("{here}: {s:?} does not match {p}"));
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Json::as_object);
        for key in schema
            .get("required")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
        {
            if !obj.contains_key(key) {
                errors.push(format!("{here}: required key {key} is missing"));
            }
        }
        for (key, child) in obj {
            let path = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            match (
                props.and_then(|p| p.get(key)),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => validate(s, child, &path, errors),
                (None, Some(Json::Bool(false))) => {
                    errors.push(format!("{path}: not allowed by the schema"))
                }
                (None, Some(s @ Json::Object(_))) => validate(s, child, &path, errors),
                (None, _) => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, child) in arr.iter().enumerate() {
            validate(items, child, &format!("{here}[{i}]"), errors);
        }
    }
}

#[test]
fn values_yaml_satisfies_values_schema_json() {
    let schema = schema();
    assert_eq!(
        schema.get("$schema").and_then(Json::as_str),
        Some("http://json-schema.org/draft-07/schema#"),
        "values.schema.json declares JSON Schema draft-07"
    );
    let values: Json = serde_json::to_value(values()).expect("values.yaml converts to JSON");

    // Top level: every key in values.yaml is in the schema and vice versa. `global` is the one
    // exception: Helm adds it to a chart's values when the chart is a dependency.
    let in_values: BTreeSet<&str> = values
        .as_object()
        .expect("values.yaml is a mapping")
        .keys()
        .map(String::as_str)
        .collect();
    let in_schema: BTreeSet<&str> = schema
        .get("properties")
        .and_then(Json::as_object)
        .expect("the schema has properties")
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "global")
        .collect();
    assert_eq!(
        in_values.difference(&in_schema).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "top-level values missing from values.schema.json"
    );
    assert_eq!(
        in_schema.difference(&in_values).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "values.schema.json properties missing from values.yaml"
    );
    assert_eq!(
        schema.get("additionalProperties"),
        Some(&Json::Bool(false)),
        "the schema rejects unknown top-level values (typos)"
    );

    let mut errors = Vec::new();
    validate(&schema, &values, "", &mut errors);
    assert!(
        errors.is_empty(),
        "values.yaml does not satisfy values.schema.json:\n  {}",
        errors.join("\n  ")
    );

    // And the validator does reject what it should.
    let mut bad = values.clone();
    bad["replicaCount"] = Json::from("two");
    bad["image"]["pullPolicy"] = Json::from("Sometimes");
    bad["prometheusRule"]["thresholds"]["retentionBreachFor"] = Json::from("15 minutes");
    bad["watchNamespace"] = Json::from("Not_A_Namespace");
    bad["replicas"] = Json::from(3);
    bad["leaderElection"]["renewDeadlineSeconds"] = Json::from(0);
    bad["leaderElection"]["leaseDurationSeconds"] = Json::from("15s");
    bad["leaderElection"]["retryPeriodSeconds"] = Json::from(0.5);
    bad["secrets"]["namespaces"] = serde_json::json!(["Team_A"]);
    bad["secrets"]["clusterWide"] = Json::from("yes");
    bad["allowAmbientCredentials"] = Json::from("no");
    // The old keys are gone: a values file still setting them is rejected, not ignored.
    bad["rbac"]["secrets"] = serde_json::json!({"enabled": true});
    let mut errors = Vec::new();
    validate(&schema, &bad, "", &mut errors);
    for path in [
        "replicaCount",
        "image.pullPolicy",
        "prometheusRule.thresholds.retentionBreachFor",
        "watchNamespace",
        "replicas",
        "leaderElection.renewDeadlineSeconds",
        "leaderElection.leaseDurationSeconds",
        "leaderElection.retryPeriodSeconds",
        "secrets.namespaces[0]",
        "secrets.clusterWide",
        "allowAmbientCredentials",
        "rbac.secrets",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(&format!("{path}:"))),
            "the schema should reject a bad {path}; errors: {errors:#?}"
        );
    }
}

#[test]
fn chart_yaml_declares_a_v2_chart_of_this_version() {
    let chart = yaml(&chart().join("Chart.yaml"));
    let field = |k: &str| chart.get(k).and_then(Yaml::as_str);
    assert_eq!(field("apiVersion"), Some("v2"), "Chart.yaml apiVersion");
    assert_eq!(field("name"), Some("gallring"), "Chart.yaml name");
    let version = field("version").expect("Chart.yaml version (a string)");
    assert!(
        regex(r"^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$").is_match(version),
        "Chart.yaml version {version:?} is not SemVer 2"
    );
    // The image tag defaults to appVersion: it must be the version of the binary built here.
    assert_eq!(
        field("appVersion"),
        Some(env!("CARGO_PKG_VERSION")),
        "Chart.yaml appVersion must be a quoted string equal to the crate version"
    );
    assert!(field("description").is_some_and(|d| !d.is_empty()));
    assert!(field("kubeVersion").is_some(), "Chart.yaml kubeVersion");
}

const ALERTS: [&str; 15] = [
    "GallringRetentionBreach",
    "GallringObjectsRemovedByOthers",
    "GallringDangerousLifecycleRule",
    "GallringUnknownObjects",
    "GallringDeletionsBlocked",
    "GallringScanStale",
    "GallringDeletionFailures",
    "GallringLifecycleDrift",
    "GallringLifecycleWriteRefused",
    "GallringHoldPastReview",
    "GallringUnclassifiedObjects",
    "GallringBucketDegraded",
    "GallringSubjectRequestPastDue",
    "GallringSubjectRequestDueSoon",
    "GallringOperatorDown",
];

#[test]
fn prometheus_rule_has_every_alert_with_summary_description_and_runbook() {
    let text = template("prometheusrule.yaml");
    // Each alert's block runs from its `- alert:` line to the next one.
    let mut blocks: BTreeMap<String, String> = BTreeMap::new();
    for block in text.split("- alert:").skip(1) {
        let name = block
            .split_whitespace()
            .next()
            .expect("an alert name")
            .to_string();
        assert!(
            blocks.insert(name.clone(), block.to_string()).is_none(),
            "alert {name} is defined twice"
        );
    }
    for alert in ALERTS {
        let block = blocks
            .get(alert)
            .unwrap_or_else(|| panic!("prometheusrule.yaml has no alert {alert}"));
        for key in ["expr:", "severity:", "summary:", "description:", "runbook:"] {
            assert!(block.contains(key), "alert {alert} has no {key}");
        }
    }
    assert_eq!(
        blocks.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        ALERTS.into_iter().collect::<BTreeSet<_>>(),
        "the chart's alerts"
    );
    assert!(
        text.contains("monitoring.coreos.com/v1") && text.contains("kind: PrometheusRule"),
        "a monitoring.coreos.com/v1 PrometheusRule"
    );
    assert!(
        text.starts_with("{{- if .Values.prometheusRule.enabled }}"),
        "the PrometheusRule is optional (prometheusRule.enabled)"
    );
    assert!(
        template("servicemonitor.yaml").starts_with("{{- if .Values.serviceMonitor.enabled }}"),
        "the ServiceMonitor is optional (serviceMonitor.enabled)"
    );
    for (file, kind) in [
        ("prometheusrule.yaml", "PrometheusRule"),
        ("servicemonitor.yaml", "ServiceMonitor"),
    ] {
        assert!(
            template(file).contains(&format!(
                r#".Capabilities.APIVersions.Has "monitoring.coreos.com/v1/{kind}""#
            )),
            "{file} checks that the cluster serves monitoring.coreos.com/v1/{kind}"
        );
    }
    // GallringOperatorDown selects the job the ServiceMonitor produces: the Service's name.
    assert!(
        blocks["GallringOperatorDown"]
            .contains(r#"job="{{ include "gallring.metricsServiceName" . }}""#),
        "GallringOperatorDown selects job=<metrics Service name>"
    );
    assert!(
        template("service.yaml").contains(r#"name: {{ include "gallring.metricsServiceName" . }}"#),
        "the metrics Service is named by gallring.metricsServiceName"
    );
}

#[test]
fn alerts_use_only_metrics_the_operator_exports() {
    let rules = template("prometheusrule.yaml");
    let metrics = read(&repo().join("operator/src/metrics.rs"));
    let used: BTreeSet<&str> = regex(r"\bgallring_[a-z_]+[a-z]")
        .find_iter(&rules)
        .map(|m| m.as_str())
        .collect();
    assert!(used.len() >= 7, "alerts use gallring metrics: {used:?}");
    let unknown: Vec<&&str> = used
        .iter()
        .filter(|m| !metrics.contains(&format!("\"{m}\"")))
        .collect();
    assert!(
        unknown.is_empty(),
        "prometheusrule.yaml names metrics that operator/src/metrics.rs does not register: \
         {unknown:?}"
    );
}

#[test]
fn rbac_grants_no_wildcards_and_only_the_needed_verbs() {
    let text = template("rbac.yaml");
    // Drop template comments ({{/* … */}}) and YAML comments before looking for `*`.
    let stripped = regex(r"(?s)\{\{-?\s*/\*.*?\*/\s*-?\}\}").replace_all(&text, "");
    let stripped: String = stripped
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !stripped.contains('*'),
        "rbac.yaml grants a wildcard (`*` verb, resource or API group):\n{stripped}"
    );
    let allowed: BTreeSet<&str> = ["get", "list", "watch", "create", "update", "patch"].into();
    let verbs = regex(r"verbs:\s*\[([^\]]*)\]");
    let mut seen = 0;
    for cap in verbs.captures_iter(&stripped) {
        seen += 1;
        for verb in cap[1].split(',').map(|v| v.trim().trim_matches('"')) {
            assert!(
                allowed.contains(verb),
                "rbac.yaml grants verb {verb:?}; the operator needs only {allowed:?}"
            );
        }
    }
    assert!(seen >= 6, "rbac.yaml lists its verbs as flow sequences");
    for resource in [
        "retentionpolicies",
        "recordingbuckets",
        "legalholds",
        "subjectrequests",
        "retentionpolicies/status",
        "recordingbuckets/status",
        "legalholds/status",
        "subjectrequests/status",
        "secrets",
        "events",
        "leases",
    ] {
        assert!(
            stripped.contains(&format!("\"{resource}\"")),
            "rbac.yaml grants nothing on {resource}"
        );
    }
    assert!(
        !stripped.contains("finalizers"),
        "the operator patches finalizers on the objects themselves: no */finalizers rule"
    );
    assert!(
        !regex(r#"apiGroups:\s*\[""\]\s*\n\s*resources:\s*\["events"\]"#).is_match(&stripped),
        "the operator writes events.k8s.io Events only: no core-group events rule"
    );
    assert!(
        !stripped.contains("\"delete\"") && !stripped.contains("\"escalate\""),
        "no delete/escalate"
    );
}

#[test]
fn deployment_is_hardened_and_probes_the_metrics_port() {
    let deployment = template("deployment.yaml");
    for needle in [
        "path: /healthz",
        "path: /readyz",
        "port: metrics",
        "name: POD_NAME",
        "fieldPath: metadata.name",
        "name: POD_NAMESPACE",
        "fieldPath: metadata.namespace",
        "name: RUST_LOG",
        "toYaml .Values.securityContext",
        "toYaml .Values.podSecurityContext",
        "serviceAccountName:",
    ] {
        assert!(
            deployment.contains(needle),
            "deployment.yaml lacks {needle:?}"
        );
    }
    let values = values();
    let get =
        |path: &str| lookup(&values, path).unwrap_or_else(|| panic!("values.yaml has no {path}"));
    for (path, expected) in [
        ("securityContext.runAsNonRoot", Yaml::Bool(true)),
        ("securityContext.runAsUser", Yaml::from(65532)),
        ("securityContext.readOnlyRootFilesystem", Yaml::Bool(true)),
        (
            "securityContext.allowPrivilegeEscalation",
            Yaml::Bool(false),
        ),
        (
            "securityContext.seccompProfile.type",
            Yaml::from("RuntimeDefault"),
        ),
        ("podSecurityContext.runAsNonRoot", Yaml::Bool(true)),
        ("podSecurityContext.runAsUser", Yaml::from(65532)),
        (
            "podSecurityContext.seccompProfile.type",
            Yaml::from("RuntimeDefault"),
        ),
        ("replicaCount", Yaml::from(2)),
    ] {
        assert_eq!(get(path), &expected, "values.yaml {path}");
    }
    let drop = get("securityContext.capabilities.drop");
    assert_eq!(
        drop.as_sequence().map(Vec::as_slice),
        Some(&[Yaml::from("ALL")][..]),
        "securityContext.capabilities.drop is [ALL]"
    );
}

#[test]
fn deployment_passes_only_flags_gallring_operator_accepts() {
    let deployment = template("deployment.yaml");
    let flags: BTreeSet<&str> = regex(r"(?m)^\s*- (--[a-z][a-z0-9-]*)")
        .captures_iter(&deployment)
        .filter_map(|c| c.get(1).map(|m| m.as_str()))
        .collect();
    for expected in [
        "--metrics-addr",
        "--lease-name",
        "--lease-namespace",
        "--lease-duration-seconds",
        "--renew-deadline-seconds",
        "--retry-period-seconds",
        "--namespace",
        "--secret-namespaces",
        "--secrets-cluster-wide",
        "--allow-ambient-credentials",
        "--json-logs",
        "--index-dir",
    ] {
        assert!(
            flags.contains(expected),
            "deployment.yaml passes {expected}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_gallring"))
        .args(["operator", "--help"])
        .output()
        .expect("gallring runs");
    assert!(out.status.success(), "gallring operator --help");
    let help = String::from_utf8_lossy(&out.stdout);
    let accepted: BTreeSet<&str> = regex(r"--[a-z][a-z0-9-]*")
        .find_iter(&help)
        .map(|m| m.as_str())
        .collect();
    let unknown: Vec<&&str> = flags.difference(&accepted).collect();
    assert!(
        unknown.is_empty(),
        "deployment.yaml passes flags `gallring operator` does not accept: {unknown:?}\n{help}"
    );
    assert!(
        deployment.contains("            - operator\n"),
        "the container runs the `operator` subcommand"
    );
}

// ---------------------------------------------------------------------------------------------
// Rendered with `$HELM template`.

/// The helm v3 binary from `$HELM`. Unset is a failure with a hint, never a silent skip.
fn helm() -> PathBuf {
    match std::env::var_os("HELM") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => panic!(
            "HELM is not set: these tests render the chart with a helm v3 binary. From the \
             project root run `eval \"$(../shared/k8s/up.sh)\"` (it exports HELM), or \
             `export HELM=/path/to/helm`."
        ),
    }
}

/// `helm template RELEASE charts/gallring -n NAMESPACE ARGS…`: the rendered documents, or
/// helm's error output when it fails (a `fail` in a template, a schema violation).
fn render(release: &str, namespace: &str, args: &[&str]) -> Result<Vec<Yaml>, String> {
    let helm = helm();
    let out = Command::new(&helm)
        .arg("template")
        .arg(release)
        .arg(chart())
        .args(["-n", namespace])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run $HELM ({}): {e}", helm.display()));
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).expect("helm prints UTF-8");
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let doc = Yaml::deserialize(doc)
            .unwrap_or_else(|e| panic!("helm template printed invalid YAML: {e}\n{text}"));
        if !doc.is_null() {
            docs.push(doc);
        }
    }
    assert!(!docs.is_empty(), "helm template rendered nothing");
    Ok(docs)
}

fn rendered(release: &str, namespace: &str, args: &[&str]) -> Vec<Yaml> {
    render(release, namespace, args)
        .unwrap_or_else(|e| panic!("helm template {release} -n {namespace} {args:?} failed:\n{e}"))
}

fn render_error(release: &str, namespace: &str, args: &[&str]) -> String {
    match render(release, namespace, args) {
        Ok(_) => panic!("helm template {release} -n {namespace} {args:?} should fail"),
        Err(e) => e,
    }
}

fn str_at<'a>(doc: &'a Yaml, path: &str) -> Option<&'a str> {
    lookup(doc, path).and_then(Yaml::as_str)
}

fn kind(doc: &Yaml) -> &str {
    str_at(doc, "kind").unwrap_or_default()
}

fn name(doc: &Yaml) -> &str {
    str_at(doc, "metadata.name").unwrap_or_default()
}

/// The namespace of a rendered object ("" for cluster-scoped ones).
fn namespace(doc: &Yaml) -> &str {
    str_at(doc, "metadata.namespace").unwrap_or_default()
}

fn of_kind<'a>(docs: &'a [Yaml], k: &str) -> Vec<&'a Yaml> {
    docs.iter().filter(|d| kind(d) == k).collect()
}

fn strings(node: Option<&Yaml>) -> Vec<String> {
    node.and_then(Yaml::as_sequence)
        .map(|s| {
            s.iter()
                .map(|v| v.as_str().expect("a string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A Role's or ClusterRole's rules flattened to "group/resource" → verbs (resourceNames, if
/// any, appended to the resource as `resource[name]`).
fn grants(role: &Yaml) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rule in role
        .get("rules")
        .and_then(Yaml::as_sequence)
        .expect("a role with rules")
    {
        let names = strings(rule.get("resourceNames"));
        for group in strings(rule.get("apiGroups")) {
            for resource in strings(rule.get("resources")) {
                let keys: Vec<String> = if names.is_empty() {
                    vec![format!("{group}/{resource}")]
                } else {
                    names
                        .iter()
                        .map(|n| format!("{group}/{resource}[{n}]"))
                        .collect()
                };
                for key in keys {
                    out.entry(key)
                        .or_default()
                        .extend(strings(rule.get("verbs")));
                }
            }
        }
    }
    out
}

fn expect_grants(pairs: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
    pairs
        .iter()
        .map(|(k, verbs)| (k.to_string(), verbs.iter().map(|v| v.to_string()).collect()))
        .collect()
}

/// What the operator's main Role or ClusterRole grants: exactly the calls it makes.
fn operator_grants() -> BTreeMap<String, BTreeSet<String>> {
    expect_grants(&[
        ("gallring.io/retentionpolicies", &["get", "list", "watch"]),
        (
            "gallring.io/recordingbuckets",
            &["get", "list", "watch", "patch"],
        ),
        ("gallring.io/legalholds", &["get", "list", "watch", "patch"]),
        (
            "gallring.io/subjectrequests",
            &["get", "list", "watch", "patch"],
        ),
        ("gallring.io/retentionpolicies/status", &["patch"]),
        ("gallring.io/recordingbuckets/status", &["patch"]),
        ("gallring.io/legalholds/status", &["patch"]),
        ("gallring.io/subjectrequests/status", &["patch"]),
        ("events.k8s.io/events", &["create", "patch"]),
    ])
}

fn lease_grants(lease: &str) -> BTreeMap<String, BTreeSet<String>> {
    let named = format!("coordination.k8s.io/leases[{lease}]");
    expect_grants(&[
        ("coordination.k8s.io/leases", &["create"]),
        (named.as_str(), &["get", "update"]),
    ])
}

fn secret_grants() -> BTreeMap<String, BTreeSet<String>> {
    expect_grants(&[("/secrets", &["get", "list", "watch"])])
}

/// The role (by kind, namespace, name) a binding refers to, after checking that the binding
/// binds exactly the operator's ServiceAccount.
fn bound_role<'a>(docs: &'a [Yaml], binding: &Yaml, sa: (&str, &str)) -> &'a Yaml {
    let subjects = binding
        .get("subjects")
        .and_then(Yaml::as_sequence)
        .expect("a binding with subjects");
    assert_eq!(subjects.len(), 1, "{}: one subject", name(binding));
    assert_eq!(
        (
            str_at(&subjects[0], "kind"),
            str_at(&subjects[0], "namespace"),
            str_at(&subjects[0], "name")
        ),
        (Some("ServiceAccount"), Some(sa.0), Some(sa.1)),
        "{} binds the operator's ServiceAccount",
        name(binding)
    );
    let role_kind = str_at(binding, "roleRef.kind").expect("roleRef.kind");
    let role_name = str_at(binding, "roleRef.name").expect("roleRef.name");
    assert_eq!(
        kind(binding),
        if role_kind == "Role" {
            "RoleBinding"
        } else {
            "ClusterRoleBinding"
        },
        "{}: a RoleBinding binds a Role, a ClusterRoleBinding a ClusterRole",
        name(binding)
    );
    docs.iter()
        .find(|d| {
            kind(d) == role_kind && name(d) == role_name && namespace(d) == namespace(binding)
        })
        .unwrap_or_else(|| {
            panic!(
                "{} {}/{} refers to {role_kind} {role_name}, which is not rendered",
                kind(binding),
                namespace(binding),
                name(binding)
            )
        })
}

/// Everything the rendered chart lets the ServiceAccount do, as (scope, group/resource) →
/// verbs, where scope is a namespace or "*" for a ClusterRoleBinding.
fn effective_grants(
    docs: &[Yaml],
    sa: (&str, &str),
) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for binding in docs
        .iter()
        .filter(|d| matches!(kind(d), "RoleBinding" | "ClusterRoleBinding"))
    {
        let role = bound_role(docs, binding, sa);
        let scope = if kind(binding) == "ClusterRoleBinding" {
            "*".to_string()
        } else {
            namespace(binding).to_string()
        };
        for (resource, verbs) in grants(role) {
            out.entry((scope.clone(), resource))
                .or_default()
                .extend(verbs);
        }
    }
    out
}

/// Namespaces (or "*") where the ServiceAccount may read Secrets, with the verbs.
fn secret_scopes(docs: &[Yaml], sa: (&str, &str)) -> BTreeMap<String, BTreeSet<String>> {
    effective_grants(docs, sa)
        .into_iter()
        .filter(|((_, r), _)| r == "/secrets")
        .map(|((scope, _), verbs)| (scope, verbs))
        .collect()
}

/// The `gallring operator` arguments of the rendered Deployment.
fn operator_args(docs: &[Yaml]) -> Vec<String> {
    let deployments = of_kind(docs, "Deployment");
    assert_eq!(deployments.len(), 1, "one Deployment");
    let containers = lookup(deployments[0], "spec.template.spec.containers")
        .and_then(Yaml::as_sequence)
        .expect("containers");
    let args = strings(containers[0].get("args"));
    assert_eq!(args.first().map(String::as_str), Some("operator"));
    args
}

/// The value of `--flag=value` in the arguments; `Some("")` for a bare `--flag`.
fn flag(args: &[String], flag: &str) -> Option<String> {
    args.iter().find_map(|a| {
        if a == flag {
            Some(String::new())
        } else {
            a.strip_prefix(&format!("{flag}=")).map(str::to_string)
        }
    })
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn helm_lint_strict_passes() {
    let helm = helm();
    let out = Command::new(&helm)
        .args(["lint", "--strict"])
        .arg(chart())
        .output()
        .unwrap_or_else(|e| panic!("cannot run $HELM ({}): {e}", helm.display()));
    assert!(
        out.status.success(),
        "helm lint --strict charts/gallring:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn monitoring_objects_render_only_where_their_api_exists() {
    // Defaults: neither is enabled, nothing from monitoring.coreos.com.
    let docs = rendered("gallring", "gallring", &[]);
    assert!(
        docs.iter().all(|d| !str_at(d, "apiVersion")
            .unwrap_or_default()
            .starts_with("monitoring.")),
        "no monitoring.coreos.com objects by default"
    );

    // Enabled on a cluster without the prometheus-operator CRDs: a failure that names the
    // CRD and both ways out, instead of the API server's `no matches for kind`.
    for (value, kind_, crd) in [
        (
            "prometheusRule.enabled",
            "PrometheusRule",
            "prometheusrules.monitoring.coreos.com",
        ),
        (
            "serviceMonitor.enabled",
            "ServiceMonitor",
            "servicemonitors.monitoring.coreos.com",
        ),
    ] {
        let error = render_error("gallring", "gallring", &["--set", &format!("{value}=true")]);
        for needle in [
            format!("{value}=true"),
            format!("monitoring.coreos.com/v1 {kind_}"),
            crd.to_string(),
            "Install the prometheus-operator CRDs".to_string(),
            format!("set {value}=false"),
            format!("--api-versions monitoring.coreos.com/v1/{kind_}"),
        ] {
            assert!(
                error.contains(&needle),
                "enabling {kind_} without its API fails with a message naming {needle:?}:\n{error}"
            );
        }
        // With the API announced (helm template --api-versions, or a cluster serving it).
        let docs = rendered(
            "gallring",
            "gallring",
            &[
                "--set",
                &format!("{value}=true"),
                "--api-versions",
                &format!("monitoring.coreos.com/v1/{kind_}"),
            ],
        );
        let objects = of_kind(&docs, kind_);
        assert_eq!(objects.len(), 1, "one {kind_} when enabled and served");
        assert_eq!(
            str_at(objects[0], "apiVersion"),
            Some("monitoring.coreos.com/v1")
        );
        assert_eq!(namespace(objects[0]), "gallring");
    }

    // Both, with both APIs: the rule carries every alert.
    let docs = rendered(
        "gallring",
        "gallring",
        &[
            "--set",
            "prometheusRule.enabled=true",
            "--set",
            "serviceMonitor.enabled=true",
            "--api-versions",
            "monitoring.coreos.com/v1/PrometheusRule",
            "--api-versions",
            "monitoring.coreos.com/v1/ServiceMonitor",
        ],
    );
    let rule = of_kind(&docs, "PrometheusRule")[0];
    let alerts: BTreeSet<&str> = lookup(rule, "spec.groups")
        .and_then(Yaml::as_sequence)
        .expect("spec.groups")
        .iter()
        .flat_map(|g| g.get("rules").and_then(Yaml::as_sequence).expect("rules"))
        .filter_map(|r| str_at(r, "alert"))
        .collect();
    assert_eq!(alerts, ALERTS.into_iter().collect(), "the rendered alerts");
    assert_eq!(of_kind(&docs, "ServiceMonitor").len(), 1);
}

/// The rendered PrometheusRule's alerts by name, each with the name of its group.
fn rendered_alerts(args: &[&str]) -> BTreeMap<String, (String, Yaml)> {
    let mut all = vec![
        "--set",
        "prometheusRule.enabled=true",
        "--api-versions",
        "monitoring.coreos.com/v1/PrometheusRule",
    ];
    all.extend_from_slice(args);
    let docs = rendered("gallring", "gallring", &all);
    let rules = of_kind(&docs, "PrometheusRule");
    assert_eq!(rules.len(), 1, "one PrometheusRule");
    let mut out = BTreeMap::new();
    for group in lookup(rules[0], "spec.groups")
        .and_then(Yaml::as_sequence)
        .expect("spec.groups")
    {
        let group_name = str_at(group, "name").expect("a group name").to_string();
        for rule in group
            .get("rules")
            .and_then(Yaml::as_sequence)
            .expect("rules")
        {
            if let Some(alert) = str_at(rule, "alert") {
                out.insert(alert.to_string(), (group_name.clone(), rule.clone()));
            }
        }
    }
    out
}

#[test]
fn subject_request_alerts_render_with_the_art_12_3_deadline() {
    let alerts = rendered_alerts(&["--set", "prometheusRule.alertLabels.team=privacy"]);
    let past_due = &alerts
        .get("GallringSubjectRequestPastDue")
        .expect("GallringSubjectRequestPastDue renders")
        .1;
    let due_soon = &alerts
        .get("GallringSubjectRequestDueSoon")
        .expect("GallringSubjectRequestDueSoon renders")
        .1;
    for alert in [
        "GallringSubjectRequestPastDue",
        "GallringSubjectRequestDueSoon",
    ] {
        assert_eq!(
            alerts[alert].0, "gallring.subjectrequests",
            "{alert} is in its own group"
        );
    }

    // Past due: any open request past receivedAt + one month, per (namespace, bucket, type),
    // whichever replica reports it; critical, like the retention breach.
    assert_eq!(
        str_at(past_due, "expr"),
        Some("max by (namespace, bucket, type) (gallring_subject_requests_past_due) > 0")
    );
    assert_eq!(str_at(past_due, "for"), Some("15m"));
    assert_eq!(str_at(past_due, "labels.severity"), Some("critical"));
    assert_eq!(
        str_at(past_due, "labels.team"),
        Some("privacy"),
        "alertLabels apply"
    );

    // Due soon: the oldest open request is older than 25 days (25 * 86400 = 2160000 s) and
    // none is past due yet (the critical alert takes over then); a warning.
    assert_eq!(
        str_at(due_soon, "expr"),
        Some(
            "(max by (namespace, bucket, type) (gallring_subject_request_oldest_open_age_seconds) \
             > 2160000) unless (max by (namespace, bucket, type) \
             (gallring_subject_requests_past_due) > 0)"
        )
    );
    assert_eq!(str_at(due_soon, "for"), Some("1h"));
    assert_eq!(str_at(due_soon, "labels.severity"), Some("warning"));
    assert_eq!(str_at(due_soon, "labels.team"), Some("privacy"));

    for (alert, rule) in [
        ("GallringSubjectRequestPastDue", past_due),
        ("GallringSubjectRequestDueSoon", due_soon),
    ] {
        for key in ["summary", "description", "runbook"] {
            let text = str_at(rule, &format!("annotations.{key}"))
                .unwrap_or_else(|| panic!("{alert} has annotations.{key}"));
            for needle in [
                "{{ $labels.namespace }}",
                "{{ $labels.bucket }}",
                "{{ $labels.type }}",
            ] {
                assert!(
                    text.contains(needle),
                    "{alert} {key} names {needle}: {text}"
                );
            }
        }
        let description = str_at(rule, "annotations.description").expect("a description");
        for needle in [
            "Art. 12(3)",
            "one month",
            "kubectl get subjectrequests -n {{ $labels.namespace }}",
        ] {
            assert!(
                description.contains(needle),
                "{alert}'s description says {needle:?}: {description}"
            );
        }
        assert!(
            str_at(rule, "annotations.runbook")
                .is_some_and(|r| r.contains("kubectl get subjectrequests -n")),
            "{alert}'s runbook lists the requests"
        );
    }
    assert!(
        str_at(due_soon, "annotations.description")
            .is_some_and(|d| d.contains("{{ $value | humanizeDuration }}")),
        "the due-soon description gives the oldest request's age"
    );

    // The thresholds are values; the warning must come before the shortest month ends.
    let alerts = rendered_alerts(&[
        "--set",
        "prometheusRule.thresholds.subjectRequestDueSoonSeconds=1728000",
        "--set",
        "prometheusRule.thresholds.subjectRequestDueSoonFor=30m",
        "--set",
        "prometheusRule.thresholds.subjectRequestPastDueFor=5m",
    ]);
    let due_soon = &alerts["GallringSubjectRequestDueSoon"].1;
    assert!(
        str_at(due_soon, "expr").is_some_and(
            |e| e.contains("(gallring_subject_request_oldest_open_age_seconds) > 1728000)")
        ),
        "subjectRequestDueSoonSeconds=1728000 (20 days): {:?}",
        str_at(due_soon, "expr")
    );
    assert_eq!(str_at(due_soon, "for"), Some("30m"));
    assert_eq!(
        str_at(&alerts["GallringSubjectRequestPastDue"].1, "for"),
        Some("5m")
    );
    for bad in [
        "prometheusRule.thresholds.subjectRequestDueSoonSeconds=2505600",
        "prometheusRule.thresholds.subjectRequestDueSoonSeconds=3600",
        "prometheusRule.thresholds.subjectRequestPastDueFor=a month",
    ] {
        let error = render_error(
            "gallring",
            "gallring",
            &[
                "--set",
                "prometheusRule.enabled=true",
                "--api-versions",
                "monitoring.coreos.com/v1/PrometheusRule",
                "--set",
                bad,
            ],
        );
        assert!(
            error.contains("schema") && error.contains("subjectRequest"),
            "--set {bad} is refused by the schema:\n{error}"
        );
    }
}

#[test]
fn cluster_wide_rbac_is_exactly_the_operators_calls_and_no_secrets_by_default() {
    let docs = rendered("gallring", "gallring", &[]);
    let sa = ("gallring", "gallring");
    let cluster_roles = of_kind(&docs, "ClusterRole");
    assert_eq!(
        cluster_roles.len(),
        1,
        "one ClusterRole without secrets.clusterWide"
    );
    assert_eq!(
        grants(cluster_roles[0]),
        operator_grants(),
        "the ClusterRole's rules"
    );
    let roles = of_kind(&docs, "Role");
    assert_eq!(roles.len(), 1, "only the leader-election Role");
    assert_eq!(
        namespace(roles[0]),
        "gallring",
        "the Lease Role is in the release namespace"
    );
    assert_eq!(
        grants(roles[0]),
        lease_grants("gallring-leader"),
        "the Lease Role's rules"
    );

    // Cluster-wide with secrets.namespaces empty: no Secret anywhere.
    assert!(
        secret_scopes(&docs, sa).is_empty(),
        "cluster-wide mode reads no Secret unless secrets.namespaces or secrets.clusterWide"
    );
    let effective = effective_grants(&docs, sa);
    let mut expected: BTreeMap<(String, String), BTreeSet<String>> = operator_grants()
        .into_iter()
        .map(|(r, v)| (("*".to_string(), r), v))
        .collect();
    expected.extend(
        lease_grants("gallring-leader")
            .into_iter()
            .map(|(r, v)| (("gallring".to_string(), r), v)),
    );
    assert_eq!(effective, expected, "everything the ServiceAccount may do");

    let args = operator_args(&docs);
    for absent in [
        "--namespace",
        "--secret-namespaces",
        "--secrets-cluster-wide",
        "--allow-ambient-credentials",
    ] {
        assert_eq!(
            flag(&args, absent),
            None,
            "{absent} is not passed by default: {args:?}"
        );
    }
}

#[test]
fn secrets_are_read_through_one_role_per_allowed_namespace() {
    let docs = rendered(
        "gallring",
        "gallring",
        &["--set", "secrets.namespaces={team-a,team-b}"],
    );
    let sa = ("gallring", "gallring");
    let scopes = secret_scopes(&docs, sa);
    assert_eq!(
        scopes,
        [
            ("team-a".to_string(), set(&["get", "list", "watch"])),
            ("team-b".to_string(), set(&["get", "list", "watch"])),
        ]
        .into(),
        "Secrets get/list/watch in exactly the listed namespaces"
    );
    for ns in ["team-a", "team-b"] {
        let roles: Vec<&Yaml> = of_kind(&docs, "Role")
            .into_iter()
            .filter(|r| namespace(r) == ns)
            .collect();
        assert_eq!(roles.len(), 1, "one Role in {ns}");
        assert_eq!(grants(roles[0]), secret_grants(), "the Secret Role in {ns}");
    }
    assert_eq!(
        of_kind(&docs, "ClusterRole").len(),
        1,
        "no Secret ClusterRole"
    );
    let args = operator_args(&docs);
    assert_eq!(
        flag(&args, "--secret-namespaces").as_deref(),
        Some("team-a,team-b")
    );
    assert_eq!(flag(&args, "--secrets-cluster-wide"), None);

    // The schema rejects a namespace listed twice.
    let error = render_error(
        "gallring",
        "gallring",
        &["--set", "secrets.namespaces={team-a,team-a}"],
    );
    assert!(
        error.contains("schema"),
        "duplicate namespaces are rejected:\n{error}"
    );
}

#[test]
fn secrets_cluster_wide_is_an_explicit_cluster_role() {
    let docs = rendered(
        "gallring",
        "gallring",
        &["--set", "secrets.clusterWide=true"],
    );
    let sa = ("gallring", "gallring");
    assert_eq!(
        secret_scopes(&docs, sa),
        [("*".to_string(), set(&["get", "list", "watch"]))].into(),
        "secrets.clusterWide: Secrets get/list/watch in every namespace, nothing more"
    );
    let secret_roles: Vec<&Yaml> = of_kind(&docs, "ClusterRole")
        .into_iter()
        .filter(|r| grants(r).contains_key("/secrets"))
        .collect();
    assert_eq!(secret_roles.len(), 1, "one ClusterRole for Secrets");
    assert_eq!(
        grants(secret_roles[0]),
        secret_grants(),
        "it grants only Secrets"
    );
    let args = operator_args(&docs);
    assert_eq!(flag(&args, "--secrets-cluster-wide").as_deref(), Some(""));
    assert_eq!(flag(&args, "--secret-namespaces"), None);

    // Contradictions fail with a message naming the values.
    let error = render_error(
        "gallring",
        "gallring",
        &[
            "--set",
            "secrets.clusterWide=true",
            "--set",
            "watchNamespace=team-a",
        ],
    );
    assert!(
        error.contains("secrets.clusterWide=true") && error.contains("watchNamespace=team-a"),
        "clusterWide in namespace mode fails:\n{error}"
    );
    let error = render_error(
        "gallring",
        "gallring",
        &[
            "--set",
            "secrets.clusterWide=true",
            "--set",
            "secrets.namespaces={team-a}",
        ],
    );
    assert!(
        error.contains("secrets.clusterWide=true and secrets.namespaces"),
        "clusterWide with a namespace list fails:\n{error}"
    );
}

#[test]
fn namespace_mode_has_no_cluster_role_and_reads_secrets_in_its_namespace_only() {
    // As the end-to-end tests install it: release namespace = watched namespace.
    // And a release watching another namespace than its own.
    for (release, release_ns, watch, sa_name) in [
        (
            "g-e2e1",
            "gallring-e2e-1",
            "gallring-e2e-1",
            "g-e2e1-gallring",
        ),
        ("gallring", "gallring-system", "team-a", "gallring"),
    ] {
        let docs = rendered(
            release,
            release_ns,
            &["--set", &format!("watchNamespace={watch}")],
        );
        let sa = (release_ns, sa_name);
        assert_eq!(
            of_kind(&docs, "ServiceAccount")
                .iter()
                .map(|d| name(d))
                .collect::<Vec<_>>(),
            vec![sa.1],
            "the ServiceAccount"
        );
        for cluster_kind in ["ClusterRole", "ClusterRoleBinding"] {
            assert!(
                of_kind(&docs, cluster_kind).is_empty(),
                "namespace mode renders no {cluster_kind}"
            );
        }
        let effective = effective_grants(&docs, sa);
        let mut expected: BTreeMap<(String, String), BTreeSet<String>> = operator_grants()
            .into_iter()
            .map(|(r, v)| ((watch.to_string(), r), v))
            .collect();
        expected.extend(
            lease_grants("gallring-leader")
                .into_iter()
                .map(|(r, v)| ((release_ns.to_string(), r), v)),
        );
        expected.insert(
            (watch.to_string(), "/secrets".to_string()),
            set(&["get", "list", "watch"]),
        );
        assert_eq!(
            effective, expected,
            "namespace mode: the operator's Role and the Secret Role in {watch}, the Lease Role \
             in {release_ns}, nothing else"
        );
        let args = operator_args(&docs);
        assert_eq!(flag(&args, "--namespace"), Some(watch.to_string()));
        assert_eq!(flag(&args, "--secret-namespaces"), Some(watch.to_string()));
        assert_eq!(
            flag(&args, "--lease-namespace"),
            Some(release_ns.to_string())
        );
        assert_eq!(flag(&args, "--secrets-cluster-wide"), None);
    }

    // Listing the watched namespace is the same; listing another is refused.
    let docs = rendered(
        "g-a",
        "team-a",
        &[
            "--set",
            "watchNamespace=team-a",
            "--set",
            "secrets.namespaces={team-a}",
        ],
    );
    assert_eq!(
        secret_scopes(&docs, ("team-a", "g-a-gallring"))
            .keys()
            .collect::<Vec<_>>(),
        vec!["team-a"]
    );
    let error = render_error(
        "g-a",
        "team-a",
        &[
            "--set",
            "watchNamespace=team-a",
            "--set",
            "secrets.namespaces={team-b}",
        ],
    );
    assert!(
        error.contains("secrets.namespaces lists team-b")
            && error.contains("watchNamespace=team-a"),
        "namespace mode refuses Secrets outside the watched namespace:\n{error}"
    );
}

#[test]
fn deployment_bounds_glibc_malloc_arenas() {
    let docs = rendered("gallring", "gallring", &[]);
    let deployments = of_kind(&docs, "Deployment");
    let env = lookup(deployments[0], "spec.template.spec.containers")
        .and_then(Yaml::as_sequence)
        .and_then(|c| c[0].get("env"))
        .and_then(Yaml::as_sequence)
        .expect("the container's env");
    let arenas = env
        .iter()
        .find(|v| v.get("name").and_then(Yaml::as_str) == Some("MALLOC_ARENA_MAX"))
        .and_then(|v| v.get("value"))
        .and_then(Yaml::as_str);
    assert_eq!(arenas, Some("2"), "MALLOC_ARENA_MAX in {env:?}");
}

#[test]
fn deployment_passes_the_flags_of_the_values() {
    let args = operator_args(&rendered("gallring", "gallring", &[]));
    for (f, value) in [
        ("--lease-name", "gallring-leader"),
        ("--lease-namespace", "gallring"),
        ("--lease-duration-seconds", "15"),
        ("--renew-deadline-seconds", "10"),
        ("--retry-period-seconds", "2"),
        ("--metrics-addr", "0.0.0.0:9090"),
        ("--json-logs", ""),
        ("--index-dir", "/var/lib/gallring/index"),
    ] {
        assert_eq!(flag(&args, f).as_deref(), Some(value), "{f} in {args:?}");
    }
    assert_eq!(flag(&args, "--allow-ambient-credentials"), None);
    assert_eq!(
        flag(&args, "--journal-signing-key"),
        None,
        "unsigned by default"
    );

    let args = operator_args(&rendered(
        "gallring",
        "gallring",
        &[
            "--set",
            "allowAmbientCredentials=true",
            "--set",
            "leaderElection.leaseDurationSeconds=60",
            "--set",
            "leaderElection.renewDeadlineSeconds=40",
            "--set",
            "leaderElection.retryPeriodSeconds=5",
            "--set",
            "watchNamespace=team-a",
            "--set",
            "journal.signingKeySecret=journal-key",
        ],
    ));
    for (f, value) in [
        ("--allow-ambient-credentials", ""),
        ("--lease-duration-seconds", "60"),
        ("--renew-deadline-seconds", "40"),
        ("--retry-period-seconds", "5"),
        ("--namespace", "team-a"),
        ("--secret-namespaces", "team-a"),
        ("--journal-signing-key", "/etc/gallring/journal/signing-key"),
    ] {
        assert_eq!(flag(&args, f).as_deref(), Some(value), "{f} in {args:?}");
    }

    // The renew deadline must end before the Lease expires.
    for (renew, lease) in [("15", "15"), ("20", "15")] {
        let error = render_error(
            "gallring",
            "gallring",
            &[
                "--set",
                &format!("leaderElection.renewDeadlineSeconds={renew}"),
                "--set",
                &format!("leaderElection.leaseDurationSeconds={lease}"),
            ],
        );
        assert!(
            error.contains(&format!(
                "leaderElection.renewDeadlineSeconds ({renew}) must be less than \
                 leaderElection.leaseDurationSeconds ({lease})"
            )),
            "renewDeadlineSeconds >= leaseDurationSeconds fails:\n{error}"
        );
    }
    let error = render_error(
        "gallring",
        "gallring",
        &["--set", "leaderElection.retryPeriodSeconds=10"],
    );
    assert!(
        error.contains("leaderElection.retryPeriodSeconds (10) must be less than"),
        "retryPeriodSeconds >= renewDeadlineSeconds fails:\n{error}"
    );
    let error = render_error(
        "gallring",
        "gallring",
        &["--set", "leaderElection.renewDeadlineSeconds=0"],
    );
    assert!(
        error.contains("schema"),
        "the schema's minimums apply:\n{error}"
    );
}

#[test]
fn rbac_never_grants_more_than_the_operator_uses_whatever_the_values() {
    // Every mode at once (where allowed): the union of all grants stays within the calls the
    // operator makes, with no wildcard.
    let allowed: BTreeMap<String, BTreeSet<String>> = operator_grants()
        .into_iter()
        .chain(lease_grants("gallring-leader"))
        .chain(secret_grants())
        .collect();
    for args in [
        vec![],
        vec![
            "--set",
            "secrets.clusterWide=true",
            "--set",
            "allowAmbientCredentials=true",
        ],
        vec!["--set", "secrets.namespaces={a,b,c}"],
        vec!["--set", "watchNamespace=a"],
    ] {
        let docs = rendered("gallring", "gallring", &args);
        for role in docs
            .iter()
            .filter(|d| matches!(kind(d), "Role" | "ClusterRole"))
        {
            for (resource, verbs) in grants(role) {
                assert!(
                    !resource.contains('*') && !verbs.contains("*"),
                    "{args:?}: {} {} grants a wildcard",
                    kind(role),
                    name(role)
                );
                let ok = allowed.get(&resource).unwrap_or_else(|| {
                    panic!("{args:?}: {} {} grants {resource}", kind(role), name(role))
                });
                assert!(
                    verbs.is_subset(ok),
                    "{args:?}: {} {} grants {resource} {verbs:?}; the operator uses {ok:?}",
                    kind(role),
                    name(role)
                );
            }
        }
    }
    // rbac.create=false: no RBAC objects at all, the flags unchanged.
    let docs = rendered(
        "gallring",
        "gallring",
        &[
            "--set",
            "rbac.create=false",
            "--set",
            "secrets.namespaces={a}",
        ],
    );
    assert!(
        docs.iter()
            .all(|d| str_at(d, "apiVersion") != Some("rbac.authorization.k8s.io/v1")),
        "rbac.create=false renders no RBAC"
    );
    assert_eq!(
        flag(&operator_args(&docs), "--secret-namespaces").as_deref(),
        Some("a")
    );
}

#[test]
fn the_operator_may_track_subject_requests_like_legal_holds_in_both_modes() {
    // Cluster-wide (every namespace) and namespace mode (the watched namespace only): the
    // SubjectRequest controller reads and watches the requests, sets and removes its finalizer
    // on the object (patch, as for LegalHolds: no */finalizers rule) and writes their status
    // by server-side apply. People file requests: the operator never creates, updates or
    // deletes one.
    for (release_ns, args, scope, sa) in [
        ("gallring", vec![], "*", ("gallring", "gallring")),
        (
            "gallring-system",
            vec!["--set", "watchNamespace=team-a"],
            "team-a",
            ("gallring-system", "gallring"),
        ),
    ] {
        let docs = rendered("gallring", release_ns, &args);
        let effective = effective_grants(&docs, sa);
        let on = |resource: &str| {
            effective
                .get(&(scope.to_string(), format!("gallring.io/{resource}")))
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            on("subjectrequests"),
            set(&["get", "list", "watch", "patch"]),
            "{args:?}: subjectrequests in {scope}"
        );
        assert_eq!(
            on("subjectrequests/status"),
            set(&["patch"]),
            "{args:?}: subjectrequests/status in {scope}"
        );
        assert_eq!(
            on("subjectrequests"),
            on("legalholds"),
            "{args:?}: the same verbs as on LegalHolds"
        );
        assert_eq!(on("subjectrequests/status"), on("legalholds/status"));
        for ((s, resource), verbs) in &effective {
            if resource.contains("subjectrequests") {
                assert_eq!(
                    s, scope,
                    "{args:?}: {resource} granted in {s}, not only {scope}"
                );
                for verb in ["create", "update", "delete", "deletecollection"] {
                    assert!(
                        !verbs.contains(verb),
                        "{args:?}: the operator may {verb} {resource}"
                    );
                }
            }
        }
        assert!(
            !effective.keys().any(|(_, r)| r.ends_with("/finalizers")),
            "{args:?}: finalizers are patched on the objects, no */finalizers grant"
        );
    }
}

#[test]
fn releases_in_different_namespaces_never_render_the_same_object() {
    // The end-to-end layout (one namespace-mode release per test namespace), next to two
    // cluster-wide releases that share a release name in different namespaces, all reading
    // Secrets in one shared namespace.
    let releases: [(&str, &str, Vec<&str>); 4] = [
        (
            "g-one",
            "gallring-e2e-one",
            vec!["--set", "watchNamespace=gallring-e2e-one"],
        ),
        (
            "g-two",
            "gallring-e2e-two",
            vec!["--set", "watchNamespace=gallring-e2e-two"],
        ),
        (
            "gallring",
            "ops-a",
            vec!["--set", "secrets.namespaces={shared}"],
        ),
        (
            "gallring",
            "ops-b",
            vec!["--set", "secrets.namespaces={shared}"],
        ),
    ];
    let mut owner: BTreeMap<(String, String, String), String> = BTreeMap::new();
    for (release, ns, args) in &releases {
        let docs = rendered(release, ns, args);
        for doc in &docs {
            let key = (
                kind(doc).to_string(),
                namespace(doc).to_string(),
                name(doc).to_string(),
            );
            if namespace(doc).is_empty() {
                assert!(
                    name(doc).contains(release) && name(doc).contains(ns),
                    "cluster-scoped {} {} names its release {release} and namespace {ns}",
                    kind(doc),
                    name(doc)
                );
            }
            if let Some(other) = owner.insert(key.clone(), format!("{ns}/{release}")) {
                panic!("{key:?} is rendered by both {other} and {ns}/{release}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The Grafana dashboard (dashboards/gallring.json in a ConfigMap for Grafana's sidecar).

fn dashboard_file() -> Json {
    let path = chart().join("dashboards/gallring.json");
    serde_json::from_str(&read(&path))
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

/// Every metric series name the operator exports, with the label names its series carry, as
/// scraped from a real `Metrics` registry after a real pass: the Tryg notice's manifests and
/// listing in the in-memory store, reconciled half a year after the listing (so recordings are
/// deleted), then a failed pass, a leader, holds past review and S3 requests recorded. A metric
/// that is registered but never set has no series and is not exported; it is not in this map.
fn exported_metrics() -> BTreeMap<String, BTreeSet<String>> {
    use gallring::metrics::Metrics;
    use gallring::reconcile::{PassConfig, PassError, reconcile};
    use gallring::store::memory::MemoryStore;
    use gallring::store::{Operation, RequestObserver};

    let dir = repo().join("policies/002-tryg");
    let bucket = gallring::input::Manifests::load(&dir)
        .and_then(|m| m.compile())
        .unwrap_or_else(|e| panic!("policies/002-tryg: {e}"))
        .remove(0);
    let objects = gallring::input::load_objects(&dir.join("objects.jsonl"))
        .unwrap_or_else(|e| panic!("policies/002-tryg/objects.jsonl: {e}"));
    let now = chrono::DateTime::parse_from_rfc3339("2027-06-01T00:00:00Z")
        .expect("a time")
        .with_timezone(&chrono::Utc);
    let store = MemoryStore::new(&bucket.spec.s3.bucket);
    for o in &objects {
        store.set_clock(o.last_modified);
        let tags: Vec<(&str, &str)> = o
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let metadata: Vec<(&str, &str)> = o
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        store.upload(&o.key, b"recording", &tags, &metadata);
    }
    store.set_clock(now);
    store.set_server_time(Some(now));
    // A pass is a deep future: run it on a worker thread with the binary's stack size.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(8 * 1024 * 1024)
        .enable_all()
        .build()
        .expect("a runtime");
    let report = runtime
        .block_on(runtime.spawn(async move {
            reconcile(
                &store,
                &bucket.policy,
                &bucket.rules,
                bucket.holds.clone(),
                now,
                PassConfig::default(),
                &|_| {},
            )
            .await
        }))
        .expect("the pass task")
        .expect("the pass runs");
    assert!(
        report.deleted > 0,
        "the pass deletes recordings (so gallring_deletions_total has series): {:?}",
        report.summary
    );
    let metrics = Metrics::new().expect("a registry");
    metrics.touch_bucket("recordings", "tryg-opkald");
    metrics.record_pass("recordings", "tryg-opkald", &report, 1.5);
    metrics.record_failure("recordings", "other", &PassError::Fenced);
    metrics.set_holds_past_review("recordings", "tryg-opkald", 1);
    // An erasure received two months ago and still open: past due.
    let received = now - chrono::TimeDelta::days(60);
    let due = received + chrono::TimeDelta::days(30);
    metrics.set_subject_requests(
        "recordings",
        "tryg-opkald",
        &[(
            gallring::retention::RequestType::Erasure,
            true,
            received,
            due,
        )],
        now,
    );
    metrics.set_retry_backoff("recordings", "other", 10.0);
    metrics.set_leader(true);
    metrics.observe(Operation::ListObjects, "ok", 0.02);

    let series = regex(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ");
    let label = regex(r#"([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*""#);
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in metrics.render().lines() {
        if line.starts_with('#') {
            continue;
        }
        let cap = series
            .captures(line)
            .unwrap_or_else(|| panic!("an exposition line: {line}"));
        let labels = out.entry(cap[1].to_string()).or_default();
        if let Some(l) = cap.get(2) {
            labels.extend(label.captures_iter(l.as_str()).map(|c| c[1].to_string()));
        }
    }
    out
}

/// What one PromQL expression selects: metric names with the label names their matchers use,
/// and the labels of its `by`/`without`/`on`/`ignoring`/`group_*` clauses.
#[derive(Debug, Default)]
struct Selection {
    metrics: Vec<(String, BTreeSet<String>)>,
    grouping: BTreeSet<String>,
}

/// A small PromQL reader, enough for dashboards: strings, `[ranges]`, `{matchers}`,
/// numbers, operators and calls are told apart from metric names. Grafana's `$variables` may
/// appear in strings and ranges only.
fn promql_selection(expr: &str) -> Result<Selection, String> {
    const KEYWORDS: [&str; 7] = ["bool", "and", "or", "unless", "offset", "atan2", "inf"];
    const AGGREGATIONS: [&str; 12] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut sel = Selection::default();
    let mut i = 0;
    let skip_ws = |mut j: usize| {
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        j
    };
    // Reads `{a="x", b=~"y"}` from the `{` at j: (label names, index after `}`).
    let matchers = |mut j: usize| -> Result<(BTreeSet<String>, usize), String> {
        let mut names = BTreeSet::new();
        j += 1;
        loop {
            j = skip_ws(j);
            match chars.get(j) {
                Some('}') => return Ok((names, j + 1)),
                Some(',') => j += 1,
                Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
                    let start = j;
                    while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                        j += 1;
                    }
                    names.insert(chars[start..j].iter().collect());
                    j = skip_ws(j);
                    while j < chars.len() && "=!~".contains(chars[j]) {
                        j += 1;
                    }
                    j = skip_ws(j);
                    if chars.get(j) != Some(&'"') {
                        return Err(format!("a matcher without a quoted value in {expr}"));
                    }
                    j += 1;
                    while j < chars.len() && chars[j] != '"' {
                        j += if chars[j] == '\\' { 2 } else { 1 };
                    }
                    j += 1;
                }
                _ => return Err(format!("cannot read the label matchers in {expr}")),
            }
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c == '{' {
            return Err(format!(
                "a selector without a metric name (or after a call) in {expr}"
            ));
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = skip_ws(i);
            if GROUPING.contains(&word.as_str()) {
                if chars.get(next) == Some(&'(') {
                    let close = (next..chars.len())
                        .find(|&j| chars[j] == ')')
                        .ok_or_else(|| format!("an unclosed label list in {expr}"))?;
                    let list: String = chars[next + 1..close].iter().collect();
                    sel.grouping.extend(
                        list.split(',')
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .map(str::to_string),
                    );
                    i = close + 1;
                }
            } else if chars.get(next) == Some(&'(')
                || AGGREGATIONS.contains(&word.as_str())
                || KEYWORDS.contains(&word.as_str())
            {
                // A call, an aggregation before its `by`, or an operator keyword.
            } else {
                let mut labels = BTreeSet::new();
                if chars.get(next) == Some(&'{') {
                    let (names, after) = matchers(next)?;
                    labels = names;
                    i = after;
                }
                sel.metrics.push((word, labels));
            }
        } else if c == '$' {
            return Err(format!(
                "a Grafana variable outside a string or range in {expr}"
            ));
        } else {
            i += 1;
        }
    }
    Ok(sel)
}

/// Problems of one query against the exported metrics: unknown metrics, matchers on labels
/// the metric does not have, grouping by labels none of its metrics has.
fn query_problems(expr: &str, exported: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    // Grafana's `label_values(selector, label)` in template variables.
    let (expr, label) = match regex(r"^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$")
        .captures(expr)
    {
        Some(c) => (c[1].to_string(), Some(c[2].to_string())),
        None => (expr.to_string(), None),
    };
    let sel = match promql_selection(&expr) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    if sel.metrics.is_empty() {
        problems.push(format!("{expr}: selects no metric"));
    }
    let mut available = BTreeSet::new();
    for (metric, labels) in &sel.metrics {
        match exported.get(metric) {
            None => problems.push(format!(
                "{expr}: {metric} is not a metric the operator exports"
            )),
            Some(has) => {
                available.extend(has.iter().cloned());
                for l in labels.difference(has) {
                    problems.push(format!(
                        "{expr}: {metric} has no label {l} (it has {has:?})"
                    ));
                }
            }
        }
    }
    for l in sel.grouping.iter().chain(label.iter()) {
        if !available.contains(l) {
            problems.push(format!(
                "{expr}: groups by {l}, which none of its metrics has"
            ));
        }
    }
    problems
}

/// Every panel of a dashboard, rows' nested panels included.
fn dashboard_panels(dashboard: &Json) -> Vec<&Json> {
    fn walk<'a>(panels: &'a Json, out: &mut Vec<&'a Json>) {
        for p in panels.as_array().into_iter().flatten() {
            out.push(p);
            if let Some(nested) = p.get("panels") {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        dashboard.get("panels").expect("the dashboard has panels"),
        &mut out,
    );
    out
}

/// Every PromQL query of a dashboard, as (where, expr): panel targets and template variables.
fn dashboard_queries(dashboard: &Json) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in dashboard_panels(dashboard) {
        let title = p.get("title").and_then(Json::as_str).unwrap_or_default();
        for t in p
            .get("targets")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let expr = t
                .get("expr")
                .and_then(Json::as_str)
                .unwrap_or_else(|| panic!("panel {title:?}: a target without expr: {t}"));
            out.push((format!("panel {title:?}"), expr.to_string()));
        }
    }
    for v in lookup_json(dashboard, "templating.list")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        if v.get("type").and_then(Json::as_str) != Some("query") {
            continue;
        }
        let name = v.get("name").and_then(Json::as_str).unwrap_or_default();
        let query = match v.get("query") {
            Some(Json::String(q)) => q.clone(),
            Some(q) => q
                .get("query")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string(),
            None => String::new(),
        };
        out.push((format!("variable ${name}"), query));
    }
    out
}

fn lookup_json<'a>(root: &'a Json, path: &str) -> Option<&'a Json> {
    path.split('.').try_fold(root, |node, key| node.get(key))
}

#[test]
fn dashboard_queries_name_only_metrics_and_labels_the_operator_exports() {
    let exported = exported_metrics();
    for family in [
        "gallring_overdue_objects",
        "gallring_deletions_total",
        "gallring_s3_request_duration_seconds_bucket",
        "gallring_leader",
    ] {
        assert!(
            exported.contains_key(family),
            "the registry exports {family}: {exported:?}"
        );
    }
    let dashboard = dashboard_file();
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 25, "the dashboard's queries: {queries:#?}");
    let problems: Vec<String> = queries
        .iter()
        .flat_map(|(at, expr)| {
            query_problems(expr, &exported)
                .into_iter()
                .map(move |p| format!("{at}: {p}"))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "dashboards/gallring.json queries what the operator does not export:\n  {}",
        problems.join("\n  ")
    );

    // It covers what issue 11 asks for: overdue, next deadlines, holds, scan health,
    // lifecycle drift, deletions, per controller.
    let used: BTreeSet<String> = queries
        .iter()
        .filter_map(|(_, e)| promql_selection(e).ok())
        .flat_map(|s| s.metrics.into_iter().map(|(m, _)| m))
        .collect();
    for metric in [
        "gallring_overdue_objects",
        "gallring_oldest_overdue_age_seconds",
        "gallring_next_deadline_timestamp_seconds",
        "gallring_held_objects",
        "gallring_holds_past_review",
        "gallring_last_successful_scan_timestamp_seconds",
        "gallring_scan_failures_total",
        "gallring_bucket_degraded",
        "gallring_lifecycle_in_sync",
        "gallring_objects_gone_total",
        "gallring_deletions_total",
        "gallring_deletion_failures_total",
        "gallring_controller_overdue_objects",
        "gallring_controller_objects",
    ] {
        assert!(used.contains(metric), "the dashboard shows {metric}");
    }
}

#[test]
fn dashboard_query_check_rejects_unknown_metrics_labels_and_groupings() {
    let exported = exported_metrics();
    let ok = r#"sum by (kind) (increase(gallring_deletions_total{namespace=~"$namespace", bucket=~"$bucket"}[$__rate_interval]))"#;
    assert_eq!(query_problems(ok, &exported), Vec::<String>::new());
    assert_eq!(
        query_problems(
            r#"histogram_quantile(0.95, sum by (le, operation) (rate(gallring_s3_request_duration_seconds_bucket[5m])))"#,
            &exported
        ),
        Vec::<String>::new()
    );
    for (expr, expected) in [
        // A misspelt metric.
        (
            r#"sum(gallring_overdue_object{namespace=~"$namespace"})"#,
            "gallring_overdue_object is not a metric the operator exports",
        ),
        // The histogram's base name is not a series.
        (
            "rate(gallring_s3_request_duration_seconds[5m])",
            "gallring_s3_request_duration_seconds is not a metric",
        ),
        // A bucket filter on a metric without bucket labels matches nothing.
        (
            r#"sum(rate(gallring_s3_requests_total{bucket=~"$bucket"}[5m]))"#,
            "gallring_s3_requests_total has no label bucket",
        ),
        // Grouping by a label no metric has.
        (
            "sum by (controller) (gallring_overdue_objects)",
            "groups by controller",
        ),
        (
            "label_values(gallring_leader, namespace)",
            "groups by namespace",
        ),
        // Not a metric at all.
        ("up", "up is not a metric the operator exports"),
    ] {
        let problems = query_problems(expr, &exported);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{expr}: expected {expected:?}, got {problems:?}"
        );
    }
}

#[test]
fn dashboard_json_is_a_grafana_dashboard_with_a_datasource_variable() {
    let d = dashboard_file();
    assert_eq!(
        d.get("uid").and_then(Json::as_str),
        Some("gallring-retention")
    );
    assert!(
        d.get("title")
            .and_then(Json::as_str)
            .is_some_and(|t| !t.is_empty())
    );
    // No `__inputs`: the sidecar does not resolve them. The data source is a variable.
    assert!(
        d.get("__inputs").is_none(),
        "no __inputs (sidecar dashboards cannot use them)"
    );
    let vars: Vec<&Json> = lookup_json(&d, "templating.list")
        .and_then(Json::as_array)
        .expect("template variables")
        .iter()
        .collect();
    let names: Vec<&str> = vars
        .iter()
        .filter_map(|v| v.get("name").and_then(Json::as_str))
        .collect();
    assert_eq!(names, ["datasource", "namespace", "bucket"]);
    assert_eq!(
        vars[0].get("query").and_then(Json::as_str),
        Some("prometheus")
    );
    let mut ids = BTreeSet::new();
    for p in dashboard_panels(&d) {
        let title = p.get("title").and_then(Json::as_str).unwrap_or_default();
        assert!(!title.is_empty(), "every panel has a title: {p}");
        let id = p.get("id").and_then(Json::as_u64).expect("a panel id");
        assert!(ids.insert(id), "panel id {id} is used twice");
        for key in ["h", "w", "x", "y"] {
            assert!(
                lookup_json(p, &format!("gridPos.{key}")).is_some_and(Json::is_u64),
                "panel {title:?}: gridPos.{key}"
            );
        }
        if p.get("type").and_then(Json::as_str) == Some("row") {
            continue;
        }
        assert!(
            p.get("description")
                .and_then(Json::as_str)
                .is_some_and(|s| !s.is_empty()),
            "panel {title:?} says what it shows"
        );
        let targets = p.get("targets").and_then(Json::as_array).expect("targets");
        assert!(!targets.is_empty(), "panel {title:?} has a query");
        for ds in
            std::iter::once(p.get("datasource")).chain(targets.iter().map(|t| t.get("datasource")))
        {
            assert_eq!(
                ds.and_then(|d| d.get("uid")).and_then(Json::as_str),
                Some("${datasource}"),
                "panel {title:?} reads the chosen Prometheus data source"
            );
        }
    }
    assert!(ids.len() >= 20, "the dashboard's panels: {}", ids.len());
}

#[test]
fn dashboard_shows_open_and_past_due_subject_requests_by_type() {
    let d = dashboard_file();
    let panels: Vec<&Json> = dashboard_panels(&d)
        .into_iter()
        .filter(|p| {
            p.get("title").and_then(Json::as_str) == Some("Data-subject requests")
                && p.get("type").and_then(Json::as_str) != Some("row")
        })
        .collect();
    assert_eq!(panels.len(), 1, "one \"Data-subject requests\" panel");
    let mut shown = BTreeMap::new();
    for t in panels[0]
        .get("targets")
        .and_then(Json::as_array)
        .expect("targets")
    {
        let expr = t.get("expr").and_then(Json::as_str).expect("an expr");
        let sel = promql_selection(expr).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            expr.starts_with("sum by (type) ("),
            "summed by request type: {expr}"
        );
        for (metric, labels) in sel.metrics {
            assert_eq!(
                labels,
                set(&["namespace", "bucket"]),
                "{expr}: follows the $namespace and $bucket variables"
            );
            assert!(sel.grouping.contains("type"), "{expr}: grouped by type");
            shown.insert(metric, expr.to_string());
        }
    }
    assert_eq!(
        shown.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "gallring_subject_requests_open",
            "gallring_subject_requests_past_due"
        ],
        "open and past-due requests"
    );
}

fn dashboard_configmaps(docs: &[Yaml]) -> Vec<&Yaml> {
    of_kind(docs, "ConfigMap")
        .into_iter()
        .filter(|d| name(d).ends_with("-dashboard"))
        .collect()
}

#[test]
fn dashboard_configmap_is_off_by_default_and_labelled_for_the_grafana_sidecar() {
    let docs = rendered("gallring", "gallring", &[]);
    assert!(
        dashboard_configmaps(&docs).is_empty(),
        "no dashboard by default (dashboard.enabled=false)"
    );

    let docs = rendered("gallring", "gallring", &["--set", "dashboard.enabled=true"]);
    let maps = dashboard_configmaps(&docs);
    assert_eq!(maps.len(), 1, "one dashboard ConfigMap");
    let cm = maps[0];
    assert_eq!(namespace(cm), "gallring");
    assert_eq!(
        str_at(cm, "metadata.labels.grafana_dashboard"),
        Some("1"),
        "kube-prometheus-stack's sidecar label, a string"
    );
    let labels = lookup(cm, "metadata.labels")
        .and_then(Yaml::as_mapping)
        .expect("labels");
    assert_eq!(
        labels
            .get("app.kubernetes.io/instance")
            .and_then(Yaml::as_str),
        Some("gallring")
    );
    let data = lookup(cm, "data").and_then(Yaml::as_mapping).expect("data");
    assert_eq!(data.len(), 1, "one dashboard file");
    let json_text = data
        .get("gallring.json")
        .and_then(Yaml::as_str)
        .expect("data.gallring.json");
    let embedded: Json = serde_json::from_str(json_text)
        .unwrap_or_else(|e| panic!("the ConfigMap's gallring.json is not JSON: {e}"));
    assert_eq!(
        embedded,
        dashboard_file(),
        "the ConfigMap carries dashboards/gallring.json as it is"
    );

    // The label, extra labels, annotations and namespace are configurable.
    let docs = rendered(
        "gallring",
        "gallring",
        &[
            "--set",
            "dashboard.enabled=true",
            "--set",
            "dashboard.sidecarLabel=dashboards.example.com/grafana",
            "--set",
            "dashboard.sidecarLabelValue=platform",
            "--set",
            "dashboard.labels.team=platform",
            "--set",
            "dashboard.annotations.grafana_folder=Compliance",
            "--set",
            "dashboard.namespace=monitoring",
        ],
    );
    let maps = dashboard_configmaps(&docs);
    assert_eq!(maps.len(), 1);
    let cm = maps[0];
    let labels = lookup(cm, "metadata.labels")
        .and_then(Yaml::as_mapping)
        .expect("labels");
    assert_eq!(
        labels
            .get("dashboards.example.com/grafana")
            .and_then(Yaml::as_str),
        Some("platform")
    );
    assert!(
        labels.get("grafana_dashboard").is_none(),
        "the label is replaced"
    );
    assert_eq!(labels.get("team").and_then(Yaml::as_str), Some("platform"));
    assert_eq!(
        str_at(cm, "metadata.annotations.grafana_folder"),
        Some("Compliance")
    );
    assert_eq!(namespace(cm), "monitoring");
    assert!(
        name(cm).contains("gallring"),
        "outside the release namespace the name carries it: {}",
        name(cm)
    );

    // Two releases of one name in different namespaces, both putting the dashboard into
    // Grafana's namespace, do not render the same object.
    let mut seen = BTreeSet::new();
    for ns in ["ops-a", "ops-b"] {
        let docs = rendered(
            "gallring",
            ns,
            &[
                "--set",
                "dashboard.enabled=true",
                "--set",
                "dashboard.namespace=monitoring",
            ],
        );
        for cm in dashboard_configmaps(&docs) {
            assert!(
                seen.insert((namespace(cm).to_string(), name(cm).to_string())),
                "{}/{} is rendered by two releases",
                namespace(cm),
                name(cm)
            );
        }
    }

    // The sidecar label may not be repeated among the extra labels (a duplicate YAML key).
    let error = render_error(
        "gallring",
        "gallring",
        &[
            "--set",
            "dashboard.enabled=true",
            "--set",
            "dashboard.labels.grafana_dashboard=0",
        ],
    );
    assert!(
        error.contains("dashboard.labels") && error.contains("grafana_dashboard"),
        "{error}"
    );
    // The schema refuses a label key that Kubernetes would refuse.
    let error = render_error(
        "gallring",
        "gallring",
        &["--set", "dashboard.sidecarLabel=not a label"],
    );
    assert!(error.contains("sidecarLabel"), "{error}");
}

#[test]
fn helm_lint_strict_passes_with_the_dashboard() {
    let helm = helm();
    let out = Command::new(&helm)
        .args(["lint", "--strict", "--set", "dashboard.enabled=true"])
        .arg(chart())
        .output()
        .unwrap_or_else(|e| panic!("cannot run $HELM ({}): {e}", helm.display()));
    assert!(
        out.status.success(),
        "helm lint --strict --set dashboard.enabled=true charts/gallring:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
