//! LOBSTER books on the real hour (`../shared/feeds`, never copied into
//! this repository; `common::lobster_path`).

use super::*;

/// One message row's fields: type, order id, price, direction.
struct Row {
    kind: u8,
    id: u64,
    price: f64,
    bid_side: bool,
}

fn lobster_rows(path: &Path) -> Vec<Row> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.trim_end().split(',').collect();
            Row {
                kind: f[1].parse().unwrap(),
                id: f[2].parse().unwrap(),
                price: f[4].parse::<f64>().unwrap() / 10_000.0,
                bid_side: f[5] == "1",
            }
        })
        .collect()
}

#[test]
fn on_the_lobster_hour_the_book_is_uncrossed_topped_by_the_quote_and_hit_by_executions() {
    let path = lobster_path();
    let with_orderbook = path_beside(&path).is_some_and(|p| p.is_file());
    let rows = lobster_rows(&path);
    let mut submitted_before = vec![false; rows.len()];
    let mut seen = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        submitted_before[i] = seen.contains(&row.id);
        if row.kind == 1 {
            seen.insert(row.id);
        }
    }
    let (updates, stats) = lobster_books(&path, 10);
    assert_eq!(stats.orderbook_file, with_orderbook);
    let (mut shown, mut checked, mut resting_before) = (Depth::default(), 0, 0);
    for u in &updates {
        let row = &rows[u.line as usize - 1];
        if row.kind == 4 {
            let side = if row.bid_side {
                &shown.bids
            } else {
                &shown.asks
            };
            let present = side.iter().any(|(px, _)| *px == row.price);
            if with_orderbook || submitted_before[u.line as usize - 1] {
                assert!(
                    present,
                    "line {}: execution at {} not in {shown:?}",
                    u.line, row.price
                );
                checked += 1;
            } else {
                // An order resting from before the file: the rebuilt book
                // never held it (the orderbook file would).
                resting_before += 1;
            }
        }
        if let Some(book) = &u.book {
            assert!(book.bids.len() <= 10 && book.asks.len() <= 10);
            shown = book.clone();
        }
        assert!(!crossed(&shown), "line {}: crossed {shown:?}", u.line);
        assert!(
            quote_on_top(&u.quote, &shown),
            "line {}: {u:?} on {shown:?}",
            u.line
        );
    }
    let visible = rows.iter().filter(|r| r.kind == 4).count();
    assert_eq!(
        checked + resting_before,
        visible,
        "every visible execution is seen"
    );
    assert!(checked > 4_000, "{checked} of {visible} checked");
    eprintln!(
        "{} book updates at depth 10 ({} rows); {checked} visible executions on the book, {resting_before} against orders from before the file",
        stats.book_updates,
        rows.len()
    );
}

#[tokio::test]
async fn the_replay_of_the_lobster_hour_tops_every_book_with_its_ticks() {
    let path = lobster_path();
    let mut options = replay_options(&path, None);
    options.depth = 10;
    let messages = replay_messages(ReplayConfig::prepare(options).unwrap()).await;
    let books = check_replayed_books(&messages);
    let (_, stats) = lobster_books(&path, 10);
    assert_eq!(books.len() as u64, stats.book_updates);
    assert!(books.iter().all(|b| !crossed(&b.depth)));
}
