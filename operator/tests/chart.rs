//! Static checks of the Helm chart in `charts/gallring`, without a helm binary: its YAML and
//! JSON parse, its CRDs are the generated ones, every `.Values` path a template reads exists
//! in values.yaml (and every value is read), values.yaml satisfies values.schema.json, the
//! alerts are complete and use metrics the operator exports, the RBAC has no wildcards, and
//! the Deployment passes only flags `gallring operator` accepts.

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
    let mut errors = Vec::new();
    validate(&schema, &bad, "", &mut errors);
    for path in [
        "replicaCount",
        "image.pullPolicy",
        "prometheusRule.thresholds.retentionBreachFor",
        "watchNamespace",
        "replicas",
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

const ALERTS: [&str; 8] = [
    "GallringRetentionBreach",
    "GallringScanStale",
    "GallringDeletionFailures",
    "GallringLifecycleDrift",
    "GallringHoldPastReview",
    "GallringUnclassifiedObjects",
    "GallringBucketDegraded",
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
        "retentionpolicies/status",
        "recordingbuckets/status",
        "legalholds/status",
        "legalholds/finalizers",
        "recordingbuckets/finalizers",
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
        "--namespace",
        "--json-logs",
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
