//! The `gallring` command: `crd`, `plan` (offline preview), and the hosts.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use gallring::api;
use gallring::cli::plan as plan_cmd;

/// Retention enforcement for call recordings in S3-compatible object storage.
#[derive(Parser)]
#[command(name = "gallring", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print all CustomResourceDefinitions as one multi-document YAML (as committed in crds/).
    Crd,
    /// Preview, offline, what would be tagged, held and deleted, and when.
    Plan {
        /// A manifest file or a directory of *.yaml files (RetentionPolicy, RecordingBucket,
        /// LegalHold).
        #[arg(long, short = 'm')]
        manifests: PathBuf,
        /// A JSON Lines listing: {"key","lastModified","size","tags","metadata","versionId"}.
        #[arg(long)]
        objects: PathBuf,
        /// The moment to plan for (RFC 3339); default: now.
        #[arg(long, value_parser = parse_at)]
        at: Option<DateTime<Utc>>,
        /// Which RecordingBucket (`name` or `namespace/name`) when the manifests hold several.
        #[arg(long)]
        bucket: Option<String>,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Why one recording is still in the bucket (kind, purposes, deadline and its rule, holds
    /// and floors, its tag and the lifecycle rule that expires it), or when and by whom it was
    /// removed, from gallring's journal. Read-only. With --manifests, the bucket as the files
    /// say and the default AWS credential chain; without, the RecordingBucket as the cluster
    /// has it (current kubeconfig; installed as `kubectl-gallring`, this is
    /// `kubectl gallring explain KEY --bucket NAME -n NAMESPACE`), with its Secret's credentials.
    Explain {
        /// A manifest file or a directory of *.yaml files; without it, the cluster.
        #[arg(long, short = 'm')]
        manifests: Option<PathBuf>,
        /// The object key.
        key: String,
        /// Which RecordingBucket: with --manifests, `name` or `namespace/name` when they hold
        /// several; from the cluster, its name (required).
        #[arg(long, required_unless_present = "manifests")]
        bucket: Option<String>,
        /// The RecordingBucket's namespace in the cluster (default: the kubeconfig's).
        #[arg(long, short = 'n', conflicts_with = "manifests")]
        namespace: Option<String>,
        /// A version id (versioned buckets); default: the latest version.
        #[arg(long)]
        version_id: Option<String>,
        /// The moment to explain for (RFC 3339); default: now.
        #[arg(long, value_parser = parse_at)]
        at: Option<DateTime<Utc>>,
    },
    /// The retention part of the record of processing (GDPR Art. 30(1)(f)) from the
    /// RetentionPolicies: per controller, purpose and artifact kind the legal basis, retention
    /// (kept at least / deleted by), what it counts from and use limits; then the hold reasons
    /// with what a released hold keeps. Read-only and offline.
    Records {
        /// A manifest file or a directory of *.yaml files.
        #[arg(long, short = 'm')]
        manifests: PathBuf,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = gallring::cli::records::Format::Markdown)]
        output: gallring::cli::records::Format,
    },
    /// Evidence for an auditor, from the journal and the bucket: every disposition in the
    /// period (key, kind, purposes and legal basis, deadline, the rule or decision, how it was
    /// confirmed), every hold applied and released, every object still overdue, as CSV and
    /// JSON Lines, and summary.json (counts, the journal's head; signed with the journal key
    /// when given). Read-only towards the store. With --manifests, the default AWS credential
    /// chain; without, the RecordingBucket as the cluster has it.
    Evidence {
        /// A manifest file or a directory of *.yaml files; without it, the cluster.
        #[arg(long, short = 'm')]
        manifests: Option<PathBuf>,
        /// Which RecordingBucket (required from the cluster).
        #[arg(long, required_unless_present = "manifests")]
        bucket: Option<String>,
        /// The RecordingBucket's namespace in the cluster (default: the kubeconfig's).
        #[arg(long, short = 'n', conflicts_with = "manifests")]
        namespace: Option<String>,
        /// Start of the period (RFC 3339 or date); default: the journal's first record.
        #[arg(long, value_parser = parse_at)]
        from: Option<DateTime<Utc>>,
        /// End of the period, exclusive; default: now.
        #[arg(long, value_parser = parse_at)]
        to: Option<DateTime<Utc>>,
        /// Directory for the files (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Signs summary.json with this key (as for the journal's seals).
        #[arg(long, env = "GALLRING_JOURNAL_SIGNING_KEY")]
        journal_signing_key: Option<PathBuf>,
    },
    /// A report a person reads: one self-contained HTML page (inline CSS and SVG charts, no
    /// scripts, no external requests) with what is kept now and why (objects and bytes per
    /// kind and purpose), deletions per day by whom, upcoming deletions, holds by reason and
    /// age, and what is overdue. Read-only. With --manifests, the default AWS credential chain;
    /// without, the RecordingBucket as the cluster has it.
    Report {
        /// A manifest file or a directory of *.yaml files; without it, the cluster.
        #[arg(long, short = 'm')]
        manifests: Option<PathBuf>,
        /// Which RecordingBucket (required from the cluster).
        #[arg(long, required_unless_present = "manifests")]
        bucket: Option<String>,
        /// The RecordingBucket's namespace in the cluster (default: the kubeconfig's).
        #[arg(long, short = 'n', conflicts_with = "manifests")]
        namespace: Option<String>,
        /// Start of the period (RFC 3339 or date); default: the journal's first record.
        #[arg(long, value_parser = parse_at)]
        from: Option<DateTime<Utc>>,
        /// End of the period, exclusive; default: now.
        #[arg(long, value_parser = parse_at)]
        to: Option<DateTime<Utc>>,
        /// The HTML file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// The journal as evidence: verify its hash chain and signed seals, or make a signing key.
    Journal {
        #[command(subcommand)]
        action: JournalAction,
    },
    /// Reconcile every RecordingBucket in the manifests against its S3 store, on each bucket's
    /// scan interval, serving /metrics, /healthz and /readyz. Credentials come from the
    /// default AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, web identity).
    Run {
        /// A manifest file or a directory of *.yaml files.
        #[arg(long, short = 'm')]
        manifests: PathBuf,
        /// One pass over every bucket, then exit: non-zero if any pass failed, or left objects
        /// unreconciled or undeleted.
        #[arg(long)]
        once: bool,
        /// Where to serve metrics and health endpoints; `none` to disable.
        #[arg(long, default_value = "127.0.0.1:9090")]
        metrics_addr: String,
        /// Objects per listing page (at most 1000).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i32).range(1..=1000))]
        page_size: i32,
        /// Per-object S3 requests in flight at once.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=512))]
        concurrency: u16,
        /// Operator deletions stop (with a Degraded condition) while the local clock and the
        /// object store's (response Date headers) differ by more than this many seconds.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=86400))]
        max_clock_skew_seconds: u32,
        /// First-seen creation times per journal shard under the state prefix (tuning: a
        /// pass holds the shards of the keys it lists; the default suits any bucket).
        #[arg(long, default_value_t = gallring::state::seen::SHARD_ENTRIES as u32, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        seen_shard_entries: u32,
        /// Attempts per S3 request (retries back off with jitter).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=20))]
        max_attempts: u32,
        /// Timeout of one S3 request attempt, in seconds.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
        request_timeout: u64,
        /// Directory for each bucket's local index (a cache of what gallring last saw of every
        /// object, so that a steady pass costs a listing). Default: in memory, warm from the
        /// snapshot in the state location at start.
        #[arg(long, env = "GALLRING_INDEX_DIR")]
        index_dir: Option<PathBuf>,
        /// The store's lifecycle day in seconds (86400). Test stores shorten it (Ceph RGW's
        /// `rgw lc debug interval`, as scripts/s3-up.sh sets to 10): gallring then attributes a
        /// version expired after N such "days" to its lifecycle rule, not to someone else.
        #[arg(long, default_value_t = 86_400, value_parser = clap::value_parser!(u32).range(1..=86_400))]
        lifecycle_day_seconds: u32,
        /// A file with the journal's Ed25519 signing key (64 hex characters, from `gallring
        /// journal keygen`): every journal segment is then sealed, and `gallring journal
        /// verify --public-key` proves the journal was not rewritten. Default: unsigned.
        #[arg(long, env = "GALLRING_JOURNAL_SIGNING_KEY")]
        journal_signing_key: Option<PathBuf>,
        /// Log as JSON lines instead of text.
        #[arg(long)]
        json_logs: bool,
    },
    /// Run the Kubernetes operator (in cluster, or out of cluster with the current kubeconfig):
    /// controllers for RecordingBucket, LegalHold and RetentionPolicy behind a leader Lease.
    Operator {
        /// Where to serve /metrics, /healthz and /readyz.
        #[arg(long, default_value = "0.0.0.0:9090")]
        metrics_addr: std::net::SocketAddr,
        /// Watch only this namespace (default: all namespaces).
        #[arg(long, env = "GALLRING_WATCH_NAMESPACE")]
        namespace: Option<String>,
        /// Name of the leader-election Lease.
        #[arg(long, default_value = "gallring-leader")]
        lease_name: String,
        /// Namespace of the Lease (default: POD_NAMESPACE, then the watched or current namespace).
        #[arg(long, env = "POD_NAMESPACE")]
        lease_namespace: Option<String>,
        /// This replica's identity in the Lease (default: POD_NAME, then the host name).
        #[arg(long, env = "POD_NAME")]
        identity: Option<String>,
        /// Per-object S3 requests in flight at once.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=512))]
        concurrency: u16,
        /// Operator deletions stop (with a Degraded condition) while the local clock and the
        /// object store's (response Date headers) differ by more than this many seconds.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=86400))]
        max_clock_skew_seconds: u32,
        /// Namespaces whose Secrets may be read for `spec.s3.credentials.secretRef`
        /// (comma-separated). Default: the watched namespace with --namespace, none without.
        #[arg(long, env = "GALLRING_SECRET_NAMESPACES", value_delimiter = ',')]
        secret_namespaces: Vec<String>,
        /// Read credentials Secrets in every namespace (needs a ClusterRole for Secrets).
        #[arg(long, env = "GALLRING_SECRETS_CLUSTER_WIDE")]
        secrets_cluster_wide: bool,
        /// Let RecordingBuckets without a credentials Secret use the operator's own cloud
        /// identity (the default AWS chain, e.g. IRSA). Off: such buckets are refused.
        #[arg(long, env = "GALLRING_ALLOW_AMBIENT_CREDENTIALS")]
        allow_ambient_credentials: bool,
        /// Seconds a Lease is valid without renewal (other replicas wait this long).
        #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..=3600))]
        lease_duration_seconds: u64,
        /// Seconds the leader keeps writing without a successful renewal; must be less than
        /// the lease duration, so it stops before another replica can take over.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        renew_deadline_seconds: u64,
        /// Seconds between renewals and between attempts to take the Lease.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3600))]
        retry_period_seconds: u64,
        /// Attempts per S3 request (retries back off with jitter).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=20))]
        max_attempts: u32,
        /// Timeout of one S3 request attempt, in seconds.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
        request_timeout: u64,
        /// Directory for each bucket's local index (a cache of what gallring last saw of every
        /// object, so that a steady pass costs a listing). Default: in memory, warm from the
        /// snapshot in the state location at start.
        #[arg(long, env = "GALLRING_INDEX_DIR")]
        index_dir: Option<PathBuf>,
        /// A file with the journal's Ed25519 signing key (64 hex characters, from `gallring
        /// journal keygen`): every journal segment is then sealed, and `gallring journal
        /// verify --public-key` proves the journal was not rewritten. Default: unsigned.
        #[arg(long, env = "GALLRING_JOURNAL_SIGNING_KEY")]
        journal_signing_key: Option<PathBuf>,
        /// Log as JSON lines instead of text.
        #[arg(long)]
        json_logs: bool,
    },
}

