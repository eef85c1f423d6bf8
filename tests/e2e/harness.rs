//! The harness of the end-to-end suite: what the environment must provide, the CRDs (applied
//! once per test binary), and per test a fresh namespace with the real chart installed in it,
//! a token for the chart's ServiceAccount, proxies in front of the API server and the S3
//! store, and `gallring operator` processes run out of cluster with exactly the chart's RBAC.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Client, ResourceExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::proxy::{ApiProxy, S3Proxy};

/// The test function's name, e.g. `two_replicas_elect_one_leader`.
#[macro_export]
macro_rules! test_name {
    () => {{
        fn f() {}
        let path = std::any::type_name_of_val(&f);
        path.split("::")
            .filter(|p| *p != "f" && *p != "{{closure}}")
            .last()
            .unwrap_or("unknown")
    }};
}

/// Field manager of everything the suite applies.
pub const MANAGER: &str = "gallring-e2e";
/// The credentials Secret every test bucket references.
pub const SECRET: &str = "gallring-s3";
pub const RETENTION_TAG: &str = "gallring.io/retention";
pub const KEEP_UNTIL_TAG: &str = "gallring.io/keep-until";

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in a workspace")
        .to_path_buf()
}

/// Where the suite keeps its files: `target/e2e/`.
pub fn e2e_dir() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    target.parent().unwrap_or(&target).join("e2e")
}

/// Reports a figure for README/BENCHMARKS: a line `E2E-FIGURE: name = value` on stderr, written
/// past the test harness's capture so it shows in every run (passing tests included), and
/// appended to `target/e2e/figures.txt` (started afresh by each run).
pub fn figure(name: &str, value: impl std::fmt::Display) {
    use std::io::Write;
    let line = format!("E2E-FIGURE: {name} = {value}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    let _ = std::fs::create_dir_all(e2e_dir());
    // One file per run of the suite.
    static FRESH: std::sync::Once = std::sync::Once::new();
    FRESH.call_once(|| {
        let _ = std::fs::remove_file(e2e_dir().join("figures.txt"));
    });
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(e2e_dir().join("figures.txt"))
    {
        let _ = f.write_all(line.as_bytes());
    }
}

// -------------------------------------------------------------------------------------------
// The environment

/// Where the cluster's CA comes from.
#[derive(Clone, Debug)]
pub enum Ca {
    File(PathBuf),
    /// Base64 PEM, as in a kubeconfig's `certificate-authority-data`.
    Data(String),
}

/// What the suite needs from its environment. A missing piece fails the test with a hint; the
/// suite never skips.
#[derive(Clone, Debug)]
pub struct Env {
    pub helm: PathBuf,
    pub ca: Ca,
    /// `host:port` of the API server, and the host for TLS verification.
    pub api_upstream: String,
    pub api_host: String,
    pub s3_endpoint: String,
    pub s3_upstream: String,
    pub access_key: String,
    pub secret_key: String,
}

fn host_port(url: &str, default_port: u16) -> (String, String) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            (h.to_string(), p.parse().unwrap_or(default_port))
        }
        _ => (authority.to_string(), default_port),
    };
    (host.clone(), format!("{host}:{port}"))
}

