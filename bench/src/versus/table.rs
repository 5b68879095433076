//! The figures of a `versus` run and the Markdown table with Comet/Nchan ratios.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::loadgen::Flavor;

/// The three servers compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Target {
    CometKv,
    CometRedis,
    Nchan,
}

impl Target {
    pub(super) fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "comet-kv" => Self::CometKv,
            "comet-redis" => Self::CometRedis,
            "nchan" => Self::Nchan,
            other => bail!("unknown target {other:?}: comet-kv, comet-redis or nchan"),
        })
    }
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::CometKv => "Comet KV",
            Self::CometRedis => "Comet Redis",
            Self::Nchan => "Nchan",
        }
    }
    pub(super) fn flavor(self) -> Flavor {
        if self == Self::Nchan {
            Flavor::Nchan
        } else {
            Flavor::Comet
        }
    }
}

/// A figure: its value and the load generator's CPU seconds while it was measured.
#[derive(Clone, Copy, Debug)]
pub(super) struct Figure {
    pub(super) value: f64,
    pub(super) loadgen_cpu: f64,
}

/// How a row's Comet/Nchan ratio is read.
#[derive(Clone, Debug)]
pub(super) struct Row {
    label: String,
    unit: &'static str,
    lower_is_better: bool,
    /// The target for the ratio (≤ when lower is better, ≥ otherwise), if any.
    target: Option<f64>,
    /// Compare against this Nchan row instead of the same label (Nchan has no batch publish).
    nchan_row: Option<String>,
}

impl Row {
    pub(super) fn new(label: String, unit: &'static str, lower_is_better: bool) -> Self {
        Self {
            label,
            unit,
            lower_is_better,
            target: None,
            nchan_row: None,
        }
    }
    pub(super) fn target(mut self, ratio: f64) -> Self {
        self.target = Some(ratio);
        self
    }
    pub(super) fn against(mut self, nchan_row: &str) -> Self {
        self.nchan_row = Some(nchan_row.to_string());
        self
    }
}

/// Figures by row label, then target.
#[derive(Default)]
pub(super) struct Table {
    rows: Vec<Row>,
    cells: BTreeMap<(String, Target), Figure>,
}

impl Table {
    /// Records a figure.
    pub(super) fn put(&mut self, row: Row, t: Target, f: Figure) {
        println!(
            "  {:<12} {}: {} {} (load generator CPU {:.1} s)",
            t.name(),
            row.label,
            fmt_num(f.value),
            row.unit,
            f.loadgen_cpu
        );
        self.cells.insert((row.label.clone(), t), f);
        if !self.rows.iter().any(|r| r.label == row.label) {
            self.rows.push(row);
        }
    }

    pub(super) fn markdown(&self, targets: &[Target]) -> String {
        let mut s = String::from("| figure |");
        for t in targets {
            s.push_str(&format!(" {} |", t.name()));
        }
        let ratios: Vec<Target> = targets
            .iter()
            .copied()
            .filter(|t| *t != Target::Nchan && targets.contains(&Target::Nchan))
            .collect();
        for t in &ratios {
            s.push_str(&format!(" {}/Nchan |", t.name()));
        }
        s.push_str(" target |\n|---|");
        for _ in 0..targets.len() + ratios.len() {
            s.push_str("---:|");
        }
        s.push_str("---|\n");
        for row in &self.rows {
            s.push_str(&format!("| {} ({}) |", row.label, row.unit));
            for t in targets {
                match self.cells.get(&(row.label.clone(), *t)) {
                    Some(f) => s.push_str(&format!(
                        " {} <sub>lg {:.1}s</sub> |",
                        fmt_num(f.value),
                        f.loadgen_cpu
                    )),
                    None => s.push_str(" — |"),
                }
            }
            let nchan_label = row.nchan_row.as_ref().unwrap_or(&row.label);
            for t in &ratios {
                let c = self.cells.get(&(row.label.clone(), *t));
                let n = self.cells.get(&(nchan_label.clone(), Target::Nchan));
                match (c, n) {
                    (Some(c), Some(n)) if n.value > 0.0 => {
                        let r = c.value / n.value;
                        let mark = match row.target {
                            Some(goal) if row.lower_is_better == (r <= goal) => " ✓",
                            Some(_) => " ✗",
                            None => "",
                        };
                        s.push_str(&format!(" {r:.2}{mark} |"));
                    }
                    _ => s.push_str(" — |"),
                }
            }
            match row.target {
                Some(goal) => s.push_str(&format!(
                    " {} {goal}{} |",
                    if row.lower_is_better { "≤" } else { "≥" },
                    row.nchan_row
                        .as_ref()
                        .map_or(String::new(), |r| format!(" × Nchan \"{r}\"")),
                )),
                None => s.push_str(" |"),
            }
            s.push('\n');
        }
        s
    }
}

pub(super) fn fmt_num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
