//! Symbol universes for the generator: which symbols exist, their starting
//! prices and annualised volatilities. The default universe is the large
//! US-listed companies in `feeds/universe-us.csv` (embedded), extended with
//! generated names when `--symbols` asks for more.

use std::path::Path;

/// One symbol of a universe.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub symbol: String,
    pub price: f64,
    /// Annualised volatility, e.g. 0.3 for 30 %.
    pub volatility: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum UniverseError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {msg}")]
    Row {
        path: String,
        line: u64,
        msg: String,
    },
    #[error("{path}: no symbols in the file")]
    Empty { path: String },
}

const DEFAULT_UNIVERSE: &str = include_str!("../../feeds/universe-us.csv");

/// The embedded universe of real tickers.
pub fn default_universe() -> Vec<Listing> {
    parse(DEFAULT_UNIVERSE.as_bytes(), "feeds/universe-us.csv").expect("embedded universe is valid")
}

/// Reads a universe file: CSV with header `symbol,price,volatility`.
pub fn load(path: &Path) -> Result<Vec<Listing>, UniverseError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| UniverseError::Read {
        path: name.clone(),
        source,
    })?;
    parse(&bytes, &name)
}

fn parse(bytes: &[u8], path: &str) -> Result<Vec<Listing>, UniverseError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let row_error = |line: u64, msg: String| UniverseError::Row {
        path: path.to_string(),
        line,
        msg,
    };
    let mut listings = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            row_error(line, e.to_string())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize, name: &str| {
            record
                .get(i)
                .ok_or_else(|| row_error(line, format!("column {name}: missing")))
        };
        let symbol = field(0, "symbol")?.to_string();
        if !crate::protocol::is_valid_symbol(&symbol) {
            return Err(row_error(
                line,
                format!("column symbol: {symbol:?} is not a valid symbol"),
            ));
        }
        let number = |i: usize, name: &str| -> Result<f64, UniverseError> {
            let text = field(i, name)?;
            match text.parse::<f64>() {
                Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
                _ => Err(row_error(
                    line,
                    format!("column {name}: expected a positive number, got {text:?}"),
                )),
            }
        };
        listings.push(Listing {
            symbol,
            price: number(1, "price")?,
            volatility: number(2, "volatility")?,
        });
    }
    if listings.is_empty() {
        return Err(UniverseError::Empty {
            path: path.to_string(),
        });
    }
    Ok(listings)
}

/// Cuts or extends `base` to exactly `count` listings. Extra symbols get
/// generated names (`SYM0501`, ...) and prices and volatilities drawn from
/// `seed`, so the same flags give the same market.
pub fn sized(mut base: Vec<Listing>, count: usize, seed: u64) -> Vec<Listing> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x05ee_d0f5_ca1e);
    base.truncate(count);
    let mut next = base.len();
    while base.len() < count {
        next += 1;
        let symbol = format!("SYM{next:04}");
        if base.iter().any(|l| l.symbol == symbol) {
            continue;
        }
        base.push(Listing {
            symbol,
            price: (rng.random_range(5.0f64..500.0) * 100.0).round() / 100.0,
            volatility: rng.random_range(0.15..0.8),
        });
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_universe_is_real_tickers() {
        let universe = default_universe();
        assert!(universe.len() >= 100, "{}", universe.len());
        assert!(universe.iter().any(|l| l.symbol == "AAPL"));
        assert!(universe.iter().all(|l| l.price > 0.0 && l.volatility > 0.0));
    }

    #[test]
    fn sized_extends_with_generated_names_and_cuts() {
        let big = sized(default_universe(), 2000, 1);
        assert_eq!(big.len(), 2000);
        assert_eq!(big[0].symbol, "AAPL");
        assert_eq!(sized(default_universe(), 3, 1).len(), 3);
        assert_eq!(big, sized(default_universe(), 2000, 1), "repeatable");
    }

    #[test]
    fn bad_rows_name_file_line_and_column() {
        let err = parse(b"symbol,price,volatility\nAAPL,abc,0.3\n", "u.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            "u.csv:2: column price: expected a positive number, got \"abc\""
        );
        let err = parse(b"symbol,price,volatility\n", "u.csv").unwrap_err();
        assert_eq!(err.to_string(), "u.csv: no symbols in the file");
    }
}
