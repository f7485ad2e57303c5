//! Router tests: fan-out, subscriptions, interest and warming.

use super::*;
use crate::bars::Timeframe;

fn tick(sym: &str, seq: u64) -> Tick {
    Tick::test(sym, seq)
}

fn pending(mailbox: &Mailbox) -> Vec<SymbolId> {
    let mut ids = Vec::new();
    mailbox.drain(|id| ids.push(id));
    ids
}

fn router() -> Router {
    Router::new(Arc::new(SymbolTable::new(64)), Arc::new(Stats::new()))
}

fn named(names: &[&str]) -> SymbolSet {
    SymbolSet::Named(names.iter().map(|s| s.to_string()).collect())
}

#[test]
fn updates_reach_only_subscribers_and_the_latest_wins() {
    let mut r = router();
    r.route(vec![tick("AAPL", 1), tick("MSFT", 1)]);
    let (a, b) = (Arc::new(Mailbox::new(64)), Arc::new(Mailbox::new(64)));
    let sub = r.subscribe(1, a.clone(), named(&["AAPL", "NOPE"]));
    assert_eq!(sub.unknown, ["NOPE"]);
    assert_eq!(
        sub.granted[0].latest.as_ref().unwrap().seq(),
        1,
        "snapshot baseline"
    );
    r.subscribe(2, b.clone(), named(&["MSFT"]));
    r.route(vec![tick("AAPL", 2), tick("AAPL", 3), tick("AAPL", 4)]);
    assert_eq!(pending(&a), [0]);
    assert!(pending(&b).is_empty());
    assert_eq!(r.table.cell(0).latest_seq(), 4, "conflated to the latest");
}

#[test]
fn wildcard_includes_symbols_that_appear_later() {
    let mut r = router();
    let m = Arc::new(Mailbox::new(64));
    assert!(r.subscribe(1, m.clone(), SymbolSet::All).granted.is_empty());
    r.route(vec![tick("NEW", 1)]);
    assert_eq!(pending(&m), [0]);
}

#[test]
fn resubscribing_never_creates_a_second_stream_and_leave_cleans_up() {
    let mut r = router();
    r.route(vec![tick("AAPL", 1)]);
    let m = Arc::new(Mailbox::new(64));
    r.subscribe(1, m.clone(), named(&["AAPL"]));
    r.subscribe(1, m.clone(), named(&["AAPL"]));
    assert_eq!(r.subscriber_count(0), 1);
    assert_eq!(r.unsubscribe(1, named(&["AAPL"])), [0]);
    assert_eq!(r.subscriber_count(0), 0);
    r.subscribe(1, m.clone(), named(&["AAPL"]));
    r.subscribe(1, m, SymbolSet::All);
    r.unsubscribe(1, SymbolSet::All);
    assert_eq!(
        (r.subscriber_count(0), r.wildcard.len(), r.clients.len()),
        (0, 0, 0)
    );
}

/// Sends a subscribe the way a session does; the reply comes later.
fn subscribe_command(
    r: &mut Router,
    client: ClientId,
    symbols: SymbolSet,
) -> oneshot::Receiver<Subscribed> {
    let (reply, rx) = oneshot::channel();
    let mailbox = Arc::new(Mailbox::new(64));
    r.handle(Command::Subscribe {
        client,
        mailbox,
        symbols,
        reply,
    });
    rx
}

fn drain(rx: &mut mpsc::UnboundedReceiver<Interest>) -> Vec<Interest> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

