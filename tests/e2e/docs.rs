//! The README documents every setting a user can change: each Spin variable of `spin.toml`
//! (a row of the Configuration table) and each `comet up` flag (a row of the flag table).
//! A variable or flag added without its row fails here.

use crate::support::{run_comet, workspace_root};

fn readme() -> String {
    std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md")
}

#[test]
fn every_spin_variable_has_a_configuration_row() {
    let manifest = std::fs::read_to_string(workspace_root().join("spin.toml")).expect("spin.toml");
    let parsed: toml::Table = toml::from_str(&manifest).expect("spin.toml parses");
    let variables = parsed["variables"].as_table().expect("[variables]");
    assert!(variables.len() > 20, "spin.toml declares its variables");
    let readme = readme();
    let missing: Vec<&String> = variables
        .keys()
        .filter(|name| !readme.contains(&format!("| `{name}` |")))
        .collect();
    assert!(missing.is_empty(), "README has no row for {missing:?}");
}

#[test]
fn every_runner_flag_has_a_row() {
    let help = run_comet(&["up", "--help"], &[]);
    assert!(help.status.success(), "comet up --help failed");
    let text = String::from_utf8_lossy(&help.stdout);
    let flags: Vec<&str> = text
        .split_whitespace()
        .map(|w| w.trim_end_matches([',', '.']))
        .filter(|w| w.starts_with("--") && w.len() > 2 && *w != "--help" && *w != "--version")
        .map(|w| w.split('=').next().unwrap_or(w))
        .collect();
    assert!(flags.len() >= 10, "comet up has its flags: {flags:?}");
    let readme = readme();
    let missing: Vec<&&str> = flags
        .iter()
        .filter(|flag| !readme.contains(&format!("`{flag}`")))
        .collect();
    assert!(missing.is_empty(), "README has no row for {missing:?}");
}

#[test]
fn admin_endpoints_are_documented() {
    let readme = readme();
    for path in ["GET /metrics", "GET /healthz", "GET /livez"] {
        assert!(
            readme.contains(&format!("| `{path}` |")),
            "README lacks {path}"
        );
    }
}