impl Env {
    pub fn get() -> Env {
        let mut missing = Vec::new();
        let mut var = |name: &str, hint: &str| match std::env::var(name) {
            Ok(v) if !v.is_empty() => v,
            _ => {
                missing.push(format!("  {name}: {hint}"));
                String::new()
            }
        };
        let up = "run `eval \"$(../shared/k8s/up.sh)\"` from the repository root, or point it at a test cluster";
        let s3 = "run `eval \"$(scripts/s3-up.sh)\"` (Ceph RGW on 127.0.0.1:7480)";
        let kubeconfig = var("KUBECONFIG", up);
        let helm = var(
            "HELM",
            "a helm v3 binary (`../shared/k8s/up.sh` exports it; or `export HELM=$(command -v helm)`)",
        );
        let s3_endpoint = var("GALLRING_S3_ENDPOINT", s3);
        let access_key = var("AWS_ACCESS_KEY_ID", s3);
        let secret_key = var("AWS_SECRET_ACCESS_KEY", s3);
        let ca_file = std::env::var("GALLRING_K8S_CA")
            .ok()
            .filter(|v| !v.is_empty());
        let mut api = None;
        let mut ca_data = None;
        if !kubeconfig.is_empty() {
            match read_kubeconfig(Path::new(&kubeconfig)) {
                Ok((server, data)) => {
                    api = Some(server);
                    ca_data = data;
                }
                Err(e) => missing.push(format!("  KUBECONFIG={kubeconfig}: {e}")),
            }
        }
        let ca = match (ca_file, ca_data) {
            (Some(f), _) => Some(Ca::File(PathBuf::from(f))),
            (None, Some(d)) => Some(d),
            (None, None) => {
                missing.push(
                    "  GALLRING_K8S_CA: the cluster CA file (`../shared/k8s/up.sh` exports it), needed when the kubeconfig has no certificate-authority(-data)".into(),
                );
                None
            }
        };
        assert!(
            missing.is_empty(),
            "the end-to-end suite needs a cluster, helm and the S3 store; missing:\n{}\n(scripts/test.sh sets all of them up)",
            missing.join("\n")
        );
        let server = api.expect("checked above");
        let (api_host, api_upstream) = host_port(&server, 443);
        let (_, s3_upstream) = host_port(&s3_endpoint, 80);
        Env {
            helm: PathBuf::from(helm),
            ca: ca.expect("checked above"),
            api_upstream,
            api_host,
            s3_endpoint,
            s3_upstream,
            access_key,
            secret_key,
        }
    }
}

/// The current context's server URL and CA (if the kubeconfig carries one).
fn read_kubeconfig(path: &Path) -> Result<(String, Option<Ca>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let kc: Value = serde_norway::from_str(&text).map_err(|e| format!("not YAML: {e}"))?;
    let current = kc["current-context"].as_str().unwrap_or_default();
    let named = |list: &str, name: &str| -> Option<Value> {
        kc[list]
            .as_array()?
            .iter()
            .find(|e| e["name"].as_str() == Some(name))
            .cloned()
    };
    let cluster_name = named("contexts", current)
        .and_then(|c| c["context"]["cluster"].as_str().map(str::to_string))
        .or_else(|| kc["clusters"][0]["name"].as_str().map(str::to_string))
        .ok_or("no cluster in it")?;
    let cluster = named("clusters", &cluster_name).ok_or("no cluster in it")?;
    let server = cluster["cluster"]["server"]
        .as_str()
        .ok_or("its cluster has no server")?
        .to_string();
    let ca = if let Some(d) = cluster["cluster"]["certificate-authority-data"].as_str() {
        Some(Ca::Data(d.to_string()))
    } else {
        cluster["cluster"]["certificate-authority"]
            .as_str()
            .map(|f| {
                let p = PathBuf::from(f);
                Ca::File(if p.is_absolute() {
                    p
                } else {
                    path.parent().unwrap_or(Path::new(".")).join(p)
                })
            })
    };
    Ok((server, ca))
}

// -------------------------------------------------------------------------------------------
// Cluster-wide setup: the CRDs, once per test binary

static CRDS: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Server-side applies `crds/gallring.yaml` (once per test binary) and waits until every CRD
/// is Established.
pub async fn ensure_crds() {
    CRDS.get_or_init(|| async {
        let client = Client::try_default()
            .await
            .expect("the admin kubeconfig works");
        apply_crds(&client, &repo().join("crds/gallring.yaml")).await;
    })
    .await;
}

pub async fn apply_crds(client: &Client, file: &Path) -> Vec<String> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut names = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let value = Value::deserialize(doc).expect("YAML");
        if value.is_null() {
            continue;
        }
        let crd: CustomResourceDefinition =
            serde_json::from_value(value).expect("a CustomResourceDefinition");
        let name = crd.name_any();
        crds.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("applying CRD {name}: {e}"));
        names.push(name);
    }
    for name in &names {
        wait_for(
            &format!("CRD {name} Established"),
            Duration::from_secs(60),
            || async {
                let c = crds.get(name).await.ok()?;
                c.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            },
        )
        .await;
    }
    names
}

// -------------------------------------------------------------------------------------------
// Waiting

/// Polls `f` every 250 ms until it returns `Some`, or fails after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs a command (helm, kubectl) off the runtime's threads; returns (ok, stdout, stderr).
pub async fn run(program: &Path, args: &[String]) -> (bool, String, String) {
    let (p, a) = (program.to_path_buf(), args.to_vec());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&p).args(&a).stdin(Stdio::null()).output()
    })
    .await
    .expect("the command's thread")
    .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("local address")
}

