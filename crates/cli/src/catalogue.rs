//! `turbulence catalogue [NAME]`: the activities Turbulence runs, one
//! activity's page, or the JSON Schema of experiments for editors. All of
//! it read from the catalogue's declarations.

use std::io::Write;

use experiment::catalogue::{self, doc, schema};

use crate::exit;

/// What `turbulence catalogue` was asked for.
pub enum Ask<'a> {
    /// Every activity, by service.
    List,
    /// One activity's page (or why a chaosaws function does not run).
    One(&'a str),
    /// The JSON Schema of experiments.
    JsonSchema,
    /// The README's generated part.
    Markdown,
}

impl<'a> Ask<'a> {
    /// From the command line's arguments.
    pub fn of(name: Option<&'a str>, json_schema: bool, markdown: bool) -> Ask<'a> {
        match (name, json_schema, markdown) {
            (Some(name), _, _) => Ask::One(name),
            (None, true, _) => Ask::JsonSchema,
            (None, false, true) => Ask::Markdown,
            (None, false, false) => Ask::List,
        }
    }
}

/// The activity a name means: its full `module.func`, or that without the
/// `chaosaws.` prefix (`ecs.actions.stop_random_tasks`).
fn lookup(name: &str) -> Option<&'static catalogue::Activity> {
    catalogue::activities()
        .filter(|a| !a.internal)
        .find(|a| a.name == name || a.name.strip_prefix("chaosaws.") == Some(name))
}

/// The subcommand, from its arguments, printing to standard output.
pub fn command(name: Option<&str>, json_schema: bool, markdown: bool) -> u8 {
    run(
        Ask::of(name, json_schema, markdown),
        &mut std::io::stdout().lock(),
    )
}

/// Print what was asked to `out`; the exit code.
pub fn run(ask: Ask<'_>, out: &mut impl Write) -> u8 {
    let text = match ask {
        Ask::List => doc::listing(),
        Ask::Markdown => doc::markdown(),
        Ask::JsonSchema => {
            serde_json::to_string_pretty(&schema::experiment()).unwrap_or_default() + "\n"
        }
        Ask::One(name) => match lookup(name) {
            Some(a) => doc::page(a),
            None => {
                let full = if name.starts_with("chaosaws.") || name.starts_with("turbulence.") {
                    name.to_string()
                } else {
                    format!("chaosaws.{name}")
                };
                let why = match catalogue::refusals().find(|r| r.name == full) {
                    Some(r) => r.message(),
                    None => catalogue::Call::parse(&catalogue::CallSpec {
                        function: name.into(),
                        arguments: Default::default(),
                    })
                    .err()
                    .unwrap_or_default(),
                };
                let _ = writeln!(std::io::stderr(), "{why}");
                return exit::NOT_COMPLETED;
            }
        },
    };
    match out.write_all(text.as_bytes()) {
        Ok(()) => exit::OK,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: cannot write: {e}");
            exit::ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(ask: Ask<'_>) -> (u8, String) {
        let mut out = Vec::new();
        let code = run(ask, &mut out);
        (code, String::from_utf8(out).unwrap())
    }

    #[test]
    fn the_listing_shows_what_experiments_may_call() {
        let (code, text) = printed(Ask::List);
        assert_eq!(code, exit::OK);
        assert!(
            text.contains("action  chaosaws.ecs.actions.update_desired_count"),
            "{text}"
        );
        assert!(
            !text.contains("release_lock"),
            "internal activities are not listed"
        );
    }

    #[test]
    fn one_activity_has_its_arguments_undo_and_iam() {
        let (code, text) = printed(Ask::One("ecs.actions.update_desired_count"));
        assert_eq!(code, exit::OK);
        assert!(
            text.starts_with("chaosaws.ecs.actions.update_desired_count (action)"),
            "{text}"
        );
        assert!(text.contains("desired_count"), "{text}");
        assert!(text.contains("Undo: itself, with what it found"), "{text}");
        assert!(
            text.contains("ecs:UpdateService (on opted-in resources)"),
            "{text}"
        );
        assert!(
            text.contains("ECS service (must carry the opt-in tag)"),
            "{text}"
        );
    }

    #[test]
    fn a_refused_or_unknown_name_says_why() {
        let (code, text) = printed(Ask::One("ecs.actions.delete_cluster"));
        assert_eq!(code, exit::NOT_COMPLETED);
        assert!(text.is_empty());
        let (code, _) = printed(Ask::One("chaosaws.ecs.actions.stop_random_task"));
        assert_eq!(code, exit::NOT_COMPLETED);
    }

    #[test]
    fn the_schema_types_each_activitys_arguments() {
        let (code, text) = printed(Ask::JsonSchema);
        assert_eq!(code, exit::OK);
        let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
        let python = &schema["definitions"]["python"];
        let stop = python["allOf"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["if"]["properties"]["func"]["const"] == "stop_random_tasks")
            .unwrap();
        let args = &stop["then"]["properties"]["arguments"];
        assert_eq!(args["required"], serde_json::json!(["cluster"]));
        assert_eq!(args["additionalProperties"], false);
        assert_eq!(
            args["properties"]["task_percent"]["anyOf"][0]["maximum"],
            100
        );
    }
}
