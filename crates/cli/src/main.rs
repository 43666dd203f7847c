//! `turbulence`: validate Chaos Toolkit experiments offline, run them as
//! Step Functions executions and follow them, fetch their journals, and
//! render journals as HTML reports. The work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use turbulence_cli::commands::{self, RunOptions, Source};
use turbulence_cli::exit;
use turbulence_cli::vars::Vars;

#[derive(Parser)]
#[command(
    name = "turbulence",
    version,
    about = "Serverless chaos engineering on AWS Step Functions: validate, run and report Chaos Toolkit experiments",
    after_help = exit::help_all()
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--var` and `--var-file`, as `chaos run` takes them.
#[derive(Args)]
struct VarArgs {
    /// A configuration value, NAME=VALUE or NAME:TYPE=VALUE (TYPE: str, int,
    /// float, bool); may be repeated; wins over --var-file and the file
    #[arg(long = "var", value_name = "NAME[:TYPE]=VALUE")]
    vars: Vec<String>,
    /// A JSON or YAML file of {"configuration": {...}, "secrets": {...}};
    /// may be repeated, later files winning
    #[arg(long = "var-file", value_name = "FILE")]
    var_files: Vec<PathBuf>,
}

/// Where the AWS calls go.
#[derive(Args)]
struct Aws {
    /// Endpoint for Step Functions (e.g. the local stack, http://127.0.0.1:5000);
    /// default: the SDK's (AWS_ENDPOINT_URL, or AWS itself)
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// AWS region; default: the SDK's chain (AWS_REGION, the profile)
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Check experiment files offline, as Plan does before anything runs
    /// (the checks that need the account, such as abort alarms and guards,
    /// are left to the run)
    #[command(after_help = format!(
        "Prints `FILE: ok (N steps, M rollbacks)` or `FILE: invalid: <why>` per file, then what\nthe run adds (its expected duration).\n\n{}",
        exit::help("validate")
    ))]
    Validate {
        /// Experiment files (JSON, at most 1 MiB to read; Plan takes at most 64 KiB)
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The deployment's DefaultAbortAlarms parameter (comma-separated):
        /// alarms every experiment gets, so one that names none may still run
        #[arg(long, value_name = "NAMES", value_delimiter = ',')]
        default_abort_alarms: Vec<String>,
        /// The Region the deployment runs in, to check `aws_region` against;
        /// unknown: left to the run
        #[arg(long, env = "AWS_REGION", value_name = "REGION")]
        region: Option<String>,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Start an execution of an experiment, follow it step by step, write
    /// its journal and exit as `chaos run` does
    #[command(after_help = exit::help("run"))]
    Run {
        /// The experiment file (validated first; an invalid one is not started)
        #[arg(value_name = "FILE", required_unless_present = "parameter")]
        file: Option<PathBuf>,
        /// Run the experiment stored in this SSM parameter instead of a file
        #[arg(long, value_name = "NAME", conflicts_with = "file")]
        parameter: Option<String>,
        /// The Turbulence state machine (the stack's `StateMachineArn` output)
        #[arg(long, env = "TURBULENCE_STATE_MACHINE_ARN", value_name = "ARN")]
        state_machine_arn: String,
        #[command(flatten)]
        aws: Aws,
        /// Where to write the journal (`-`: standard output)
        #[arg(long, default_value = "journal.json", value_name = "PATH")]
        journal_path: PathBuf,
        /// The execution's name (default: turbulence-<title>-<unix ms>)
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Print the execution ARN and exit 0 without following it
        #[arg(long)]
        no_follow: bool,
        /// Seconds between history polls
        #[arg(long, default_value_t = 1.0, value_name = "SECONDS", value_parser = poll_seconds)]
        poll_seconds: f64,
        /// Dry run, as `chaos run --dry`: probes, actions, activities or
        /// pause are recorded as they would be called, not called
        #[arg(long, value_name = "MODE", value_parser = ["probes", "actions", "activities", "pause"])]
        dry: Option<String>,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Fetch the journal of an execution: its output if it succeeded, else
    /// the output of its last Journal state
    #[command(after_help = exit::help("journal"))]
    Journal {
        #[arg(value_name = "EXECUTION_ARN")]
        execution_arn: String,
        #[command(flatten)]
        aws: Aws,
        /// Write it to this file instead of standard output
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// Render a journal as one self-contained HTML file (no external
    /// resources): outcome, timeline, activities, load attack charts
    #[command(after_help = format!(
        "JOURNAL may also be a Journal state's output ({{journal, outcome}}) or a\ndead-letter message ({{execution, error, cause, journal}}).\n\n{}",
        exit::help("report")
    ))]
    Report {
        #[arg(value_name = "JOURNAL.json")]
        journal: PathBuf,
        /// Where to write the report (`-`: standard output)
        #[arg(long, default_value = "report.html", value_name = "PATH")]
        out: PathBuf,
    },
    /// List the activities Turbulence runs, document one (arguments,
    /// resources, undo, IAM), or write the JSON Schema of experiments
    #[command(
        after_help = "Exit codes: 0 printed, 1 NAME is not an activity (the reason is printed), 2 bad usage."
    )]
    Catalogue {
        /// An activity: `chaosaws.ecs.actions.stop_task`, or without `chaosaws.`
        #[arg(value_name = "NAME", conflicts_with_all = ["json_schema", "markdown"])]
        name: Option<String>,
        /// Write a JSON Schema (draft-07) of experiments, for editors
        #[arg(long, conflicts_with = "markdown")]
        json_schema: bool,
        /// Write the README's tables (scripts/readme-catalogue)
        #[arg(long, hide = true)]
        markdown: bool,
    },
}

fn poll_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.2..=60.0).contains(&v) => Ok(v),
        _ => Err(format!("expected seconds between 0.2 and 60, got {s}")),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            if e.kind() == clap::error::ErrorKind::MissingRequiredArgument
                && e.to_string().contains("--state-machine-arn")
            {
                eprintln!("\nhint: pass --state-machine-arn or set TURBULENCE_STATE_MACHINE_ARN to the stack's StateMachineArn output:\n  aws cloudformation describe-stacks --stack-name turbulence --query \"Stacks[0].Outputs[?OutputKey=='StateMachineArn'].OutputValue\" --output text");
            }
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let result = match cli.command {
        Command::Validate {
            files,
            default_abort_alarms,
            region,
            vars,
        } => Vars::load(&vars.vars, &vars.var_files).map(|vars| {
            // No deployment has a journal bucket yet: more than 48
            // hypothesis rounds are refused offline as Plan refuses them.
            let offline =
                turbulence_cli::validate::Offline::validate(default_abort_alarms, region, false);
            commands::validate(&files, &offline, &vars)
        }),
        Command::Report { journal, out } => commands::report(&journal, &out),
        Command::Catalogue {
            name,
            json_schema,
            markdown,
        } => Ok(turbulence_cli::catalogue::command(
            name.as_deref(),
            json_schema,
            markdown,
        )),
        Command::Run {
            file,
            parameter,
            state_machine_arn,
            aws,
            journal_path,
            name,
            no_follow,
            poll_seconds,
            dry,
            vars,
        } => {
            let source = match (file, parameter) {
                (_, Some(p)) => Source::Parameter(p),
                (Some(f), None) => Source::File(f),
                (None, None) => {
                    eprintln!("error: give an experiment FILE or --parameter NAME");
                    return ExitCode::from(exit::USAGE);
                }
            };
            let vars = match Vars::load(&vars.vars, &vars.var_files) {
                Ok(vars) => vars,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(e.exit_code());
                }
            };
            block_on(commands::run(RunOptions {
                source,
                state_machine_arn,
                endpoint_url: aws.endpoint_url,
                region: aws.region,
                journal_path,
                name,
                follow: !no_follow,
                poll: Duration::from_secs_f64(poll_seconds),
                dry,
                vars,
            }))
        }
        Command::Journal {
            execution_arn,
            aws,
            out,
        } => block_on(commands::journal(
            &execution_arn,
            aws.endpoint_url.as_deref(),
            aws.region.as_deref(),
            out.as_deref(),
        )),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn block_on<F: std::future::Future<Output = Result<u8, turbulence_cli::Error>>>(
    f: F,
) -> Result<u8, turbulence_cli::Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| turbulence_cli::Error::Other(format!("cannot start the async runtime: {e}")))?
        .block_on(f)
}
