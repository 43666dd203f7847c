//! One function per subcommand; each returns the process exit code
//! ([`crate::exit`]) or an error that names what was wrong.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::files::{self, MAX_JOURNAL_FILE_BYTES};
use crate::vars::Vars;
use crate::{aws, exit, journal, report, validate, Error};

/// `turbulence validate FILE...`: one line per file on stdout. Exits 1
/// when an experiment is invalid, 3 when a file could not be read as one
/// (unreadable, not UTF-8, not JSON), whichever is worse.
pub fn validate(paths: &[PathBuf], offline: &validate::Offline, vars: &Vars) -> u8 {
    let mut code = exit::OK;
    let mut out = std::io::stdout().lock();
    for path in paths {
        let result = validate::check_file(path, offline, vars);
        if let Err(e) = &result {
            code = code.max(e.exit_code());
        }
        let _ = writeln!(out, "{}", validate::line(path, &result));
        if let Ok((_, valid)) = &result {
            for note in valid.notes() {
                let _ = writeln!(out, "  {note}");
            }
        }
    }
    code
}

/// Where the experiment of a run comes from.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    /// An SSM parameter the Plan function reads.
    Parameter(String),
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub source: Source,
    pub state_machine_arn: String,
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub journal_path: PathBuf,
    pub name: Option<String>,
    pub follow: bool,
    pub poll: Duration,
    /// A dry-run mode, set in the experiment's `turbulence` extension.
    pub dry: Option<String>,
    /// `--var` / `--var-file` values for the experiment's configuration.
    pub vars: Vars,
}

/// Put a dry-run mode into the experiment's `turbulence` extension (added
/// when it has none).
pub fn with_dry_run(mut doc: Value, mode: &str) -> Value {
    let ext = doc
        .as_object_mut()
        .map(|o| o.entry("extensions").or_insert_with(|| json!([])));
    if let Some(Value::Array(list)) = ext {
        match list.iter_mut().find(|e| e["name"] == "turbulence") {
            Some(e) => e["dry_run"] = json!(mode),
            None => list.push(json!({"name": "turbulence", "dry_run": mode})),
        }
    }
    doc
}

/// `turbulence run`: validate (for a file), start, follow, write the
/// journal, exit as `chaos run` does. Ctrl-C leaves the execution running
/// and says how to stop it.
pub async fn run(o: RunOptions) -> Result<u8, Error> {
    aws::check_arn(&o.state_machine_arn, "stateMachine", "--state-machine-arn")?;
    let (input, title) = match &o.source {
        // The deployment's default abort alarms are not known here: Plan
        // checks that the experiment has one.
        Source::File(path) => {
            let offline = validate::Offline {
                default_abort_alarms: None,
                region: o.region.clone(),
                // Plan knows whether the deployment has a journal bucket.
                journal_bucket: None,
            };
            match validate::check_file(path, &offline, &o.vars) {
                Ok((doc, valid)) => (doc, Some(valid.experiment.title)),
                Err(e) => {
                    let code = e.exit_code();
                    eprintln!("{}", validate::line(path, &Err(e)));
                    if code == exit::NOT_COMPLETED {
                        eprintln!("not started: Plan would refuse it too");
                    }
                    return Ok(code);
                }
            }
        }
        Source::Parameter(name) if !o.vars.is_empty() => {
            return Err(Error::Usage(format!(
                "--var and --var-file change an experiment file; the one in {name} is read by Plan as it is stored: publish it with the values you want"
            )))
        }
        Source::Parameter(name) => (json!({ "experiment_parameter": name }), None),
    };
    for secret in o.vars.literal_secrets() {
        eprintln!("warning: secret {secret} from a var file is plain text: it travels in the execution's input, which Step Functions keeps in its history; prefer {{\"type\": \"ssm\", \"name\": ...}}");
    }
    let input = match (&o.dry, &o.source) {
        (Some(mode), Source::File(_)) => with_dry_run(input, mode),
        (Some(_), Source::Parameter(_)) => {
            return Err(Error::Usage(
                "--dry works on a file (a published experiment is read by Plan as stored)".into(),
            ))
        }
        (None, _) => input,
    };
    // Listening before the execution starts: a Ctrl-C from then on says how
    // to stop it (a listener made later would miss an early one, and the
    // default handler would end the process without a word).
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Error::Other(format!("cannot listen for Ctrl-C: {e}")))?;
    let client = aws::connect(o.endpoint_url.as_deref(), o.region.as_deref()).await?;
    let name = o
        .name
        .clone()
        .unwrap_or_else(|| execution_name(title.as_deref(), unix_millis()));
    let arn = aws::start(&client, &o.state_machine_arn, &name, &input.to_string()).await?;
    if !o.follow {
        println!("{arn}");
        return Ok(exit::OK);
    }
    // Progress goes to stdout, unless the journal does.
    let journal_to_stdout = o.journal_path == Path::new("-");
    let say = |line: &str| {
        if journal_to_stdout {
            eprintln!("{line}");
        } else {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    };
    say(&format!("execution {arn}"));
    let followed = tokio::select! {
        r = aws::follow(&client, &arn, o.poll, say) => r?,
        _ = interrupt.recv() => {
            eprintln!("{}", interrupted_message(&arn, o.endpoint_url.as_deref()));
            return Ok(exit::INTERRUPTED);
        }
    };
    let ended = aws::describe(&client, &arn).await?;
    let journal = match journal::of_execution(&arn, &ended, &followed) {
        Ok(j) => j,
        Err(why) => {
            eprintln!("{why}");
            return Ok(exit::NOT_COMPLETED);
        }
    };
    files::write_json(&o.journal_path, &journal)?;
    if journal_to_stdout {
        eprintln!("{}", journal::summary(&journal));
    } else {
        say(&format!(
            "journal written to {}: {}",
            o.journal_path.display(),
            journal::summary(&journal)
        ));
    }
    Ok(journal::exit_code(&journal))
}

