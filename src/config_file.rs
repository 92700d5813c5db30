//! `clasp relay --config clasp.toml` (issue 10): one TOML file holds every relay flag (the
//! key is the flag's name, `ws-port` or `ws_port`) and a list of bridges (`[[bridge]]`).
//! Precedence, highest first: command-line flags, `CLASP_*` environment variables, the
//! file, built-in defaults. The file's values are checked by the same parsers as the flags,
//! and every error names the file, line and key.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory};

use crate::bridge_cmd::BridgeSpec;
use crate::cli::Cli;

/// Why a config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// Not valid TOML (the parser's message has the line and column).
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What and where.
        message: String,
    },
    /// A key is unknown or its value is unusable.
    #[error("{path}:{line}: {key}: {message}")]
    Key {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// The key as written.
        key: String,
        /// Why.
        message: String,
    },
}

/// A parsed config file: relay flags as arguments, and the bridges it lists.
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    table: toml::Table,
    lines: HashMap<String, usize>,
    bridge_lines: Vec<usize>,
}

impl ConfigFile {
    /// Reads and parses `path` (syntax only; keys are checked by [`ConfigFile::relay_args`]).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let syntax = |e: &dyn std::fmt::Display| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        };
        let table: toml::Table = toml::from_str(&text).map_err(|e| syntax(&e))?;
        let spanned = toml::de::DeTable::parse(&text).map_err(|e| syntax(&e))?;
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let mut lines = HashMap::new();
        let mut bridge_lines = Vec::new();
        for (key, value) in spanned.get_ref().iter() {
            lines.insert(key.get_ref().to_string(), line_of(key.span().start));
            if key.get_ref().as_ref() == "bridge" {
                if let toml::de::DeValue::Array(items) = value.get_ref() {
                    bridge_lines = items.iter().map(|i| line_of(i.span().start)).collect();
                }
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            table,
            lines,
            bridge_lines,
        })
    }

    fn key_error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Key {
            path: self.path.clone(),
            line: self.lines.get(key).copied().unwrap_or(0),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// The relay arguments this file contributes, given what the command line already set
    /// (`given`: a flag id → where its value came from). Keys the command line or the
    /// environment already set are skipped; `CLASP_<FLAG>` variables (`--max-sessions` is
    /// `CLASP_MAX_SESSIONS`) that clap does not read itself are turned into arguments here,
    /// so every flag has one.
    pub fn relay_args(
        &self,
        given: &dyn Fn(&str) -> Option<ValueSource>,
    ) -> Result<Vec<OsString>, ConfigError> {
        let mut cli = Cli::command();
        cli.build();
        let Some(relay) = cli.find_subcommand("relay") else {
            return Ok(Vec::new());
        };
        let mut known = HashMap::new();
        let mut out = Vec::new();
        for arg in relay.get_arguments() {
            let (id, Some(long)) = (arg.get_id().as_str(), arg.get_long()) else {
                continue;
            };
            if id == "config" || id == "help" {
                continue;
            }
            let file_key = [id.to_string(), long.to_string(), long.replace('-', "_")]
                .into_iter()
                .find(|k| self.table.contains_key(k));
            if let Some(k) = &file_key {
                known.insert(k.clone(), ());
            }
            match given(id) {
                Some(ValueSource::CommandLine) | Some(ValueSource::EnvVariable) => continue,
                _ => {}
            }
            let flag = format!("--{long}");
            // Every flag has an environment variable, even where clap has none.
            let env_name = generic_env(long);
            if arg.get_env().is_none() {
                if let Some(value) = std::env::var_os(&env_name) {
                    push_env(&mut out, &flag, arg.get_action(), value);
                    continue;
                }
            }
            let Some(key) = file_key else { continue };
            let values = self.values(&key)?;
            let takes_value = !matches!(
                arg.get_action(),
                ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count
            );
            if !takes_value {
                match self.table.get(&key) {
                    Some(toml::Value::Boolean(true)) => out.push(flag.into()),
                    Some(toml::Value::Boolean(false)) => {}
                    _ => return Err(self.key_error(&key, "expected true or false")),
                }
                continue;
            }
            for value in &values {
                let one = format!("{flag}={value}");
                // The flag's own parser checks the value; other flags' requirements are
                // checked later, on the whole command line.
                if let Err(e) = relay.clone().try_get_matches_from(["relay", one.as_str()]) {
                    if matches!(
                        e.kind(),
                        clap::error::ErrorKind::InvalidValue
                            | clap::error::ErrorKind::ValueValidation
                            | clap::error::ErrorKind::UnknownArgument
                    ) {
                        return Err(self.key_error(&key, first_line(&e.to_string())));
                    }
                }
                out.push(one.into());
            }
        }
        for key in self.table.keys() {
            if key != "bridge" && !known.contains_key(key) {
                return Err(self.key_error(
                    key,
                    "unknown key (keys are the flags of `clasp relay --help`)",
                ));
            }
        }
        Ok(out)
    }

    /// A key's value as flag values: scalars as text, arrays as one value per item.
    fn values(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        let scalar = |v: &toml::Value| match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            _ => Err(self.key_error(key, "expected a string, number, boolean or a list of them")),
        };
        match self.table.get(key) {
            Some(toml::Value::Array(items)) => items.iter().map(scalar).collect(),
            Some(v) => Ok(vec![scalar(v)?]),
            None => Ok(Vec::new()),
        }
    }

    /// The `[[bridge]]` entries, each checked against its kind's settings.
    pub fn bridges(&self) -> Result<Vec<BridgeSpec>, ConfigError> {
        let Some(value) = self.table.get("bridge") else {
            return Ok(Vec::new());
        };
        let toml::Value::Array(items) = value else {
            return Err(self.key_error("bridge", "expected [[bridge]] tables"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.clone()
                    .try_into::<BridgeSpec>()
                    .map_err(|e| ConfigError::Key {
                        path: self.path.clone(),
                        line: self.bridge_lines.get(i).copied().unwrap_or(0),
                        key: format!("bridge[{i}]"),
                        message: first_line(&e.to_string()),
                    })
            })
            .collect()
    }
}

