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
    let result = match cli.command {
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

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn write_stdout(s: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write output: {e}")),
    }
}
