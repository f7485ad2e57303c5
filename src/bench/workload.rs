//! What each bench client does: which symbols it subscribes to, whether it
//! reads slowly, and when it connects (the ramp). Pure and seeded, so the
//! same flags give the same workload against every target.

use rand::SeedableRng;
use rand::rngs::StdRng;
use std::time::Duration;

/// One client's part of the workload.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ClientPlan {
    /// Indexes into the symbol universe, distinct and sorted.
    pub symbols: Vec<u32>,
    /// Reads slowly (`--slow-mode`, `--slow-delay`).
    pub slow: bool,
    /// When to connect, from the start of the connection phase.
    pub connect_at: Duration,
}

/// Every client's plan. Each client picks `per_client` distinct symbols of
/// `universe` at random (seeded), so every symbol has `clients * per_client
/// / universe` subscribers on average; with `hot_symbols` K, fast clients
/// take symbols `0..K` instead (the busiest of a skewed market), and slow
/// clients keep the same picks as without. Slow clients are spread evenly
/// over the client indexes: exactly `floor(clients * slow_fraction)` of
/// them.
pub(super) fn plan_clients(
    clients: usize,
    universe: usize,
    per_client: usize,
    hot_symbols: Option<usize>,
    slow_fraction: f64,
    ramp: Option<f64>,
    seed: u64,
) -> Vec<ClientPlan> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xb3_c4_11_e7);
    (0..clients)
        .map(|i| {
            let mut symbols: Vec<u32> = rand::seq::index::sample(&mut rng, universe, per_client)
                .into_iter()
                .map(|s| s as u32)
                .collect();
            symbols.sort_unstable();
            let slow =
                ((i + 1) as f64 * slow_fraction).floor() > (i as f64 * slow_fraction).floor();
            if let Some(hot) = hot_symbols.filter(|_| !slow) {
                symbols = (0..hot as u32).collect();
            }
            let connect_at = ramp.map_or(Duration::ZERO, |per_s| {
                Duration::from_secs_f64(i as f64 / per_s)
            });
            ClientPlan {
                symbols,
                slow,
                connect_at,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_gets_distinct_symbols_and_the_same_seed_gives_the_same_picks() {
        let a = plan_clients(200, 50, 10, None, 0.0, None, 7);
        assert_eq!(a, plan_clients(200, 50, 10, None, 0.0, None, 7));
        assert_ne!(a, plan_clients(200, 50, 10, None, 0.0, None, 8));
        for client in &a {
            assert_eq!(client.symbols.len(), 10);
            assert!(client.symbols.windows(2).all(|w| w[0] < w[1]), "distinct");
            assert!(client.symbols.iter().all(|&s| s < 50));
        }
    }

    #[test]
    fn slow_clients_are_the_asked_share_spread_evenly() {
        let plans = plan_clients(1000, 10, 1, None, 0.1, None, 1);
        let slow: Vec<usize> = (0..1000).filter(|&i| plans[i].slow).collect();
        assert_eq!(slow.len(), 100);
        assert!(slow.windows(2).all(|w| w[1] - w[0] == 10));
        assert!(
            plan_clients(10, 10, 1, None, 0.0, None, 1)
                .iter()
                .all(|p| !p.slow)
        );
        assert!(
            plan_clients(10, 10, 1, None, 1.0, None, 1)
                .iter()
                .all(|p| p.slow)
        );
    }

    #[test]
    fn the_ramp_spaces_connections_evenly() {
        let plans = plan_clients(5, 10, 1, None, 0.0, Some(100.0), 1);
        assert_eq!(plans[4].connect_at, Duration::from_millis(40));
        assert!(
            plan_clients(5, 10, 1, None, 0.0, None, 1)
                .iter()
                .all(|p| p.connect_at.is_zero())
        );
    }

    #[test]
    fn hot_symbols_give_fast_clients_the_first_symbols_and_leave_slow_picks_alone() {
        let picked = plan_clients(20, 100, 5, None, 0.25, None, 3);
        let hot = plan_clients(20, 100, 5, Some(3), 0.25, None, 3);
        for (without, with) in picked.iter().zip(&hot) {
            if with.slow {
                assert_eq!(with.symbols, without.symbols, "slow picks unchanged");
            } else {
                assert_eq!(with.symbols, [0, 1, 2]);
            }
        }
        assert_eq!(hot.iter().filter(|c| c.slow).count(), 5);
    }
}