#[test]
fn interest_is_reported_on_first_and_last_subscriber_and_waits_for_the_latest_value() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut r = router().with_interest(tx);
    r.intern(&"AAPL".into());
    let wanted = |name: &str| Interest::Wanted(name.into());
    let unwanted = |name: &str| Interest::Unwanted(name.into());

    let mut first = subscribe_command(&mut r, 1, named(&["AAPL"]));
    assert_eq!(drain(&mut rx), [wanted("AAPL")]);
    assert!(first.try_recv().is_err(), "held until the source is ready");
    r.route(vec![tick("AAPL", 7)]);
    r.ready(&["AAPL".into()]);
    let granted = first.try_recv().expect("answered once ready").granted;
    assert_eq!(
        granted[0].latest.as_ref().unwrap().seq(),
        7,
        "snapshot is the fetched value"
    );

    let mut second = subscribe_command(&mut r, 2, named(&["AAPL"]));
    assert!(
        second.try_recv().is_ok(),
        "already wanted: answered at once"
    );
    r.unsubscribe(1, named(&["AAPL"]));
    assert!(drain(&mut rx).is_empty(), "one subscriber left");
    r.handle(Command::Leave { client: 2 });
    assert_eq!(drain(&mut rx), [unwanted("AAPL")]);

    let mut all = subscribe_command(&mut r, 3, SymbolSet::All);
    let mut also_all = subscribe_command(&mut r, 4, SymbolSet::All);
    assert_eq!(drain(&mut rx), [wanted("*")], "reported once");
    assert!(all.try_recv().is_err() && also_all.try_recv().is_err());
    r.ready(&["*".into()]);
    assert_eq!(all.try_recv().unwrap().granted.len(), 1);
    assert!(also_all.try_recv().is_ok());
    r.unsubscribe(3, SymbolSet::All);
    r.unsubscribe(4, SymbolSet::All);
    assert_eq!(drain(&mut rx), [unwanted("*")]);
}

#[test]
fn without_an_interest_hook_subscribes_are_answered_at_once() {
    let mut r = router();
    r.intern(&"AAPL".into());
    assert!(
        subscribe_command(&mut r, 1, named(&["AAPL"]))
            .try_recv()
            .is_ok()
    );
    assert!(
        subscribe_command(&mut r, 2, SymbolSet::All)
            .try_recv()
            .is_ok()
    );
}

#[test]
fn a_new_epoch_drops_the_old_seq_space_and_wakes_every_subscriber() {
    let mut r = router();
    r.route(vec![tick("AAPL", 41), tick("AAPL", 42), tick("MSFT", 7)]);
    let (a, all) = (Arc::new(Mailbox::new(64)), Arc::new(Mailbox::new(64)));
    r.subscribe(1, a.clone(), named(&["AAPL"]));
    r.subscribe(2, all.clone(), SymbolSet::All);
    pending(&a);
    pending(&all);
    let changes = r.table.epoch_changes();

    r.set_epoch(r.table.epoch());
    assert_eq!(
        r.table.epoch_changes(),
        changes,
        "the same epoch changes nothing"
    );
    assert!(pending(&a).is_empty());

    r.set_epoch("another".into());
    assert_eq!(r.table.epoch(), "another");
    assert_eq!(r.table.epoch_changes(), changes + 1);
    assert!(
        r.table.cell(0).latest().is_none(),
        "no value of the old epoch"
    );
    assert_eq!(
        r.table.cell(0).ring().unwrap().get(42).map(|t| t.seq()),
        None
    );
    assert_eq!(pending(&a), [0]);
    assert!(!pending(&all).is_empty());
    r.route(vec![tick("AAPL", 1)]);
    assert_eq!(r.table.cell(0).latest_seq(), 1, "seqs start again");
}

/// A replayed tick of AAPL: `seq`, 300 ms of file time apart, so that
/// ticks span several 1s bars.
fn replayed(seq: u64) -> Tick {
    let mut tick = tick("AAPL", seq);
    tick.xt = Some(1_735_828_200_000_000_000 + seq * 300_000_000);
    tick.quote.px = Some(100.0 + (seq % 7) as f64);
    tick
}

/// What a source's handle answers an edge: AAPL's bars as of `seq`.
fn seed_of(source: &Router, seq: u64) -> crate::bars::BarSeed {
    let (mut seed, finals) = source.bars.export(0, seq);
    for tf in Timeframe::ALL {
        let store = source.bars.store();
        seed.finals[tf.index()] = store.finals_before(0, tf, finals[tf.index()], 100);
    }
    seed
}

