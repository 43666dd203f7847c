//! `--var NAME[:TYPE]=VALUE` and `--var-file FILE`, as Chaos Toolkit's
//! `chaos run` takes them: values put into the experiment's
//! `configuration` (and, from a var file, its `secrets`) before it is
//! validated and started, so a shipped experiment can be pointed at your
//! own cluster, service and alarm without editing it.
//!
//! Where Turbulence differs, it says so instead of ignoring: a `.env` var
//! file sets environment variables of the `chaos` process, but Turbulence's
//! `env` configuration is read in the Plan function's environment in AWS,
//! so such a file is refused; so is the `bytes` type, which JSON cannot
//! carry.

use std::path::Path;

use serde_json::{Map, Value};

use crate::files::{self, MAX_EXPERIMENT_FILE_BYTES};
use crate::Error;

/// What the var options add to an experiment, later ones winning (as
/// chaoslib merges them: files in order, then every `--var`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vars {
    pub configuration: Map<String, Value>,
    /// Scope → name → secret (a literal or a `{"type": ...}` reference).
    pub secrets: Map<String, Value>,
}

impl Vars {
    pub fn is_empty(&self) -> bool {
        self.configuration.is_empty() && self.secrets.is_empty()
    }

    /// The var files, then the `--var`s, merged.
    pub fn load(vars: &[String], files: &[std::path::PathBuf]) -> Result<Vars, Error> {
        let mut out = Vars::default();
        for path in files {
            let file = from_file(path)?;
            out.configuration.extend(file.configuration);
            for (scope, entries) in file.secrets {
                let into = out
                    .secrets
                    .entry(scope)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let (Value::Object(into), Value::Object(entries)) = (into, entries) {
                    into.extend(entries);
                }
            }
        }
        for var in vars {
            let (name, value) =
                parse_var(var).map_err(|m| Error::Usage(format!("--var {var}: {m}")))?;
            out.configuration.insert(name, value);
        }
        Ok(out)
    }

    /// The experiment with these values in its `configuration` and
    /// `secrets` (added, or replacing what it had under the same names).
    pub fn apply(&self, mut doc: Value) -> Value {
        let Some(top) = doc.as_object_mut() else {
            return doc; // validation names what is wrong with it
        };
        if !self.configuration.is_empty() {
            let config = top
                .entry("configuration")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(config) = config {
                config.extend(self.configuration.clone());
            }
        }
        for (scope, entries) in &self.secrets {
            let secrets = top
                .entry("secrets")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(secrets) = secrets {
                let into = secrets
                    .entry(scope.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let (Value::Object(into), Value::Object(entries)) = (into, entries) {
                    into.extend(entries.clone());
                }
            }
        }
        doc
    }

    /// Secrets given as plain text: they travel in the execution's input,
    /// which Step Functions keeps in its history (`scope.name`).
    pub fn literal_secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (scope, entries) in &self.secrets {
            for (name, value) in entries.as_object().into_iter().flatten() {
                if value.is_string() {
                    out.push(format!("{scope}.{name}"));
                }
            }
        }
        out
    }
}

/// `name=value` (a string) or `name:type=value`, type one of `str`/`string`,
/// `int`/`integer`, `float`/`number`, `bool` (chaoslib's names).
pub fn parse_var(text: &str) -> Result<(String, Value), String> {
    let (key, raw) = text
        .split_once('=')
        .ok_or("expected NAME=VALUE or NAME:TYPE=VALUE")?;
    let (name, kind) = match key.rsplit_once(':') {
        Some((name, kind)) => (name, Some(kind)),
        None => (key, None),
    };
    if name.trim().is_empty() {
        return Err("the name is empty".into());
    }
    let bad = |what: &str| format!("'{raw}' is not {what}");
    let value = match kind {
        None | Some("str" | "string") => Value::String(raw.to_string()),
        Some("int" | "integer") => {
            Value::from(raw.trim().parse::<i64>().map_err(|_| bad("an integer"))?)
        }
        Some("float" | "number") => {
            let x: f64 = raw.trim().parse().map_err(|_| bad("a number"))?;
            serde_json::Number::from_f64(x)
                .map(Value::Number)
                .ok_or_else(|| bad("a finite number"))?
        }
        Some("bool") => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::Bool(true),
            "false" | "0" | "no" | "off" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        Some("bytes") => {
            return Err("type 'bytes' cannot be carried in an experiment's JSON; use str".into())
        }
        Some(other) => return Err(format!("unknown type '{other}' (str, int, float or bool)")),
    };
    Ok((name.to_string(), value))
}

