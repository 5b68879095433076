//! `comet up --build`: runs each component's `[component.x.build]` command, like `spin build`.
//!
//! Identical commands in the same directory run once, so components built by one
//! `cargo build -p a -p b` share a single invocation (and a single compile of shared crates).

use std::collections::BTreeSet;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::manifest::Manifest;

/// Runs the build commands in manifest order, stopping at the first failure.
///
/// # Errors
/// A command cannot be started or exits non-zero.
pub fn run_builds(manifest: &Manifest) -> Result<()> {
    let mut done = BTreeSet::new();
    for (id, component) in &manifest.components {
        let Some(build) = &component.build else {
            continue;
        };
        let dir = match &build.workdir {
            Some(w) => manifest.dir.join(w),
            None => manifest.dir.clone(),
        };
        if !done.insert((build.command.clone(), dir.clone())) {
            continue;
        }
        eprintln!("Building component {id}: {}", build.command);
        let status = Command::new("sh")
            .arg("-c")
            .arg(&build.command)
            .current_dir(&dir)
            .status()
            .with_context(|| format!("component {id:?}: cannot run build command"))?;
        if !status.success() {
            bail!(
                "component {id:?}: build command failed ({status}): {}",
                build.command
            );
        }
    }
    Ok(())
}