#[test]
fn an_edge_seeded_with_the_sources_bars_continues_them_exactly() {
    let mut source = router();
    source.route((1..=20).map(replayed).collect());
    let seed = seed_of(&source, 20);
    assert_eq!(seed.seq, 20);
    source.route((21..=40).map(replayed).collect());

    // The edge routed a snapshot before the seed came, and then receives
    // ticks the seed already holds: neither counts twice.
    let mut edge = router();
    edge.route(vec![replayed(18)]);
    edge.bars.seed(0, &seed);
    edge.route((17..=40).map(replayed).collect());
    for tf in Timeframe::ALL {
        assert_eq!(
            edge.bars.store().history(0, tf, 0, u64::MAX, 1000),
            source.bars.store().history(0, tf, 0, u64::MAX, 1000),
            "{tf:?}"
        );
    }
    assert!(edge.bars.store().is_current(0));
}

#[test]
fn bars_subscribers_make_a_symbol_wanted_and_are_answered_after_its_seed() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut r = router().with_interest(tx);
    r.intern(&"AAPL".into());
    let bars = |r: &mut Router, client| {
        let (reply, rx) = oneshot::channel();
        r.handle(Command::SubscribeBars {
            client,
            mailbox: Arc::new(Mailbox::new(64)),
            tf: Timeframe::S1,
            symbols: vec!["AAPL".into()],
            reply,
        });
        rx
    };
    let mut first = bars(&mut r, 1);
    assert_eq!(drain(&mut rx), [Interest::WantedBars("AAPL".into())]);
    assert!(first.try_recv().is_err(), "held until the source is ready");
    let mut source = router();
    source.route((1..=20).map(replayed).collect());
    r.bars.seed(0, &seed_of(&source, 20));
    r.ready(&["AAPL".into()]);
    let seeded = source.bars.store().read(0, Timeframe::S1).finals;
    assert_eq!(
        first.try_recv().unwrap().granted,
        [(0, seeded)],
        "the seeded finals are history: the first final sent is the next"
    );

    // Ticks and bars of a symbol are one interest; a bars subscriber of a
    // symbol whose bars are the source's already waits for nothing.
    subscribe_command(&mut r, 2, named(&["AAPL"]));
    assert!(bars(&mut r, 3).try_recv().is_ok());
    r.handle(Command::Leave { client: 3 });
    assert!(
        drain(&mut rx).is_empty(),
        "served already: nothing to report"
    );
    r.handle(Command::Leave { client: 1 });
    assert!(drain(&mut rx).is_empty(), "a ticks subscriber is left");
    r.handle(Command::Leave { client: 2 });
    assert_eq!(drain(&mut rx), [Interest::Unwanted("AAPL".into())]);
    assert!(!r.bars.store().is_current(0), "no longer followed");

    // Ticks alone take no bars from the source; the first bars subscriber
    // of a symbol served for its ticks does, and waits for them.
    subscribe_command(&mut r, 4, named(&["AAPL"]));
    r.ready(&["AAPL".into()]);
    assert_eq!(drain(&mut rx), [Interest::Wanted("AAPL".into())]);
    let mut late = bars(&mut r, 5);
    assert_eq!(drain(&mut rx), [Interest::WantedBars("AAPL".into())]);
    assert!(
        late.try_recv().is_err(),
        "held until the bars are the source's"
    );
    r.ready(&["AAPL".into()]);
    assert!(late.try_recv().is_ok());
}

fn book(sym: &str, bid: f64, levels: usize) -> BookUpdate {
    let side = |first: f64, step: f64| {
        (0..levels)
            .map(|i| (first + step * i as f64, 100))
            .collect()
    };
    BookUpdate {
        sym: sym.into(),
        ts: 7,
        xt: Some(5),
        depth: crate::protocol::Depth {
            bids: side(bid, -0.01),
            asks: side(bid + 0.02, 0.01),
        },
    }
}

fn book_seqs(r: &Router, id: SymbolId) -> u64 {
    r.book.store().latest(id).map_or(0, |b| b.seq())
}

