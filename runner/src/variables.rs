//! Spin variables: application defaults, `SPIN_VARIABLE_<NAME>` overrides, component templates.
//!
//! Resolution happens once at startup so a missing required variable stops `comet up` with a
//! clear message instead of failing the first request. Secret values are never logged: the
//! only place they leave this module is the guest's `spin:variables/get` call.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result, bail};

use crate::manifest::{ComponentDecl, Manifest};

/// Checks a variable name against Spin's rules (lowercase letters, digits, underscores; starts
/// with a letter), so the same manifest is accepted by real Spin.
///
/// # Errors
/// The name breaks the rules.
pub fn validate_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok_first = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let ok_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok_first || !ok_rest || name.ends_with('_') || name.contains("__") {
        bail!(
            "invalid variable name {name:?}: use lowercase letters, digits and single underscores"
        );
    }
    Ok(())
}

/// Resolved application variables: name → value (secrets included, never printed).
#[derive(Debug, Default, Clone)]
pub struct AppVariables {
    values: HashMap<String, String>,
}

impl AppVariables {
    /// Resolves every declared variable from the environment or its default.
    ///
    /// # Errors
    /// A required variable has no value.
    pub fn resolve(manifest: &Manifest, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let mut values = HashMap::new();
        let mut missing = Vec::new();
        for (name, decl) in &manifest.variables {
            let env_name = format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase());
            match env(&env_name).or_else(|| decl.default.clone()) {
                Some(v) => {
                    values.insert(name.clone(), v);
                }
                None if decl.required => missing.push(format!("{name} (set {env_name})")),
                None => {}
            }
        }
        if !missing.is_empty() {
            bail!("required variables have no value: {}", missing.join(", "));
        }
        Ok(Self { values })
    }

    /// Expands a component variable template such as `"{{ greeting }}, world"`.
    ///
    /// # Errors
    /// The template names an undeclared or unset variable, or is malformed.
    pub fn expand(&self, template: &str) -> Result<String> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .with_context(|| format!("unclosed '{{{{' in template {template:?}"))?;
            let name = after[..end].trim();
            let value = self.values.get(name).with_context(|| {
                format!("template {template:?} names unknown variable {name:?}")
            })?;
            out.push_str(value);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The component's own variable map, which is what `spin:variables/get` reads.
    ///
    /// # Errors
    /// A template fails to expand.
    pub fn for_component(
        &self,
        id: &str,
        component: &ComponentDecl,
    ) -> Result<BTreeMap<String, String>> {
        component
            .variables
            .iter()
            .map(|(name, template)| {
                validate_name(name).with_context(|| format!("component {id:?}"))?;
                let value = self
                    .expand(template)
                    .with_context(|| format!("component {id:?} variable {name:?}"))?;
                Ok((name.clone(), value))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"
spin_manifest_version = 2
[application]
name = "v"
[variables]
greeting = { default = "hi" }
secret_key = { required = true, secret = true }
[component.c]
source = "c.wasm"
[component.c.variables]
message = "{{ greeting }}, {{secret_key}}!"
"#,
            Path::new("spin.toml"),
        )
        .expect("manifest")
    }

    #[test]
    fn env_overrides_default_and_templates_expand() {
        let m = manifest();
        let env = |k: &str| match k {
            "SPIN_VARIABLE_SECRET_KEY" => Some("s3".to_string()),
            "SPIN_VARIABLE_GREETING" => Some("hello".to_string()),
            _ => None,
        };
        let vars = AppVariables::resolve(&m, &env).expect("resolves");
        let c = vars
            .for_component("c", &m.components["c"])
            .expect("expands");
        assert_eq!(c["message"], "hello, s3!");
    }

    #[test]
    fn missing_required_variable_is_named() {
        let err = AppVariables::resolve(&manifest(), &|_| None).expect_err("must fail");
        assert!(
            err.to_string()
                .contains("secret_key (set SPIN_VARIABLE_SECRET_KEY)"),
            "{err}"
        );
    }

    #[test]
    fn rejects_bad_names() {
        for bad in ["", "Upper", "1x", "a-b", "a__b", "a_"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        validate_name("publish_key2").expect("valid");
    }
}
