//! Makes sure the Rust target a build needs is installed before the build runs.
//!
//! rustup installs the `targets` listed in `rust-toolchain.toml` only when it installs the
//! toolchain itself; on the many machines whose pinned toolchain is already there, the first
//! `cargo build --target wasm32-wasip2` fails with "can't find crate for `core`". So both
//! `comet up --build` and the test harness check the toolchain's sysroot first and add the
//! target with `rustup target add` when it is missing.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The `--target` a shell build command names (`--target X` or `--target=X`), if any.
pub fn target_of(command: &str) -> Option<&str> {
    let mut words = command.split_whitespace();
    while let Some(word) = words.next() {
        if word == "--target" {
            return words.next();
        }
        if let Some(target) = word.strip_prefix("--target=") {
            return Some(target);
        }
    }
    None
}

/// Installs `target` for the toolchain that applies in `dir` (its `rust-toolchain.toml`),
/// saying so in one line, unless it is installed already.
///
/// # Errors
/// `rustc` cannot be run, or the target is missing and `rustup` is absent or fails; the
/// message says what to run by hand.
pub fn ensure_target(dir: &Path, target: &str) -> Result<()> {
    if target_installed(dir, target)? {
        return Ok(());
    }
    eprintln!(
        "Installing the Rust target {target} (rustup target add {target}; once per toolchain)"
    );
    let status = Command::new("rustup")
        .args(["target", "add", target])
        .current_dir(dir)
        .status();
    match status {
        Ok(s) if s.success() && target_installed(dir, target)? => Ok(()),
        Ok(s) => bail!("`rustup target add {target}` failed ({s}); run it by hand in {dir:?}"),
        Err(e) => bail!(
            "the Rust target {target} is not installed and rustup cannot be run ({e}); \
             install it for your toolchain (e.g. `rustup target add {target}`)"
        ),
    }
}

/// Whether the toolchain used in `dir` has the standard library for `target`.
fn target_installed(dir: &Path, target: &str) -> Result<bool> {
    let output = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(dir)
        .output()
        .context("running `rustc --print sysroot` (is Rust installed?)")?;
    if !output.status.success() {
        bail!(
            "`rustc --print sysroot` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Ok(Path::new(&sysroot)
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_target_in_either_spelling() {
        assert_eq!(
            target_of("cargo build --release --target wasm32-wasip2 -p a"),
            Some("wasm32-wasip2")
        );
        assert_eq!(
            target_of("cargo build --target=wasm32-wasip1"),
            Some("wasm32-wasip1")
        );
        assert_eq!(target_of("npm run build"), None);
    }

    #[test]
    fn the_host_target_is_installed() {
        let host = "x86_64-unknown-linux-gnu";
        if cfg!(all(
            target_arch = "x86_64",
            target_os = "linux",
            target_env = "gnu"
        )) {
            assert!(target_installed(Path::new("."), host).expect("rustc runs"));
        }
        assert!(!target_installed(Path::new("."), "no-such-target").expect("rustc runs"));
    }
}