#[test]
fn books_are_numbered_per_change_of_the_top_levels_and_marked_for_subscribers() {
    let mut r = router().with_depth(2);
    r.route_books(vec![book("AAPL", 10.0, 3)]);
    assert_eq!(book_seqs(&r, 0), 1);
    let m = Arc::new(Mailbox::new(64));
    m.enable_books();
    let latest = r.book.subscribe(1, &m, 0).unwrap();
    assert_eq!(latest.book.depth.bids.len(), 2, "cut to --depth");
    assert_eq!((latest.book.ts, latest.book.xt), (7, Some(5)));
    // A third level moved: not a change of the top two.
    let mut deeper = book("AAPL", 10.0, 3);
    deeper.depth.bids[2].1 = 1;
    r.route_books(vec![deeper, book("AAPL", 10.0, 2)]);
    assert_eq!(book_seqs(&r, 0), 1);
    assert_eq!(r.stats.books_in.load(Ordering::Relaxed), 1);
    let mut ids = Vec::new();
    m.drain_books(|id| ids.push(id));
    assert!(ids.is_empty(), "nothing changed");
    r.route_books(vec![book("AAPL", 10.01, 3), book("MSFT", 5.0, 1)]);
    assert_eq!((book_seqs(&r, 0), book_seqs(&r, 1)), (2, 1));
    m.drain_books(|id| ids.push(id));
    assert_eq!(ids, [0], "only AAPL's subscriber");
    assert_eq!(r.book_subscription_count(), 1);
    r.handle(handle::Command::Leave { client: 1 });
    assert_eq!(r.book_subscription_count(), 0);
}

/// A book as a NATS source's publisher numbered it.
fn numbered(sym: &str, seq: u64, bid: f64) -> BookEvent {
    let update = book(sym, bid, 3);
    BookEvent {
        seq,
        ..crate::books::number(None, update, 3).unwrap()
    }
}

#[test]
fn numbered_books_keep_their_seq_and_an_edge_holds_them_only_while_wanted() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut r = router().with_depth(2).with_interest(tx);
    r.intern(&"AAPL".into());
    let subscribe = |r: &mut Router, client| {
        let (reply, rx) = oneshot::channel();
        let mailbox = Arc::new(Mailbox::new(64));
        mailbox.enable_books();
        r.handle(Command::SubscribeBook {
            client,
            mailbox,
            symbols: vec!["AAPL".into()],
            reply,
        });
        rx
    };
    r.route_numbered_books(vec![numbered("AAPL", 40, 10.0)]);
    assert_eq!(book_seqs(&r, 0), 0, "no book subscriber: not kept");

    let mut first = subscribe(&mut r, 1);
    assert_eq!(drain(&mut rx), [Interest::WantedBook("AAPL".into())]);
    assert!(first.try_recv().is_err(), "held until the source is ready");
    r.route_numbered_books(vec![numbered("AAPL", 41, 10.0)]);
    r.ready(&["AAPL".into()]);
    let granted = first.try_recv().unwrap().granted;
    let snapshot = granted[0].1.as_ref().expect("the stored book");
    assert_eq!(snapshot.seq(), 41, "the source's seq");
    assert_eq!(snapshot.book.depth.bids.len(), 2, "cut to --depth");

    // The same book live after the snapshot, and an older one: dropped.
    r.route_numbered_books(vec![numbered("AAPL", 41, 10.5), numbered("AAPL", 39, 9.0)]);
    assert_eq!(book_seqs(&r, 0), 41);
    assert_eq!(r.book.store().latest(0).unwrap().book.depth.bids[0].0, 10.0);
    r.route_numbered_books(vec![numbered("AAPL", 45, 10.5)]);
    assert_eq!(book_seqs(&r, 0), 45, "a gap is the source's: kept as is");

    assert!(subscribe(&mut r, 2).try_recv().is_ok(), "served already");
    assert!(drain(&mut rx).is_empty());
    r.handle(Command::Leave { client: 1 });
    assert!(drain(&mut rx).is_empty(), "a book subscriber is left");
    let (reply, _) = oneshot::channel();
    r.handle(Command::UnsubscribeBook {
        client: 2,
        symbols: vec!["AAPL".into()],
        reply,
    });
    assert_eq!(drain(&mut rx), [Interest::UnwantedBook("AAPL".into())]);
    assert_eq!(book_seqs(&r, 0), 0, "no longer received: dropped");
}