#[derive(Subcommand)]
enum JournalAction {
    /// Read every journal segment from the first and check the hash chain (no gap, nothing
    /// altered or reordered), every seal's signature and place in the chain, and the
    /// checkpoint. Exits non-zero naming the first problem. With --manifests, the default AWS
    /// credential chain; without, the RecordingBucket as the cluster has it, its Secret, and
    /// its status.journalPublicKey as the expected key.
    Verify {
        /// A manifest file or a directory of *.yaml files; without it, the cluster.
        #[arg(long, short = 'm')]
        manifests: Option<PathBuf>,
        /// Which RecordingBucket (required from the cluster).
        #[arg(long, required_unless_present = "manifests")]
        bucket: Option<String>,
        /// The RecordingBucket's namespace in the cluster (default: the kubeconfig's).
        #[arg(long, short = 'n', conflicts_with = "manifests")]
        namespace: Option<String>,
        /// The expected signer (64 hex characters, printed by `gallring journal keygen`).
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Write a new Ed25519 signing key (a 32-byte seed as 64 hex characters, owner-only) to
    /// FILE and print its public key. An existing file is never overwritten.
    Keygen {
        /// Where to write the key, e.g. journal-signing.key (store it in a Secret).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Aligned columns for people, sorted by deadline, with a summary.
    Table,
    /// One JSON object per line.
    Json,
}

fn parse_at(s: &str) -> Result<DateTime<Utc>, String> {
    gallring::retention::classify::parse_instant(s).ok_or_else(|| {
        format!(
            "`{s}` is not an RFC 3339 timestamp (e.g. 2027-01-31T00:00:00Z) or a date (2027-01-31)"
        )
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One TLS crypto provider for the Kubernetes client and the AWS SDK alike; without it,
    // rustls cannot pick one at the first TLS connection and the process panics.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let result = match cli.command {
        Command::Operator {
            metrics_addr,
            namespace,
            lease_name,
            lease_namespace,
            identity,
            concurrency,
            max_clock_skew_seconds,
            secret_namespaces,
            secrets_cluster_wide,
            allow_ambient_credentials,
            lease_duration_seconds,
            renew_deadline_seconds,
            retry_period_seconds,
            max_attempts,
            request_timeout,
            index_dir,
            journal_signing_key,
            json_logs,
        } => {
            let signer = load_signer(journal_signing_key.as_deref());
            let lease = gallring::controller::leader::LeaseTiming {
                lease_duration: std::time::Duration::from_secs(lease_duration_seconds),
                renew_deadline: std::time::Duration::from_secs(renew_deadline_seconds),
                retry_period: std::time::Duration::from_secs(retry_period_seconds),
            };
            match lease.check().and(signer) {
                Err(e) => Err(e),
                Ok(signer) => {
                    init_tracing(json_logs);
                    let identity = identity
                        .or_else(|| std::env::var("HOSTNAME").ok())
                        .unwrap_or_else(|| format!("gallring-{}", std::process::id()));
                    // Namespace mode reads Secrets of the watched namespace unless told otherwise.
                    let mut namespaces: Vec<String> = secret_namespaces
                        .into_iter()
                        .map(|n| n.trim().to_string())
                        .filter(|n| !n.is_empty())
                        .collect();
                    if namespaces.is_empty()
                        && let Some(ns) = &namespace
                    {
                        namespaces.push(ns.clone());
                    }
                    let opts = gallring::controller::OperatorOptions {
                        namespace,
                        lease_name,
                        lease_namespace,
                        identity,
                        lease,
                        pass: gallring::reconcile::PassConfig {
                            page_size: 1000,
                            concurrency: usize::from(concurrency),
                            max_clock_skew: chrono::Duration::seconds(i64::from(
                                max_clock_skew_seconds,
                            )),
                            signer,
                            ..Default::default()
                        },
                        secrets: gallring::controller::SecretAccess {
                            namespaces,
                            cluster_wide: secrets_cluster_wide,
                            allow_ambient: allow_ambient_credentials,
                        },
                        max_attempts,
                        request_timeout: std::time::Duration::from_secs(request_timeout),
                        indexes: std::sync::Arc::new(gallring::state::index::Indexes::new(
                            index_dir,
                        )),
                    };
                    run_operator(metrics_addr, opts)
                }
            }
        }
        Command::Run {
            manifests,
            once,
            metrics_addr,
            page_size,
            concurrency,
            max_clock_skew_seconds,
            max_attempts,
            request_timeout,
            index_dir,
            lifecycle_day_seconds,
            journal_signing_key,
            json_logs,
            seen_shard_entries,
        } => match load_signer(journal_signing_key.as_deref()) {
            Err(e) => Err(e),
            Ok(signer) => run_host(
                &manifests,
                once,
                &metrics_addr,
                page_size,
                concurrency,
                max_clock_skew_seconds,
                max_attempts,
                request_timeout,
                index_dir,
                (signer, lifecycle_day_seconds, seen_shard_entries),
                json_logs,
            ),
        },
        Command::Report {
            manifests,
            bucket,
            namespace,
            from,
            to,
            out,
        } => {
            let now =
                chrono::DurationRound::duration_trunc(Utc::now(), chrono::TimeDelta::seconds(1))
                    .unwrap_or_else(|_| Utc::now());
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_stack_size(WORKER_STACK)
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))
                .and_then(|rt| {
                    rt.block_on(gallring::cli::report_html::run(
                        manifests.as_deref(),
                        bucket.as_deref(),
                        namespace.as_deref(),
                        // Up to the end of this second: `now` is truncated, and a pass
                        // that just ran may have written records later in the same second.
                        (from, to.unwrap_or(now + chrono::TimeDelta::seconds(1))),
                        now,
                        &out,
                    ))
                    .map_err(|e| e.to_string())
                })
                .and_then(|text| write_stdout(&text))
        }
        Command::Evidence {
            manifests,
            bucket,
            namespace,
            from,
            to,
            out,
            journal_signing_key,
        } => load_signer(journal_signing_key.as_deref()).and_then(|signer| {
            let now =
                chrono::DurationRound::duration_trunc(Utc::now(), chrono::TimeDelta::seconds(1))
                    .unwrap_or_else(|_| Utc::now());
            // `now` is cut to the second; records written earlier in that second count.
            let to = to.unwrap_or(now + chrono::TimeDelta::seconds(1));
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_stack_size(WORKER_STACK)
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))
                .and_then(|rt| {
                    rt.block_on(evidence(
                        manifests.as_deref(),
                        bucket.as_deref(),
                        namespace.as_deref(),
                        (from, to),
                        now,
                        &out,
                        signer.as_deref(),
                    ))
                })
                .and_then(|text| write_stdout(&text))
        }),
        Command::Journal {
            action: JournalAction::Keygen { out },
        } => gallring::cli::journal::keygen(&out)
            .map_err(|e| e.to_string())
            .and_then(|public| {
                write_stdout(&format!(
                    "wrote the signing key to {}\npublic key {public}\n",
                    out.display()
                ))
            }),
        Command::Journal {
            action:
                JournalAction::Verify {
                    manifests,
                    bucket,
                    namespace,
                    public_key,
                },
        } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_stack_size(WORKER_STACK)
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))
            .and_then(|rt| {
                rt.block_on(gallring::cli::journal::verify_bucket(
                    manifests.as_deref(),
                    bucket.as_deref(),
                    namespace.as_deref(),
                    public_key.as_deref(),
                ))
                .map_err(|e| e.to_string())
            })
            .and_then(|text| write_stdout(&text)),
        Command::Explain {
            manifests,
            key,
            bucket,
            namespace,
            version_id,
            at,
        } => {
            let now = at.unwrap_or_else(Utc::now);
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_stack_size(WORKER_STACK)
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))
                .and_then(|rt| {
                    rt.block_on(async {
                        match (&manifests, &bucket) {
                            (Some(m), _) => {
                                gallring::cli::explain::run(
                                    m,
                                    bucket.as_deref(),
                                    &key,
                                    version_id.as_deref(),
                                    now,
                                )
                                .await
                            }
                            (None, b) => {
                                gallring::cli::explain::run_cluster(
                                    namespace.as_deref(),
                                    b.as_deref().unwrap_or_default(),
                                    &key,
                                    version_id.as_deref(),
                                    now,
                                )
                                .await
                            }
                        }
                    })
                    .map_err(|e| e.to_string())
                })
                .and_then(|text| write_stdout(&text))
        }
        Command::Records { manifests, output } => gallring::cli::records::run(&manifests, output)
            .map_err(|e| e.to_string())
            .and_then(|text| write_stdout(&text)),
        Command::Crd => api::crds_yaml()
            .map_err(|e| format!("cannot render CRDs: {e}"))
            .and_then(|y| write_stdout(&y)),
        Command::Plan {
            manifests,
            objects,
            at,
            bucket,
            output,
        } => {
            // The host reads the clock; the engine never does.
            let now = at.unwrap_or_else(Utc::now);
            plan_cmd::run(&manifests, &objects, bucket.as_deref(), now)
                .map_err(|e| e.to_string())
                .and_then(|report| {
                    let text = match output {
                        Format::Table => plan_cmd::render_table(&report),
                        Format::Json => {
                            eprintln!("{}", plan_cmd::summary_line(&report));
                            plan_cmd::render_json(&report)
                        }
                    };
                    write_stdout(&text)
                })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn")
    });
    // Colour only on a terminal: logs written to files stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// `gallring evidence` from manifests or from the cluster.