/// The environment variable of a flag clap reads none for: `--max-sessions` is
/// `CLASP_MAX_SESSIONS`.
fn generic_env(long: &str) -> String {
    format!("CLASP_{}", long.replace('-', "_").to_ascii_uppercase())
}

fn push_env(out: &mut Vec<OsString>, flag: &str, action: &ArgAction, value: OsString) {
    match action {
        ArgAction::SetTrue | ArgAction::Count => {
            let on = value.to_str().is_some_and(|v| {
                matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
            });
            if on {
                out.push(flag.into());
            }
        }
        _ => {
            let mut arg = OsString::from(format!("{flag}="));
            arg.push(value);
            out.push(arg);
        }
    }
}

fn first_line(message: &str) -> String {
    let line = message
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(message)
        .trim();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// The command line to parse, with a relay's `--config` file folded in: the file's
/// arguments go right after the `relay` subcommand, before the user's own. Other commands,
/// and a relay without `--config`, get `argv` back unchanged.
pub fn expand(argv: Vec<OsString>) -> Result<(Vec<OsString>, Vec<BridgeSpec>), ConfigError> {
    let Ok(matches) = Cli::command().try_get_matches_from(&argv) else {
        // Let the real parse report the command line's own errors.
        return Ok((argv, Vec::new()));
    };
    let Some(("relay", relay)) = matches.subcommand() else {
        return Ok((argv, Vec::new()));
    };
    let Some(path) = relay.get_one::<PathBuf>("config") else {
        return Ok((argv, Vec::new()));
    };
    let file = ConfigFile::load(path)?;
    let given = |id: &str| relay.value_source(id);
    let extra = file.relay_args(&given)?;
    let bridges = file.bridges()?;
    let at = argv
        .iter()
        .position(|a| a == "relay")
        .map_or(argv.len(), |i| i + 1);
    let mut out = argv[..at].to_vec();
    out.extend(extra);
    out.extend_from_slice(&argv[at..]);
    Ok((out, bridges))
}

/// A config file with every relay flag as a commented key, its help and default, and
/// commented `[[bridge]]` examples: `clasp config example` prints it and
/// `deploy/clasp.example.toml` is it (a test keeps the two equal).
pub fn example() -> String {
    use std::fmt::Write as _;
    let mut cli = Cli::command();
    cli.build();
    let mut out = String::from(
        "# clasp relay --config clasp.toml\n\
         #\n\
         # Every key is a flag of `clasp relay` (shown with its default, commented out).\n\
         # Precedence: command-line flags, then CLASP_<KEY> environment variables (upper case,\n\
         # dashes as underscores), then this file, then the defaults. Check a file with\n\
         # `clasp config check FILE`. Generated by `clasp config example`.\n",
    );
    let Some(relay) = cli.find_subcommand("relay") else {
        return out;
    };
    for arg in relay.get_arguments() {
        let (id, Some(long)) = (arg.get_id().as_str(), arg.get_long()) else {
            continue;
        };
        if id == "config" || id == "help" || arg.is_hide_set() {
            continue;
        }
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let _ = writeln!(out);
        for line in wrap(&help, 88) {
            let _ = writeln!(out, "# {line}");
        }
        let env = arg
            .get_env()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_else(|| generic_env(long));
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .map(|v| v.get_name().to_string())
            .collect();
        if !values.is_empty() {
            let _ = writeln!(out, "# One of: {}.", values.join(", "));
        }
        let _ = writeln!(out, "# Flag --{long}, environment {env}.");
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let line = match arg.get_action() {
            ArgAction::SetTrue => format!("{long} = false"),
            ArgAction::Append => format!("{long} = []"),
            _ => match defaults.first() {
                Some(d) if d.parse::<f64>().is_ok() => format!("{long} = {d}"),
                Some(d) => format!("{long} = {d:?}"),
                None => {
                    let name = arg
                        .get_value_names()
                        .and_then(|n| n.first())
                        .map_or_else(|| "VALUE".to_string(), |n| n.to_string());
                    format!("{long} = <{name}>   (no default)")
                }
            },
        };
        let _ = writeln!(out, "# {line}");
    }
    out.push_str(BRIDGE_EXAMPLES);
    out
}

/// Commented `[[bridge]]` tables: one per kind, with the settings each takes.
const BRIDGE_EXAMPLES: &str = "
# Bridges that run inside the relay, one [[bridge]] table each. `kind` is osc, mqtt (a
# client of an external broker), mqtt-server (the embedded broker), http, websocket, artnet,
# sacn, dmx or midi;
# the other keys are that bridge's settings (docs/bridges/<kind>.md).
#
# [[bridge]]
# kind = \"osc\"
# port = 9000
# namespace = \"/osc/stage\"
# send = [\"192.168.1.20:9001\"]
#
# [[bridge]]
# kind = \"mqtt\"
# broker = \"mqtt://127.0.0.1:1883\"
# namespace = \"/mqtt\"
#
# [[bridge]]
# kind = \"mqtt-server\"
# port = 1883
#
# [[bridge]]
# kind = \"http\"
# port = 8080
#
# [[bridge]]
# kind = \"websocket\"
# port = 9100
#
# [[bridge]]
# kind = \"artnet\"
# port = 6454
# universes = \"0-15\"
# merge = \"htp\"
# dest = [\"10.0.0.50\"]
#
# [[bridge]]
# kind = \"sacn\"
# port = 5568
# universes = \"1-16\"
# priority = 100
# source_name = \"clasp-sacn\"
#
# [[bridge]]
# kind = \"dmx\"
# port = \"/dev/ttyUSB0\"
# device = \"pro\"
# namespace = \"/dmx\"
#
# [[bridge]]
# kind = \"midi\"
# device = \"Launchpad\"
# namespace = \"/midi/launchpad\"
";

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