/// A JSON or YAML var file: `{"configuration": {...}, "secrets": {...}}`.
fn from_file(path: &Path) -> Result<Vars, Error> {
    let name = files::display(path);
    let bytes = files::read_capped(path, MAX_EXPERIMENT_FILE_BYTES, "a var file")?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let doc: Value = match ext.as_str() {
        "json" => files::parse_json(path, &bytes)?,
        "yaml" | "yml" => {
            let text = files::utf8(path, &bytes)?;
            serde_yaml::from_str(text).map_err(|e| Error::Invalid {
                path: name.clone(),
                message: format!("not valid YAML: {e}"),
            })?
        }
        _ => {
            return Err(Error::Invalid {
                path: name,
                message: "a var file must be .json, .yaml or .yml with \"configuration\" and \"secrets\"; a .env file would set environment variables of this process, but an experiment's env configuration is read in the Plan function's environment in AWS, so Turbulence cannot honour it".into(),
            })
        }
    };
    let invalid = |message: String| Error::Invalid {
        path: name.clone(),
        message,
    };
    let Value::Object(mut top) = doc else {
        return Err(invalid(
            "must be an object with \"configuration\" and/or \"secrets\"".into(),
        ));
    };
    for key in top.keys() {
        if key != "configuration" && key != "secrets" {
            return Err(invalid(format!(
                "unknown key '{key}' (a var file holds \"configuration\" and \"secrets\")"
            )));
        }
    }
    let section = |top: &mut Map<String, Value>, key: &str| match top.remove(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(invalid(format!("\"{key}\" must be an object"))),
    };
    let configuration = section(&mut top, "configuration")?;
    let secrets = section(&mut top, "secrets")?;
    for (scope, entries) in &secrets {
        if !entries.is_object() {
            return Err(invalid(format!(
                "secrets.{scope} must be an object of secrets"
            )));
        }
    }
    Ok(Vars {
        configuration,
        secrets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vars_are_typed_as_chaoslib_types_them() {
        assert_eq!(
            parse_var("service=web").unwrap(),
            ("service".into(), json!("web"))
        );
        assert_eq!(parse_var("n:int=3").unwrap(), ("n".into(), json!(3)));
        assert_eq!(parse_var("s:float=0.5").unwrap(), ("s".into(), json!(0.5)));
        assert_eq!(parse_var("b:bool=yes").unwrap(), ("b".into(), json!(true)));
        assert_eq!(
            parse_var("url=http://a/b?c=d").unwrap().1,
            json!("http://a/b?c=d")
        );
        assert!(parse_var("n:int=three")
            .unwrap_err()
            .contains("not an integer"));
        assert!(parse_var("x:bytes=ab").unwrap_err().contains("bytes"));
        assert!(parse_var("x:list=ab")
            .unwrap_err()
            .contains("unknown type 'list'"));
        assert!(parse_var("novalue").unwrap_err().contains("NAME=VALUE"));
        assert!(parse_var("=v").unwrap_err().contains("empty"));
    }

    #[test]
    fn files_then_vars_fill_configuration_and_secrets() {
        let dir = std::env::temp_dir().join(format!("turbulence-vars-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let json_file = dir.join("a.json");
        std::fs::write(
            &json_file,
            r#"{"configuration": {"cluster": "from-json", "service": "json"}, "secrets": {"api": {"token": {"type": "ssm", "name": "t"}}}}"#,
        )
        .unwrap();
        let yaml_file = dir.join("b.yaml");
        std::fs::write(
            &yaml_file,
            "configuration:\n  service: from-yaml\nsecrets:\n  api:\n    key: plain\n",
        )
        .unwrap();
        let vars = Vars::load(&["service=from-var".into()], &[json_file, yaml_file]).unwrap();
        assert_eq!(vars.configuration["cluster"], "from-json");
        assert_eq!(vars.configuration["service"], "from-var");
        assert_eq!(vars.secrets["api"]["token"]["type"], "ssm");
        assert_eq!(vars.literal_secrets(), vec!["api.key".to_string()]);

        let doc = json!({"title": "t", "configuration": {"cluster": "c", "keep": 1}});
        let doc = vars.apply(doc);
        assert_eq!(
            doc["configuration"],
            json!({"cluster": "from-json", "service": "from-var", "keep": 1})
        );
        assert_eq!(doc["secrets"]["api"]["key"], "plain");

        let env_file = dir.join("vars.env");
        std::fs::write(&env_file, "AWS_REGION=eu-west-1\n").unwrap();
        let err = Vars::load(&[], &[env_file]).unwrap_err().to_string();
        assert!(err.contains("cannot honour"), "{err}");
        let odd = dir.join("odd.json");
        std::fs::write(&odd, r#"{"configuration": {}, "extensions": []}"#).unwrap();
        assert!(Vars::load(&[], &[odd])
            .unwrap_err()
            .to_string()
            .contains("unknown key 'extensions'"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