/// What Ctrl-C prints: the run goes on in AWS.
pub fn interrupted_message(arn: &str, endpoint_url: Option<&str>) -> String {
    let endpoint = endpoint_url
        .map(|u| format!(" --endpoint-url {u}"))
        .unwrap_or_default();
    format!(
        "\ninterrupted: the execution keeps running in Step Functions (its rollbacks and journal too).\n\
         execution: {arn}\n\
         its journal, once it ends:  turbulence journal {arn}{endpoint}\n\
         to stop it (the janitor then runs the rollbacks):\n  \
         aws stepfunctions stop-execution --execution-arn {arn}{endpoint}"
    )
}

/// `turbulence-<title>-<millis>`: readable in the console, unique, within
/// Step Functions' 80 characters of letters, digits, `-` and `_`.
pub fn execution_name(title: Option<&str>, millis: u128) -> String {
    let mut slug = String::new();
    for c in title.unwrap_or("").chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        format!("turbulence-{millis}")
    } else {
        format!("turbulence-{slug}-{millis}")
    }
}

fn unix_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// `turbulence journal ARN`: the journal to `out` (stdout by default).
pub async fn journal(
    execution_arn: &str,
    endpoint_url: Option<&str>,
    region: Option<&str>,
    out: Option<&Path>,
) -> Result<u8, Error> {
    aws::check_arn(execution_arn, "execution", "EXECUTION_ARN")?;
    let client = aws::connect(endpoint_url, region).await?;
    let ended = aws::describe(&client, execution_arn).await?;
    let events = if ended.status == "SUCCEEDED" && ended.output.is_some() {
        Vec::new()
    } else {
        // Newest first: the last Journal exit is near the end.
        aws::events_after(&client, execution_arn, 0, |e| {
            e.is_state_exited() && e.state.as_deref() == Some("Journal")
        })
        .await?
    };
    let journal = journal::of_execution(execution_arn, &ended, &events).map_err(Error::Other)?;
    let out = out.unwrap_or(Path::new("-"));
    files::write_json(out, &journal)?;
    if out != Path::new("-") {
        eprintln!(
            "journal written to {}: {}",
            out.display(),
            journal::summary(&journal)
        );
    }
    Ok(exit::OK)
}

/// `turbulence report JOURNAL`: the HTML report to `out`.
pub fn report(journal_path: &Path, out: &Path) -> Result<u8, Error> {
    let doc = files::read_json(journal_path, MAX_JOURNAL_FILE_BYTES, "a journal file")?;
    let doc: Value = journal::unwrap(doc);
    let html = report::render(&doc).map_err(|message| Error::Invalid {
        path: files::display(journal_path),
        message,
    })?;
    files::write(out, &html)?;
    if out != Path::new("-") {
        eprintln!(
            "report written to {} ({} KiB): {}",
            out.display(),
            html.len().div_ceil(1024),
            journal::summary(&doc)
        );
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_are_short_and_safe() {
        assert_eq!(
            execution_name(Some("The ML service recovers (ECS)!"), 42),
            "turbulence-the-ml-service-recovers-ecs-42"
        );
        assert_eq!(execution_name(Some("ÄÖ ü"), 1), "turbulence-1");
        assert_eq!(execution_name(None, 1), "turbulence-1");
        let long = execution_name(Some(&"word ".repeat(100)), u128::from(u64::MAX));
        assert!(long.len() <= 80, "{long}");
        assert!(long.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn ctrl_c_says_how_to_stop_the_execution() {
        let m = interrupted_message("arn:aws:states:x", Some("http://127.0.0.1:5000"));
        assert!(m.contains(
            "aws stepfunctions stop-execution --execution-arn arn:aws:states:x --endpoint-url http://127.0.0.1:5000"
        ));
        assert!(m.contains("keeps running"));
    }
}

#[cfg(test)]
mod dry_run_tests {
    use super::*;

    #[test]
    fn the_dry_run_mode_goes_into_the_turbulence_extension() {
        let doc = json!({"title": "t", "extensions": [{"name": "other"}, {"name": "turbulence", "time_scale": 0.5}]});
        let out = with_dry_run(doc, "actions");
        assert_eq!(out["extensions"][1]["dry_run"], "actions");
        assert_eq!(out["extensions"][1]["time_scale"], 0.5);
        let out = with_dry_run(json!({"title": "t"}), "pause");
        assert_eq!(
            out["extensions"],
            json!([{"name": "turbulence", "dry_run": "pause"}])
        );
        // And Plan accepts what it wrote.
        let mut doc: Value =
            serde_json::from_str(include_str!("../../../experiments/ecs-random-task.json"))
                .unwrap();
        doc = with_dry_run(doc, "activities");
        let e = experiment::Experiment::parse(&doc).unwrap();
        assert_eq!(
            e.extension.dry_run,
            Some(experiment::model::DryRun::Activities)
        );
    }
}