async fn evidence(
    manifests: Option<&std::path::Path>,
    bucket: Option<&str>,
    namespace: Option<&str>,
    period: (Option<DateTime<Utc>>, DateTime<Utc>),
    now: DateTime<Utc>,
    out: &std::path::Path,
    signer: Option<&gallring::state::seal::Signer>,
) -> Result<String, String> {
    let (b, settings, _) = gallring::cli::explain::resolve(manifests, bucket, namespace)
        .await
        .map_err(|e| e.to_string())?;
    if period.0.is_some_and(|f| f >= period.1) {
        return Err("--from must be before --to".into());
    }
    gallring::cli::evidence::run(settings, &b, period, now, out, signer)
        .await
        .map_err(|e| e.to_string())
}

/// The journal's signing key, read before anything starts: a bad file is named and nothing
/// runs.
fn load_signer(
    path: Option<&std::path::Path>,
) -> Result<Option<std::sync::Arc<gallring::state::seal::Signer>>, String> {
    path.map(|p| {
        gallring::state::seal::Signer::load(p)
            .map(std::sync::Arc::new)
            .map_err(|e| format!("--journal-signing-key: {e}"))
    })
    .transpose()
}

/// A pass is one deep future (listing, per-object writes, journal, deletions); debug builds
/// keep every await point's locals, so the 2 MiB default is too tight for them.
const WORKER_STACK: usize = 8 * 1024 * 1024;

