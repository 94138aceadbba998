//! The command-line options of the apps, shared by `serve` (for its in-process
//! backends) and `backend`, and how they become a `SimConfig`.
//!
//! OS concept: the current working directory. A relative `--static` is resolved
//! against the directory the process was started in; without one, `default_site_dir`
//! tries `./site` and then the source tree's `site/` (a path compiled into the
//! binary), so `cargo run` and the built binary started elsewhere find the same files.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use clap::Args;

use super::currency::Rates;
use crate::lab::sim_backend::SimConfig;

#[derive(Debug, Clone, Args)]
pub struct AppArgs {
    /// Directory served under /site/ (default: ./site, or the source tree's site/).
    #[arg(long = "static", value_name = "DIR")]
    pub static_dir: Option<PathBuf>,

    /// Cache-Control max-age of static files, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub static_max_age: u64,

    /// Exchange rates in reais per unit, e.g. BRL_PER_USD=5.10,BRL_PER_EUR=5.60; named
    /// currencies change, new ones are added, the rest keep these defaults.
    #[arg(
        long,
        default_value = "BRL_PER_USD=5.10,BRL_PER_EUR=5.60",
        value_name = "RATES"
    )]
    pub rates: Rates,
}

/// The app settings after checking them, ready to build each backend's config.
#[derive(Debug, Clone)]
pub struct AppSettings {
    pub rates: Rates,
    pub static_dir: Option<PathBuf>,
    pub static_max_age: u64,
}

impl AppArgs {
    /// Checks the options: a `--static` directory given must exist. Without one, the
    /// repository's `site/` is used when it can be found, or none.
    pub fn settings(&self) -> Result<AppSettings, String> {
        let static_dir = match &self.static_dir {
            Some(dir) if dir.is_dir() => Some(dir.clone()),
            Some(dir) => return Err(format!("--static {}: no such directory", dir.display())),
            None => default_site_dir(),
        };
        Ok(AppSettings {
            rates: self.rates.clone(),
            static_dir,
            static_max_age: self.static_max_age,
        })
    }
}

impl AppSettings {
    /// The config of one simulated backend with these app settings.
    pub fn sim_config(&self, name: String, latency_ms: RangeInclusive<u64>) -> SimConfig {
        SimConfig {
            name,
            latency_ms,
            rates: self.rates.clone(),
            static_dir: self.static_dir.clone(),
            static_max_age: self.static_max_age,
            ..SimConfig::default()
        }
    }
}

/// `site/` in the current directory, else in the source tree this binary was built
/// from, so both `cargo run` and `./target/debug/roundhouse` find the shipped site.
fn default_site_dir() -> Option<PathBuf> {
    [
        Path::new("site").to_path_buf(),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("site"),
    ]
    .into_iter()
    .find(|dir| dir.is_dir())
}
