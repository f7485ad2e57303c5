//! The simulated market's flags (`--symbols`, `--universe`, `--seed`,
//! `--skew`), defined once and flattened into every command that runs the
//! generator: `serve`, `bench` and `feed record`. [`GeneratorArgs::into_config`]
//! is the one place they become a checked [`GeneratorConfig`].
//!
//! `--rate` is not here: `bench` takes a list of rates to sweep, so each
//! command declares its own and hands the value in. The help texts and
//! defaults below are `serve`'s; a command whose defaults differ sets them
//! with `#[command(mut_arg(..))]` beside its own flags.

use super::generator::{DEFAULT_SKEW, GeneratorConfig, GeneratorError};
use super::universe;
use clap::Args;
use std::path::PathBuf;

/// Flags of the simulated market.
#[derive(Debug, Clone, Args)]
pub struct GeneratorArgs {
    /// Number of simulated symbols [default: all of the universe].
    #[arg(long)]
    pub symbols: Option<usize>,
    /// Universe file: CSV with header symbol,price,volatility.
    #[arg(long)]
    pub universe: Option<PathBuf>,
    /// Seed of the simulated market [default: random, logged at start].
    #[arg(long)]
    pub seed: Option<u64>,
    /// How unevenly activity is spread: 0 = uniform round-robin, 1 = market-like.
    #[arg(long, default_value_t = DEFAULT_SKEW)]
    pub skew: f64,
}

impl GeneratorArgs {
    /// Loads the universe, sizes it to `--symbols` (all of it when not
    /// given), draws a seed when none is given, and checks every setting
    /// with `rate`. Errors name their flag, the same from every command.
    pub fn into_config(self, rate: f64) -> Result<GeneratorConfig, GeneratorError> {
        let base = match &self.universe {
            Some(path) => universe::load(path).map_err(|e| GeneratorError {
                flag: "universe",
                msg: e.to_string(),
            })?,
            None => universe::default_universe(),
        };
        let count = self.symbols.unwrap_or(base.len());
        let seed = self.seed.unwrap_or_else(rand::random);
        GeneratorConfig::new(universe::sized(base, count, seed), rate, seed, self.skew)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(symbols: Option<usize>, skew: f64) -> GeneratorArgs {
        GeneratorArgs {
            symbols,
            universe: None,
            seed: Some(3),
            skew,
        }
    }

    #[test]
    fn no_symbols_flag_means_the_whole_universe() {
        let whole = args(None, 1.0).into_config(100.0).unwrap();
        assert_eq!(whole.listings, universe::default_universe());
        let some = args(Some(1000), 0.0).into_config(100.0).unwrap();
        assert_eq!((some.listings.len(), some.seed, some.skew), (1000, 3, 0.0));
    }

    #[test]
    fn bad_values_name_their_flag() {
        let error = |a: GeneratorArgs, rate| a.into_config(rate).unwrap_err().to_string();
        assert_eq!(
            error(args(Some(0), 1.0), 100.0),
            "--symbols: must be at least 1"
        );
        assert_eq!(
            error(args(None, -1.0), 100.0),
            "--skew: must be 0 (uniform) or more"
        );
        assert!(error(args(None, 1.0), 0.0).starts_with("--rate: "));
        let missing = GeneratorArgs {
            universe: Some("no/such/universe.csv".into()),
            ..args(None, 1.0)
        };
        assert!(
            error(missing, 100.0).starts_with("--universe: no/such/universe.csv: "),
            "names the flag and the file"
        );
    }
}