fn suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{:06x}",
        (nanos ^ u128::from(std::process::id()) << 20) & 0xff_ffff
    )
}

// -------------------------------------------------------------------------------------------
// Per test

/// How a test wants its namespace set up.
#[derive(Default)]
pub struct Setup {
    /// Extra `--set` values for `helm install`.
    pub sets: Vec<(String, String)>,
    /// Do not create the credentials Secret.
    pub no_secret: bool,
    /// Do not create the S3 bucket.
    pub no_bucket: bool,
}

/// One operator process.
pub struct Operator {
    pub identity: String,
    pub log: PathBuf,
    pub metrics: SocketAddr,
    child: Option<Child>,
}

impl Operator {
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL: no chance to release anything.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the exit (SIGKILL after `grace`).
    pub async fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return Some(s);
            }
            if start.elapsed() > grace {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /metrics` (plain HTTP/1.0 over TCP; no client library needed).
    pub async fn metrics_text(&self) -> Option<String> {
        http_get(self.metrics, "/metrics").await
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

pub async fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out))
        .await
        .ok()?
        .ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
}

/// The samples of one metric family whose labels include all of `labels`.
pub fn samples(text: &str, name: &str, labels: &[(&str, &str)]) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// A condition of a custom resource's status.
#[derive(Debug, Clone)]
pub struct Cond {
    pub status: String,
    pub reason: String,
    pub message: String,
}

impl Cond {
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

pub fn condition(obj: &Value, type_: &str) -> Option<Cond> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"].as_str() == Some(type_))
        .map(|c| Cond {
            status: c["status"].as_str().unwrap_or_default().into(),
            reason: c["reason"].as_str().unwrap_or_default().into(),
            message: c["message"].as_str().unwrap_or_default().into(),
        })
}

/// The conditions of an object, for failure messages.
pub fn conditions_text(obj: &Value) -> String {
    obj["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    format!(
                        "{}={} ({}: {})",
                        c["type"].as_str().unwrap_or("?"),
                        c["status"].as_str().unwrap_or("?"),
                        c["reason"].as_str().unwrap_or(""),
                        c["message"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_else(|| "no conditions".into())
}

pub fn gallring_resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("gallring.io", "v1alpha1", kind))
}

/// `helm install|upgrade RELEASE charts/gallring -n NS --set ...` (CRDs are applied by the
/// suite itself); fails the test with helm's output.
async fn helm(
    env: &Env,
    dir: &Path,
    verb: &str,
    release: &str,
    ns: &str,
    sets: &[(String, String)],
) {
    let mut args: Vec<String> = vec![
        verb.into(),
        release.into(),
        repo().join("charts/gallring").display().to_string(),
        "-n".into(),
        ns.into(),
    ];
    if verb == "install" {
        // The suite applies crds/ itself (server-side, once); upgrades never touch CRDs.
        args.push("--skip-crds".into());
    }
    for (k, v) in sets {
        args.push("--set".into());
        args.push(format!("{k}={v}"));
    }
    let (ok, out, err) = run(&env.helm, &args).await;
    let log = format!("$ helm {}\n{out}\n{err}\n", args.join(" "));
    let path = dir.join("helm.log");
    let previous = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, previous + &log).expect("helm.log");
    assert!(ok, "helm {verb} failed:\n{log}");
}

/// What the chart runs, read back from the cluster: the Deployment's args and RUST_LOG, and
/// its ServiceAccount (the Deployment is created; its pods never run).
struct Chart {
    args: Vec<String>,
    rust_log: String,
    service_account: String,
}

impl Chart {
    async fn read(kube: &Client, ns: &str, release: &str, dir: &Path) -> Chart {
        let deployments: Api<Deployment> = Api::namespaced(kube.clone(), ns);
        let list = deployments
            .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={release}")))
            .await
            .expect("list Deployments");
        let deployment =
            serde_json::to_value(list.items.first().expect("the chart created a Deployment"))
                .expect("JSON");
        std::fs::write(
            dir.join("deployment.yaml"),
            serde_norway::to_string(&deployment).expect("YAML"),
        )
        .expect("deployment.yaml");
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<String> = container["args"]
            .as_array()
            .expect("the operator container has args")
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect();
        assert_eq!(
            args.first().map(String::as_str),
            Some("operator"),
            "{args:?}"
        );
        let rust_log = container["env"]
            .as_array()
            .and_then(|e| e.iter().find(|v| v["name"] == "RUST_LOG"))
            .and_then(|v| v["value"].as_str())
            .unwrap_or("info")
            .to_string();
        let service_account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
            .as_str()
            .expect("the Deployment names its ServiceAccount")
            .to_string();
        Chart {
            args,
            rust_log,
            service_account,
        }
    }
}

/// One version of an object, and when the watch delivered it.
pub type Version = (DateTime<Utc>, Value);

/// Every version of one object as a watch sees it, with when it arrived: the complete record
/// of status writes, which polling could miss.
pub struct History {
    versions: Arc<Mutex<Vec<Version>>>,
    task: tokio::task::JoinHandle<()>,
}

impl History {
    pub fn all(&self) -> Vec<Version> {
        self.versions.lock().expect("lock").clone()
    }

    /// The first version that satisfies `f`.
    pub fn first(&self, f: impl Fn(&Value) -> bool) -> Option<Value> {
        self.all().into_iter().map(|(_, v)| v).find(|v| f(v))
    }
}

impl Drop for History {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One test's world: namespace, release, Lease, S3 bucket, proxies and operators.
pub struct E2e {
    pub test: String,
    pub env: Env,
    pub ns: String,
    pub release: String,
    pub lease: String,
    /// The S3 bucket made for this test.
    pub bucket: String,
    pub dir: PathBuf,
    pub kube: Client,
    pub s3: aws_sdk_s3::Client,
    pub s3proxy: S3Proxy,
    pub api_proxy: ApiProxy,
    pub sa_kubeconfig: PathBuf,
    /// `gallring operator` arguments from the chart's rendered Deployment.
    pub chart_args: Vec<String>,
    rust_log: String,
    /// The `--set` values the release was installed with.
    sets: Vec<(String, String)>,
    pub operators: Vec<Operator>,
    pub started: Instant,
}

impl E2e {
    /// `slug`: short, lowercase, for resource names (release `g-<slug>`).
    pub async fn new(test: &str, slug: &str, setup: Setup) -> E2e {
        let env = Env::get();
        ensure_crds().await;
        let started = Instant::now();
        let kube = Client::try_default()
            .await
            .expect("the admin kubeconfig works");
        let sfx = suffix();
        let ns = format!("e2e-{slug}-{sfx}");
        let release = format!("g-{slug}");
        let lease = format!("gallring-{slug}-{sfx}");
        let bucket = format!("e2e-{slug}-{sfx}");
        let dir = e2e_dir().join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("home")).expect("test directory");
        println!(
            "e2e {test}: namespace {ns}, bucket {bucket}, files in {}",
            dir.display()
        );

        let namespaces: Api<Namespace> = Api::all(kube.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {
                    "name": ns,
                    "labels": {"gallring.io/e2e": "true"},
                    "annotations": {"gallring.io/e2e-test": test}
                }}))
                .expect("namespace"),
            )
            .await
            .unwrap_or_else(|e| panic!("creating namespace {ns}: {e}"));

        // The real chart, in namespace mode.
        let mut sets = vec![
            ("watchNamespace".to_string(), ns.clone()),
            ("leaderElection.leaseName".to_string(), lease.clone()),
            ("jsonLogs".to_string(), "false".to_string()),
        ];
        sets.extend(setup.sets.iter().cloned());
        helm(&env, &dir, "install", &release, &ns, &sets).await;
        let chart = Chart::read(&kube, &ns, &release, &dir).await;
        let sa = chart.service_account.clone();

        // A token for the chart's ServiceAccount (what `kubectl create token` does), used
        // through the API proxy.
        let accounts: Api<ServiceAccount> = Api::namespaced(kube.clone(), &ns);
        let request: TokenRequest = serde_json::from_value(json!({
            "spec": {"audiences": [], "expirationSeconds": 7200}
        }))
        .expect("TokenRequest");
        let token = accounts
            .create_token_request(&sa, &PostParams::default(), &request)
            .await
            .unwrap_or_else(|e| panic!("a token for ServiceAccount {sa}: {e}"))
            .status
            .expect("TokenRequest status")
            .token;
        let api_proxy = ApiProxy::start(&env.api_upstream).await;
        let ca = match &env.ca {
            Ca::File(f) => format!("certificate-authority: {}", f.display()),
            Ca::Data(d) => format!("certificate-authority-data: {d}"),
        };
        // The proxy is 127.0.0.1: verify the certificate against the real server's name.
        let server_name = if env.api_host == "127.0.0.1" {
            String::new()
        } else {
            format!(
                "\n    tls-server-name: {}",
                env.api_host.trim_matches(['[', ']'])
            )
        };
        let sa_kubeconfig = dir.join("sa.kubeconfig");
        std::fs::write(
            &sa_kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {}\n    {ca}{server_name}\nusers:\n- name: {sa}\n  user:\n    token: {}\ncontexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: {sa}\n    namespace: {ns}\ncurrent-context: e2e\n",
                api_proxy.url(),
                token.trim()
            ),
        )
        .expect("SA kubeconfig");

        let s3 = gallring::store::s3::S3Store::sdk_client(Some(env.s3_endpoint.clone())).await;
        if !setup.no_bucket {
            s3.create_bucket()
                .bucket(&bucket)
                .send()
                .await
                .unwrap_or_else(|e| panic!("creating S3 bucket {bucket}: {e:?}"));
        }
        let s3proxy = S3Proxy::start(&env.s3_upstream).await;

        let e = E2e {
            test: test.to_string(),
            env,
            ns,
            release,
            lease,
            bucket,
            dir,
            kube,
            s3,
            s3proxy,
            api_proxy,
            sa_kubeconfig,
            chart_args: chart.args,
            rust_log: chart.rust_log,
            sets,
            operators: Vec::new(),
            started,
        };
        if !setup.no_secret {
            e.create_secret().await;
        }
        e
    }

    // ---- operators

    /// Starts `gallring operator` with the chart's arguments (metrics on a free loopback port),
    /// `--identity`, and `extra`; the SA kubeconfig; and no AWS variables at all. Returns its
    /// index in `operators`.
    pub fn spawn(&mut self, identity: &str, extra: &[&str]) -> usize {
        self.spawn_with_env(identity, extra, &[])
    }

    /// `helm upgrade` of the test's release with more values; later operators run with the
    /// chart's new arguments.
    pub async fn helm_upgrade(&mut self, sets: &[(&str, &str)]) {
        self.sets
            .extend(sets.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        helm(
            &self.env,
            &self.dir,
            "upgrade",
            &self.release,
            &self.ns,
            &self.sets,
        )
        .await;
        let chart = Chart::read(&self.kube, &self.ns, &self.release, &self.dir).await;
        self.chart_args = chart.args;
        self.rust_log = chart.rust_log;
    }

    /// As `spawn`, with extra environment variables (only for a test about what the operator
    /// does with them).
    pub fn spawn_with_env(
        &mut self,
        identity: &str,
        extra: &[&str],
        vars: &[(&str, &str)],
    ) -> usize {
        let metrics = free_port();
        let mut args: Vec<String> = Vec::new();
        let mut skip_value = false;
        for a in &self.chart_args {
            if skip_value {
                skip_value = false;
                continue;
            }
            if a == "--metrics-addr" {
                skip_value = true;
                continue;
            }
            if a.starts_with("--metrics-addr=") || a == "--json-logs" {
                continue;
            }
            args.push(a.clone());
        }
        args.push(format!("--metrics-addr={metrics}"));
        args.push(format!("--identity={identity}"));
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = self.dir.join(format!("operator-{identity}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("operator log");
        let _ = std::io::Write::write_all(
            &mut &file,
            format!("$ gallring {}\n", args.join(" ")).as_bytes(),
        );
        let child = Command::new(env!("CARGO_BIN_EXE_gallring"))
            .args(&args)
            // Nothing ambient: no AWS_* variables, no ~/.aws, no kubeconfig but the SA's.
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.join("home"))
            .env("KUBECONFIG", &self.sa_kubeconfig)
            .env("RUST_LOG", &self.rust_log)
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("the gallring binary starts");
        // If this test process dies without running Drop (killed, timed out), a watchdog
        // kills the operator instead of leaving it running.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {test} 2>/dev/null; do kill -0 {op} 2>/dev/null || exit 0; sleep 1; done; kill -9 {op} 2>/dev/null",
                test = std::process::id(),
                op = child.id()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(|mut w| std::thread::spawn(move || w.wait()));
        self.operators.push(Operator {
            identity: identity.to_string(),
            log,
            metrics,
            child: Some(child),
        });
        self.operators.len() - 1
    }

    /// Index of the operator with this identity.
    pub fn op(&mut self, identity: &str) -> &mut Operator {
        self.operators
            .iter_mut()
            .rev()
            .find(|o| o.identity == identity)
            .unwrap_or_else(|| panic!("no operator {identity}"))
    }

    /// The Lease's holder and renew time, read with the admin client.
    pub async fn lease(&self) -> Option<Lease> {
        let leases: Api<Lease> = Api::namespaced(self.kube.clone(), &self.ns);
        leases.get_opt(&self.lease).await.ok().flatten()
    }

    pub async fn lease_holder(&self) -> Option<String> {
        self.lease()
            .await?
            .spec?
            .holder_identity
            .filter(|h| !h.is_empty())
    }

    // ---- Kubernetes objects

    pub fn api(&self, kind: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.kube.clone(), &self.ns, &gallring_resource(kind))
    }

    /// Server-side applies a gallring.io object (`kind` and `metadata.name` in `obj`) into
    /// the test namespace.
    pub async fn apply(&self, obj: Value) -> Value {
        self.try_apply(obj).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Server-side apply; the API server's refusal as text.
    pub async fn try_apply(&self, mut obj: Value) -> Result<Value, String> {
        let kind = obj["kind"].as_str().expect("kind").to_string();
        let name = obj["metadata"]["name"].as_str().expect("name").to_string();
        obj["apiVersion"] = json!("gallring.io/v1alpha1");
        obj["metadata"]["namespace"] = json!(self.ns);
        let applied = self
            .api(&kind)
            .patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&obj),
            )
            .await
            .map_err(|e| format!("applying {kind} {name}: {e}"))?;
        Ok(serde_json::to_value(applied).expect("JSON"))
    }

    pub async fn get(&self, kind: &str, name: &str) -> Option<Value> {
        self.api(kind)
            .get_opt(name)
            .await
            .unwrap_or_else(|e| panic!("reading {kind} {name}: {e}"))
            .map(|o| serde_json::to_value(o).expect("JSON"))
    }

    pub async fn delete(&self, kind: &str, name: &str) {
        self.api(kind)
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("deleting {kind} {name}: {e}"));
    }

    /// Starts recording every version of `kind/name` (it need not exist yet).
    pub fn watch(&self, kind: &str, name: &str) -> History {
        let api = self.api(kind);
        let versions = Arc::new(Mutex::new(Vec::new()));
        let sink = versions.clone();
        let wp = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            // Bookmarks with resourceVersion 0 need etcd's RequestWatchProgress (etcd ≥ 3.4.31).
            .disable_bookmarks()
            .timeout(290);
        let task = tokio::spawn(async move {
            let mut rv = "0".to_string();
            loop {
                let stream = match api.watch(&wp, &rv).await {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("watch: {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                let mut stream = std::pin::pin!(stream);
                while let Some(ev) = futures::StreamExt::next(&mut stream).await {
                    match ev {
                        Ok(WatchEvent::Added(o) | WatchEvent::Modified(o)) => {
                            rv = o.resource_version().unwrap_or(rv);
                            let v = serde_json::to_value(o).expect("JSON");
                            sink.lock().expect("lock").push((Utc::now(), v));
                        }
                        Ok(WatchEvent::Bookmark(b)) => rv = b.metadata.resource_version,
                        Ok(WatchEvent::Deleted(_)) => {}
                        Ok(WatchEvent::Error(e)) => {
                            eprintln!("watch: {}", e.message);
                            // 410 Gone: the version is too old; start again from now.
                            if e.code == 410 {
                                rv = "0".into();
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            break;
                        }
                        Err(e) => {
                            eprintln!("watch: {e}");
                            break;
                        }
                    }
                }
            }
        });
        History { versions, task }
    }

    /// Waits until `kind/name` has condition `type_` satisfying `ok`; returns the object.
    pub async fn wait_condition(
        &self,
        kind: &str,
        name: &str,
        type_: &str,
        timeout: Duration,
        ok: impl Fn(&Cond) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let obj = self.get(kind, name).await;
            if let Some(o) = &obj
                && condition(o, type_).as_ref().is_some_and(&ok)
            {
                return obj.expect("checked");
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {kind} {name} condition {type_}; it has: {}",
                    obj.as_ref()
                        .map_or("nothing (no such object)".into(), conditions_text)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until the bucket is Ready=True; returns it.
    pub async fn wait_ready(&self, name: &str, timeout: Duration) -> Value {
        self.wait_condition("RecordingBucket", name, "Ready", timeout, Cond::is_true)
            .await
    }

    /// Events (events.k8s.io/v1) about `kind/name`, as (type, reason, note).
    pub async fn events(&self, kind: &str, name: &str) -> Vec<(String, String, String)> {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.kube.clone(), &self.ns);
        api.list(&Default::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().is_some_and(|r| {
                    r.kind.as_deref() == Some(kind) && r.name.as_deref() == Some(name)
                })
            })
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }

    pub async fn create_secret(&self) {
        let secrets: Api<Secret> = Api::namespaced(self.kube.clone(), &self.ns);
        secrets
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {"name": SECRET},
                    "stringData": {
                        "AWS_ACCESS_KEY_ID": self.env.access_key,
                        "AWS_SECRET_ACCESS_KEY": self.env.secret_key,
                    }
                }))
                .expect("secret"),
            )
            .await
            .expect("secret created");
    }

    // ---- S3, directly (not through the proxy)

    pub async fn put(&self, key: &str, body: &[u8], tags: &[(&str, &str)], meta: &[(&str, &str)]) {
        let mut req = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body.to_vec()));
        if !tags.is_empty() {
            let t: Vec<String> = tags
                .iter()
                .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
                .collect();
            req = req.tagging(t.join("&"));
        }
        for (k, v) in meta {
            req = req.metadata(*k, *v);
        }
        req.send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    }

    /// Puts many small objects, `concurrency` at a time.
    pub async fn put_many(&self, keys: Vec<String>, concurrency: usize) {
        use futures::StreamExt;
        futures::stream::iter(keys)
            .map(|k| async move { self.put(&k, b"x", &[], &[]).await })
            .buffer_unordered(concurrency)
            .collect::<Vec<()>>()
            .await;
    }

    /// The object's tags; `None` when it does not exist.
    pub async fn tags(&self, key: &str) -> Option<BTreeMap<String, String>> {
        match self
            .s3
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(t) => Some(
                t.tag_set()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect(),
            ),
            Err(e) => {
                let missing = e
                    .as_service_error()
                    .and_then(|s| aws_sdk_s3::error::ProvideErrorMetadata::code(s))
                    .is_some_and(|c| c == "NoSuchKey")
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404);
                assert!(missing, "get tags of {key}: {e:?}");
                None
            }
        }
    }

    pub async fn retention(&self, key: &str) -> Option<String> {
        self.tags(key).await?.get(RETENTION_TAG).cloned()
    }

    /// Every key in the bucket outside gallring's own state prefix, with size and time.
    pub async fn list(&self) -> Vec<(String, i64, DateTime<Utc>)> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .set_continuation_token(token)
                .send()
                .await
                .expect("list");
            for o in page.contents() {
                let key = o.key().unwrap_or_default().to_string();
                if key.starts_with(".gallring/") {
                    continue;
                }
                let lm = o
                    .last_modified()
                    .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
                    .unwrap_or_default();
                out.push((key, o.size().unwrap_or(0), lm));
            }
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        out
    }

    /// The bucket as a `gallring plan --objects` JSON Lines listing (key, lastModified, size,
    /// tags, metadata), read from S3.
    pub async fn listing_jsonl(&self) -> String {
        let mut out = String::new();
        for (key, size, lm) in self.list().await {
            let tags = self.tags(&key).await.unwrap_or_default();
            let head = self
                .s3
                .head_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .expect("head");
            let meta: BTreeMap<String, String> = head
                .metadata()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect();
            out.push_str(
                &json!({
                    "key": key,
                    "lastModified": lm.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "size": size,
                    "tags": tags,
                    "metadata": meta,
                })
                .to_string(),
            );
            out.push('\n');
        }
        out
    }

    // ---- the end

    /// Fails on `Forbidden` or a panic in any operator log; then uninstalls the release and
    /// deletes the namespace (the S3 bucket stays: emptying it is slow and it is unique).
    pub async fn finish(mut self) {
        // While an operator can still act: delete the test's LegalHolds and RecordingBuckets
        // so their finalizers run (otherwise the namespace would hang in Terminating).
        let reachable =
            !self.api_proxy.is_cut() && self.operators.iter_mut().any(Operator::running);
        for kind in ["LegalHold", "RecordingBucket"] {
            self.delete_all(kind, reachable).await;
        }
        for o in &mut self.operators {
            o.kill();
        }
        self.check_logs();
        let (ok, _, err) = run(
            &self.env.helm,
            &[
                "uninstall".into(),
                self.release.clone(),
                "-n".into(),
                self.ns.clone(),
            ],
        )
        .await;
        if !ok {
            println!("e2e {}: helm uninstall: {err}", self.test);
        }
        let namespaces: Api<Namespace> = Api::all(self.kube.clone());
        let _ = namespaces
            .delete(&self.ns, &DeleteParams::background())
            .await;
        println!(
            "e2e {}: passed in {:.1} s",
            self.test,
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Deletes every `kind` in the namespace; waits (up to 30 s, when an operator runs) for
    /// their finalizers, then strips what is left so the namespace can go.
    pub async fn delete_all(&self, kind: &str, wait: bool) {
        let api = self.api(kind);
        let names = |l: kube::core::ObjectList<DynamicObject>| -> Vec<String> {
            l.items.iter().map(ResourceExt::name_any).collect()
        };
        let Ok(list) = api.list(&ListParams::default()).await else {
            return;
        };
        for n in names(list) {
            let _ = api.delete(&n, &DeleteParams::default()).await;
        }
        let start = Instant::now();
        let mut left = Vec::new();
        while let Ok(l) = api.list(&ListParams::default()).await {
            left = names(l);
            if left.is_empty() || !wait || start.elapsed() > Duration::from_secs(30) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        for n in &left {
            if wait {
                println!(
                    "e2e {}: {kind} {n} still there 30 s after its deletion; removing its finalizers",
                    self.test
                );
            }
            let _ = api
                .patch(
                    n,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                )
                .await;
        }
    }

    /// Lines of the operator logs that show a permission the chart does not grant, a panic,
    /// or a finalizer the operator failed to add or remove. The last is the kube-runtime
    /// finalizer helper racing its own cache: a reconcile queued before the finalizer's watch
    /// event arrives patches with a stale `test` of `/metadata/finalizers` and gets 422; each
    /// such reconcile counts as a failure (WARN, backoff step) on a healthy object.
    pub fn log_problems(&self) -> Vec<String> {
        let mut bad = Vec::new();
        for o in &self.operators {
            for line in o.log_text().lines() {
                let l = line.to_ascii_lowercase();
                if l.contains("forbidden")
                    || l.contains("panicked at")
                    || l.contains("failed to add finalizer")
                    || l.contains("failed to remove finalizer")
                {
                    bad.push(format!("{}: {line}", o.identity));
                }
            }
        }
        bad
    }

    fn check_logs(&self) {
        let bad = self.log_problems();
        if !bad.is_empty() {
            self.print_logs();
        }
        assert!(
            bad.is_empty(),
            "the operator hit a permission the chart does not grant (Forbidden), panicked, or failed on a finalizer:\n{}",
            bad.join("\n")
        );
    }

    pub fn print_logs(&self) {
        for o in &self.operators {
            let text = o.log_text();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(200);
            eprintln!(
                "----- operator {} ({} lines, last {} shown; full log: {}) -----",
                o.identity,
                lines.len(),
                lines.len() - from,
                o.log.display()
            );
            for l in &lines[from..] {
                eprintln!("{l}");
            }
        }
        let reqs = self.s3proxy.requests();
        eprintln!("----- S3 proxy: {} requests; last 20: -----", reqs.len());
        for r in reqs.iter().rev().take(20).rev() {
            eprintln!("{} {} {}", r.at.format("%H:%M:%S%.3f"), r.method, r.target);
        }
    }
}

impl Drop for E2e {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "===== e2e {} failed after {:.1} s; namespace {} kept for inspection =====",
                self.test,
                self.started.elapsed().as_secs_f64(),
                self.ns
            );
            self.print_logs();
            let bad = self.log_problems();
            if !bad.is_empty() {
                eprintln!(
                    "----- problems in the operator logs (Forbidden, panics, finalizer failures) -----\n{}",
                    bad.join("\n")
                );
            }
        }
    }
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses an RFC 3339 time or a date.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}
