//! `mongoshift.yaml`: named targets and storage settings, with `${VAR}` and
//! `${VAR:-default}` interpolation.
//!
//! Interpolation is lazy: a value is expanded when a command uses it, so an
//! unset variable for a target the command does not touch is not an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::exit::usage;

pub const DEFAULT_FILE: &str = "mongoshift.yaml";

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub targets: BTreeMap<String, Target>,
    #[serde(default)]
    pub storage: StorageConfig,
    /// Where the config came from, for messages. None when no file was read.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub uri: String,
    #[serde(default)]
    pub read_preference: Option<String>,
    /// The connection string `switch` writes for the application when this target is its
    /// NEW side (the tool keeps connecting with `uri`); interpolated like `uri`.
    #[serde(default)]
    pub app_uri: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Default backup location: `s3://bucket/prefix`, `file:///dir` or a path.
    #[serde(default)]
    pub backups: Option<String>,
    #[serde(default)]
    pub s3: S3Config,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub path_style: Option<bool>,
}

impl Config {
    /// Load `explicit` if given (it must exist), else `./mongoshift.yaml` when
    /// present, else an empty config.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        let path = match explicit {
            Some(p) => {
                if !p.exists() {
                    return Err(usage(format!(
                        "config file {} does not exist; pass an existing file to --config or drop the flag",
                        p.display()
                    )));
                }
                p.to_path_buf()
            }
            None => {
                let p = PathBuf::from(DEFAULT_FILE);
                if !p.exists() {
                    return Ok(Config::default());
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let mut cfg = Config::parse(&text, &path)?;
        cfg.source = Some(path);
        Ok(cfg)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml::from_str(text).map_err(|e| {
            let loc = e
                .location()
                .map(|l| format!(":{}:{}", l.line(), l.column()))
                .unwrap_or_default();
            usage(format!(
                "invalid config file {}{loc}: {}. Fix the file (see the README's \"Config file\" section) or point --config at another one",
                path.display(),
                strip_location(&e.to_string())
            ))
        })
    }

    fn name(&self) -> String {
        self.source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| DEFAULT_FILE.to_string())
    }

    /// A target by name, with its URI interpolated.
    pub fn target(&self, name: &str) -> Result<ResolvedTarget> {
        let Some(t) = self.targets.get(name) else {
            let known: Vec<&str> = self.targets.keys().map(String::as_str).collect();
            let hint = if self.source.is_none() {
                format!("no config file was found (looked for ./{DEFAULT_FILE}; use --config FILE)")
            } else if known.is_empty() {
                format!("{} defines no targets", self.name())
            } else {
                format!("{} defines: {}", self.name(), known.join(", "))
            };
            return Err(usage(format!("unknown target '{name}': {hint}")));
        };
        let uri = interpolate(&t.uri, &format!("targets.{name}.uri"), &self.name())?;
        Ok(ResolvedTarget {
            name: Some(name.to_string()),
            origin: Some(format!("targets.{name}.uri in {}", self.name())),
            uri,
            read_preference: t.read_preference.clone(),
        })
    }

    /// The config target whose URI is `uri` exactly, else the first whose hosts are `uri`'s
    /// (`exact` false): how to name a cluster given as a URI in a command we print.
    pub fn name_for(&self, uri: &str, exact: bool) -> Option<String> {
        let resolved: Vec<ResolvedTarget> = self
            .targets
            .keys()
            .filter_map(|n| self.target(n).ok())
            .collect();
        resolved
            .iter()
            .find(|t| t.uri == uri)
            .or_else(|| {
                (!exact).then(|| {
                    let h = crate::redact::hosts(uri);
                    resolved.iter().find(|t| crate::redact::hosts(&t.uri) == h)
                })?
            })
            .and_then(|t| t.name.clone())
    }

    /// A target's `app_uri`, interpolated; None when the target has none (or is unknown).
    pub fn app_uri(&self, name: &str) -> Result<Option<String>> {
        match self.targets.get(name).and_then(|t| t.app_uri.as_ref()) {
            Some(raw) => {
                let v = interpolate(raw, &format!("targets.{name}.app_uri"), &self.name())?;
                Ok((!v.is_empty()).then_some(v))
            }
            None => Ok(None),
        }
    }

    /// The default backup location, interpolated.
    pub fn backups_location(&self) -> Result<Option<String>> {
        match &self.storage.backups {
            Some(raw) => {
                let v = interpolate(raw, "storage.backups", &self.name())?;
                Ok((!v.is_empty()).then_some(v))
            }
            None => Ok(None),
        }
    }

