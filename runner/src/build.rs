//! `comet up --build`: runs each component's `[component.x.build]` command, like `spin build`.
//!
//! Identical commands in the same directory run once, so components built by one
//! `cargo build -p a -p b` share a single invocation (and a single compile of shared crates).
//! Each command says which components it builds and how long it took, because the first build
//! of a fresh checkout compiles every crate for the wasm target and is silent for minutes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::manifest::Manifest;
use crate::toolchain;

/// Runs the build commands in component-id order, stopping at the first failure.
///
/// # Errors
/// A command's Rust target cannot be installed, or a command cannot be started or exits
/// non-zero.
pub fn run_builds(manifest: &Manifest) -> Result<()> {
    // (command, dir) → the components it builds, in order of first appearance.
    let mut builds: Vec<((String, PathBuf), Vec<&str>)> = Vec::new();
    let mut index: BTreeMap<(String, PathBuf), usize> = BTreeMap::new();
    for (id, component) in &manifest.components {
        let Some(build) = &component.build else {
            continue;
        };
        let dir = match &build.workdir {
            Some(w) => manifest.dir.join(w),
            None => manifest.dir.clone(),
        };
        let key = (build.command.clone(), dir);
        match index.get(&key) {
            Some(&i) => builds[i].1.push(id.as_str()),
            None => {
                index.insert(key.clone(), builds.len());
                builds.push((key, vec![id.as_str()]));
            }
        }
    }
    let started = Instant::now();
    for ((command, dir), ids) in &builds {
        let names = ids.join(", ");
        eprintln!("Building {names}: {command}");
        if let Some(target) = toolchain::target_of(command) {
            toolchain::ensure_target(dir, target)?;
            if !dir.join("target").join(target).exists() {
                eprintln!(
                    "  first build for {target}: every dependency compiles once (minutes); \
                     later builds take seconds"
                );
            }
        }
        let one = Instant::now();
        let status = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(dir)
            .status()
            .with_context(|| format!("{names}: cannot run build command"))?;
        if !status.success() {
            bail!("{names}: build command failed ({status}): {command}");
        }
        eprintln!("Built {names} in {:.1} s", one.elapsed().as_secs_f64());
    }
    if builds.len() > 1 {
        eprintln!(
            "All builds done in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