#[allow(clippy::too_many_arguments)]
fn run_host(
    manifests: &std::path::Path,
    once: bool,
    metrics_addr: &str,
    page_size: i32,
    concurrency: u16,
    max_clock_skew_seconds: u32,
    max_attempts: u32,
    request_timeout: u64,
    index_dir: Option<PathBuf>,
    (signer, lifecycle_day_seconds, seen_shard_entries): (
        Option<std::sync::Arc<gallring::state::seal::Signer>>,
        u32,
        u32,
    ),
    json_logs: bool,
) -> Result<(), String> {
    let metrics_addr = match metrics_addr {
        "none" | "" => None,
        a => Some(a.parse().map_err(|e| {
            format!("--metrics-addr {a}: not an address such as 127.0.0.1:9090 ({e})")
        })?),
    };
    init_tracing(json_logs);
    let opts = gallring::cli::run::RunOptions {
        once,
        metrics_addr,
        pass: gallring::reconcile::PassConfig {
            page_size,
            concurrency: usize::from(concurrency),
            max_clock_skew: chrono::Duration::seconds(i64::from(max_clock_skew_seconds)),
            signer,
            lifecycle_day: chrono::Duration::seconds(i64::from(lifecycle_day_seconds)),
            seen_shard_entries: seen_shard_entries as usize,
            ..Default::default()
        },
        max_attempts,
        request_timeout: std::time::Duration::from_secs(request_timeout),
        indexes: std::sync::Arc::new(gallring::state::index::Indexes::new(index_dir)),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(WORKER_STACK)
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime
        .block_on(gallring::cli::run::run(manifests, opts))
        .map_err(|e| e.to_string())
}

fn run_operator(
    metrics_addr: std::net::SocketAddr,
    opts: gallring::controller::OperatorOptions,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(WORKER_STACK)
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let metrics = std::sync::Arc::new(
            gallring::metrics::Metrics::new().map_err(|e| format!("metrics: {e}"))?,
        );
        let listener = gallring::metrics::bind(metrics_addr)
            .await
            .map_err(|e| format!("cannot serve metrics on {metrics_addr}: {e}"))?;
        tokio::spawn(gallring::metrics::serve(listener, metrics.clone()));
        let client = kube::Client::try_default().await.map_err(|e| {
            format!("cannot reach the Kubernetes API (in-cluster config or KUBECONFIG): {e}")
        })?;
        gallring::controller::run(client, metrics, opts, gallring::cli::run::shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    })
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn write_stdout(s: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write output: {e}")),
    }
}