    /// S3 settings with interpolation applied; empty strings mean "not set".
    pub fn s3(&self) -> Result<S3Config> {
        let f = |v: &Option<String>, key: &str| -> Result<Option<String>> {
            match v {
                Some(raw) => {
                    let s = interpolate(raw, key, &self.name())?;
                    Ok((!s.is_empty()).then_some(s))
                }
                None => Ok(None),
            }
        };
        Ok(S3Config {
            endpoint: f(&self.storage.s3.endpoint, "storage.s3.endpoint")?,
            region: f(&self.storage.s3.region, "storage.s3.region")?,
            path_style: self.storage.s3.path_style,
        })
    }
}

/// A connection target: from `--uri` directly or from a named config target.
#[derive(Debug, Clone)]
pub struct ResolvedTarget {
    pub name: Option<String>,
    /// Where the URI came from, for messages: `targets.NAME.uri in FILE`; None for --uri.
    pub origin: Option<String>,
    pub uri: String,
    pub read_preference: Option<String>,
}

impl ResolvedTarget {
    pub fn from_uri(uri: &str) -> Self {
        ResolvedTarget {
            name: None,
            origin: None,
            uri: uri.to_string(),
            read_preference: None,
        }
    }

    /// How to name this target in output: the config name, or the redacted host list.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => crate::redact::hosts(&self.uri),
        }
    }
}

/// serde_yaml appends " at line X column Y"; we print that as file:line:column instead.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Expand `${VAR}` and `${VAR:-default}` using the process environment.
pub fn interpolate(raw: &str, key: &str, file: &str) -> Result<String> {
    interpolate_with(raw, key, file, |name| std::env::var(name).ok())
}

fn interpolate_with(
    raw: &str,
    key: &str,
    file: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(usage(format!(
                "{file}: {key} has an unterminated '${{' in {raw:?}; close it with '}}'"
            )));
        };
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(usage(format!(
                "{file}: {key} has an invalid variable reference '${{{expr}}}'; use ${{NAME}} or ${{NAME:-default}}"
            )));
        }
        match (lookup(name), default) {
            (Some(v), _) if !(v.is_empty() && default.is_some()) => out.push_str(&v),
            (_, Some(d)) => out.push_str(d),
            (Some(v), None) => out.push_str(&v),
            (None, None) => {
                return Err(usage(format!(
                    "environment variable {name} is not set, but {file} uses it in {key}; \
                     export {name}=... or give a default with ${{{name}:-value}}"
                )))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{code_for, USAGE};

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn interpolation_forms() {
        let f = |s| interpolate_with(s, "k", "f.yaml", env);
        assert_eq!(f("a-${SET}-b").unwrap(), "a-value-b");
        assert_eq!(f("${UNSET:-dflt}").unwrap(), "dflt");
        assert_eq!(f("${EMPTY:-dflt}").unwrap(), "dflt");
        assert_eq!(f("${UNSET:-}").unwrap(), "");
        assert_eq!(f("${EMPTY}").unwrap(), "");
        assert_eq!(f("plain").unwrap(), "plain");
    }

    #[test]
    fn unset_variable_names_it() {
        let e =
            interpolate_with("${ATLAS_MONGO_URI}", "targets.atlas.uri", "m.yaml", env).unwrap_err();
        assert_eq!(code_for(&e), USAGE);
        let msg = e.to_string();
        assert!(
            msg.contains("ATLAS_MONGO_URI") && msg.contains("targets.atlas.uri"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_key_has_line_and_column() {
        let text = "targets:\n  legacy:\n    uri: x\n    urii: y\n";
        let e = Config::parse(text, Path::new("m.yaml")).unwrap_err();
        assert_eq!(code_for(&e), USAGE);
        let msg = e.to_string();
        assert!(msg.contains("m.yaml:4:5"), "{msg}");
        assert!(msg.contains("urii"), "{msg}");
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let text = "targets:\n  legacy: { uri: \"x\"\n";
        let msg = Config::parse(text, Path::new("m.yaml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("m.yaml:"), "{msg}");
    }

    #[test]
    fn parses_the_documented_example() {
        let text = r#"
targets:
  legacy: { uri: "${LEGACY_MONGO_URI}" }
  atlas:  { uri: "${ATLAS_MONGO_URI}", read_preference: secondaryPreferred, app_uri: "${ATLAS_APP_URI:-mongodb://app@h/predixi}" }
storage:
  backups: "s3://predixi-backups/mongo"
  s3: { endpoint: "${S3_ENDPOINT:-}", region: us-east-1, path_style: true }
"#;
        let c = Config::parse(text, Path::new("m.yaml")).unwrap();
        assert_eq!(c.targets.len(), 2);
        assert_eq!(
            c.targets["atlas"].read_preference.as_deref(),
            Some("secondaryPreferred")
        );
        assert_eq!(c.storage.s3.path_style, Some(true));
        assert_eq!(
            c.app_uri("atlas").unwrap().as_deref(),
            Some("mongodb://app@h/predixi")
        );
        assert_eq!(c.app_uri("legacy").unwrap(), None);
    }
}
