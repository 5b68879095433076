//! The subset of Spin's application manifest (`spin_manifest_version = 2`) that `comet` runs.
//!
//! Parsing is strict about what matters (routes, sources, stores, hosts, variables) and
//! tolerant of what does not affect serving (metadata, `files`, `watch` globs: unknown keys
//! are ignored; secrets are never printed because nothing here prints values), so a manifest written for
//! real `spin up` loads unchanged. Errors carry the file and line from the TOML parser.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// A loaded manifest plus the directory its relative paths are resolved against.
#[derive(Debug)]
pub struct Manifest {
    /// The directory containing the manifest; `source` and build `workdir` are relative to it.
    pub dir: PathBuf,
    /// Application-level variables with their declared defaults.
    pub variables: BTreeMap<String, VariableDecl>,
    /// HTTP triggers, in manifest order.
    pub http_triggers: Vec<HttpTrigger>,
    /// Components by id.
    pub components: BTreeMap<String, ComponentDecl>,
    /// The application name, used in logs and `spin-*` headers.
    pub name: String,
}

/// An application variable declaration (`[variables] name = { default = "x" }`).
#[derive(Debug, Deserialize, Clone, Default)]
pub struct VariableDecl {
    /// Value used when no provider (environment) supplies one.
    pub default: Option<String>,
    /// The application refuses to start without a value.
    #[serde(default)]
    pub required: bool,
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Clone)]
pub struct HttpTrigger {
    /// The route pattern, or `None` for a private route only reachable by service chaining.
    pub route: Option<String>,
    /// The component id that handles it.
    pub component: String,
}

/// One `[component.<id>]` table.
#[derive(Debug, Deserialize, Clone, Default)]
pub struct ComponentDecl {
    /// Path to the `.wasm` file, relative to the manifest.
    pub source: String,
    /// Key-value store labels the component may open.
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    /// Outbound hosts the component may reach (`scheme://host:port`, `*` wildcards).
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Component variables: values are templates over application variables.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// The command `comet up --build` runs before loading.
    #[serde(default)]
    pub build: Option<BuildDecl>,
    /// Environment variables given to the guest.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

/// `[component.<id>.build]`.
#[derive(Debug, Deserialize, Clone, Default)]
pub struct BuildDecl {
    /// Shell command to run.
    pub command: String,
    /// Directory to run it in, relative to the manifest.
    #[serde(default)]
    pub workdir: Option<String>,
}

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: i64,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    trigger: BTreeMap<String, Vec<RawTrigger>>,
    #[serde(default)]
    component: BTreeMap<String, ComponentDecl>,
}

#[derive(Deserialize)]
struct RawApplication {
    name: String,
}

#[derive(Deserialize)]
struct RawTrigger {
    route: RawRoute,
    component: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Path(String),
    Private { private: bool },
}

impl Manifest {
    /// Reads and validates a manifest file.
    ///
    /// # Errors
    /// The file is unreadable, is not TOML, names an unknown component, declares a route twice,
    /// or uses a manifest version other than 2.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        Self::parse(&text, path)
    }

    /// Parses manifest text; `path` is used for messages and relative paths.
    ///
    /// # Errors
    /// See [`Manifest::load`].
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            match line {
                Some(line) => anyhow::anyhow!(
                    "{}:{line}: invalid manifest: {}",
                    path.display(),
                    e.message()
                ),
                None => anyhow::anyhow!("{}: invalid manifest: {}", path.display(), e.message()),
            }
        })?;
        if raw.spin_manifest_version != 2 {
            bail!(
                "{}: unsupported spin_manifest_version {} (comet reads version 2)",
                path.display(),
                raw.spin_manifest_version
            );
        }
        for name in raw.variables.keys() {
            crate::variables::validate_name(name)
                .with_context(|| format!("{}: variable {name:?}", path.display()))?;
        }
        let mut http_triggers = Vec::new();
        let mut seen_routes = std::collections::BTreeSet::new();
        for (kind, triggers) in raw.trigger {
            if kind != "http" {
                tracing::warn!(trigger = %kind, "ignoring non-HTTP trigger");
                continue;
            }
            for t in triggers {
                if !raw.component.contains_key(&t.component) {
                    bail!(
                        "{}: trigger route {} names unknown component {:?}",
                        path.display(),
                        route_label(&t.route),
                        t.component
                    );
                }
                let route = match t.route {
                    RawRoute::Path(p) => {
                        if !p.starts_with('/') {
                            bail!("{}: route {p:?} must start with '/'", path.display());
                        }
                        if !seen_routes.insert(p.clone()) {
                            bail!("{}: duplicate route {p:?}", path.display());
                        }
                        Some(p)
                    }
                    RawRoute::Private { private: true } => None,
                    RawRoute::Private { private: false } => {
                        bail!(
                            "{}: `route = {{ private = false }}` is not a route",
                            path.display()
                        )
                    }
                };
                http_triggers.push(HttpTrigger {
                    route,
                    component: t.component,
                });
            }
        }
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        Ok(Self {
            dir,
            variables: raw.variables,
            http_triggers,
            components: raw.component,
            name: raw.application.name,
        })
    }

    /// Absolute path of a component's `.wasm`.
    pub fn source_path(&self, component: &ComponentDecl) -> PathBuf {
        self.dir.join(&component.source)
    }
}

fn route_label(route: &RawRoute) -> String {
    match route {
        RawRoute::Path(p) => p.clone(),
        RawRoute::Private { .. } => "(private)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
spin_manifest_version = 2
[application]
name = "demo"
[variables]
greeting = { default = "hi" }
key = { required = true, secret = true }
[[trigger.http]]
route = "/a/..."
component = "a"
[[trigger.http]]
route = { private = true }
component = "b"
[component.a]
source = "a.wasm"
key_value_stores = ["default"]
[component.a.variables]
greeting = "{{ greeting }}!"
[component.b]
source = "b.wasm"
"#;

    #[test]
    fn parses_routes_components_and_variables() {
        let m = Manifest::parse(GOOD, Path::new("dir/spin.toml")).expect("parses");
        assert_eq!(m.name, "demo");
        assert_eq!(m.http_triggers.len(), 2);
        assert_eq!(m.http_triggers[0].route.as_deref(), Some("/a/..."));
        assert_eq!(m.http_triggers[1].route, None);
        assert!(m.variables["key"].required);
        assert_eq!(m.source_path(&m.components["a"]), Path::new("dir/a.wasm"));
    }

    #[test]
    fn reports_file_and_line_of_a_syntax_error() {
        let text =
            "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \n";
        let err = Manifest::parse(text, Path::new("spin.toml")).expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.starts_with("spin.toml:5:"), "{msg}");
    }

    #[test]
    fn rejects_unknown_component_in_trigger() {
        let text = "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"nope\"\n";
        let err = Manifest::parse(text, Path::new("spin.toml")).expect_err("must fail");
        assert!(
            err.to_string().contains("unknown component \"nope\""),
            "{err}"
        );
    }
}
