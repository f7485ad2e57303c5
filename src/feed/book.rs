//! A limit order book rebuilt from order events (LOBSTER message files):
//! resting orders by id and the total size at each price on each side, so
//! the best bid and ask with their sizes, and the top levels of each side
//! ([`Levels`]), can be read after every event.
//!
//! A file starts in the middle of a trading day, so it refers to orders
//! placed before its first row. Events on such unknown orders are counted
//! and otherwise ignored: those orders were never in this book, so taking
//! them out again must not touch it either.

use crate::protocol::Depth;
use std::collections::{BTreeMap, HashMap};

/// Prices stay integers (LOBSTER's dollars x 10,000) inside the book.
pub type Price = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Bid,
    Ask,
}

#[derive(Debug, Clone, Copy)]
struct Order {
    side: Side,
    price: Price,
    size: u64,
}

/// Best price and the total size resting there.
pub type Level = (Price, u64);

/// The top levels of both sides, best first: bids falling, asks rising.
/// Filled in place (from a rebuilt [`Book`] or a LOBSTER orderbook row),
/// so reading them after every event reuses two buffers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Levels {
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

impl Levels {
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// The best level of each side.
    pub fn touch(&self) -> Touch {
        Touch {
            bid: self.bids.first().copied(),
            ask: self.asks.first().copied(),
        }
    }

    /// The levels as sent, prices in dollars (`scale` units a dollar).
    pub fn to_depth(&self, scale: f64) -> Depth {
        let dollars = |side: &[Level]| side.iter().map(|(p, s)| (*p as f64 / scale, *s)).collect();
        Depth {
            bids: dollars(&self.bids),
            asks: dollars(&self.asks),
        }
    }
}

/// The top of the book.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Touch {
    pub bid: Option<Level>,
    pub ask: Option<Level>,
}

impl Touch {
    /// `price` lies between the bid and the ask, ends included (a missing
    /// side does not bound it).
    pub fn admits(&self, price: Price) -> bool {
        self.bid.is_none_or(|(bid, _)| bid <= price) && self.ask.is_none_or(|(ask, _)| price <= ask)
    }

    /// The bid is at or above the ask.
    pub fn crossed(&self) -> bool {
        matches!((self.bid, self.ask), (Some((bid, _)), Some((ask, _))) if bid >= ask)
    }
}

#[derive(Debug, Default)]
pub struct Book {
    orders: HashMap<u64, Order>,
    bids: BTreeMap<Price, u64>,
    asks: BTreeMap<Price, u64>,
    /// Cancels, deletes and executions of orders this book never saw.
    pub unknown_orders: u64,
}

impl Book {
    /// A new resting order. An id already resting is replaced.
    pub fn add(&mut self, id: u64, side: Side, price: Price, size: u64) {
        if let Some(old) = self.orders.remove(&id) {
            self.take(old, old.size);
        }
        let order = Order { side, price, size };
        *self.levels(side).entry(price).or_default() += size;
        self.orders.insert(id, order);
    }

    /// Removes `size` shares of an order (partial cancel or execution).
    pub fn reduce(&mut self, id: u64, size: u64) {
        let Some(order) = self.orders.get_mut(&id) else {
            self.unknown_orders += 1;
            return;
        };
        let size = size.min(order.size);
        order.size -= size;
        let order = *order;
        if order.size == 0 {
            self.orders.remove(&id);
        }
        self.take(order, size);
    }

    /// Removes a whole order.
    pub fn delete(&mut self, id: u64) {
        match self.orders.remove(&id) {
            Some(order) => self.take(order, order.size),
            None => self.unknown_orders += 1,
        }
    }

    pub fn touch(&self) -> Touch {
        Touch {
            bid: self.bids.last_key_value().map(|(p, s)| (*p, *s)),
            ask: self.asks.first_key_value().map(|(p, s)| (*p, *s)),
        }
    }

    /// The best `n` levels of each side into `out`.
    pub fn top(&self, n: usize, out: &mut Levels) {
        out.clear();
        out.bids
            .extend(self.bids.iter().rev().take(n).map(|(p, s)| (*p, *s)));
        out.asks
            .extend(self.asks.iter().take(n).map(|(p, s)| (*p, *s)));
    }

    fn levels(&mut self, side: Side) -> &mut BTreeMap<Price, u64> {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }

    /// Takes `size` shares off the level of `order`.
    fn take(&mut self, order: Order, size: u64) {
        let levels = self.levels(order.side);
        if let Some(total) = levels.get_mut(&order.price) {
            *total = total.saturating_sub(size);
            if *total == 0 {
                levels.remove(&order.price);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_touch_is_the_best_level_with_its_total_size() {
        let mut book = Book::default();
        book.add(1, Side::Bid, 100, 10);
        book.add(2, Side::Bid, 101, 5);
        book.add(3, Side::Bid, 101, 7);
        book.add(4, Side::Ask, 103, 4);
        book.add(5, Side::Ask, 102, 6);
        assert_eq!(
            book.touch(),
            Touch {
                bid: Some((101, 12)),
                ask: Some((102, 6))
            }
        );
        book.reduce(5, 6);
        book.delete(2);
        assert_eq!(
            book.touch(),
            Touch {
                bid: Some((101, 7)),
                ask: Some((103, 4))
            }
        );
        book.reduce(3, 2);
        assert_eq!(book.touch().bid, Some((101, 5)));
        let mut top = Levels::default();
        book.top(1, &mut top);
        assert_eq!(
            (&top.bids[..], &top.asks[..]),
            (&[(101, 5)][..], &[(103, 4)][..])
        );
        book.top(5, &mut top);
        assert_eq!(
            top.bids,
            [(101, 5), (100, 10)],
            "best first, only what rests"
        );
        assert_eq!(top.touch(), book.touch());
        assert_eq!(
            top.to_depth(100.0),
            Depth {
                bids: vec![(1.01, 5), (1.0, 10)],
                asks: vec![(1.03, 4)]
            }
        );
    }

    #[test]
    fn events_on_unknown_orders_are_counted_and_change_nothing() {
        let mut book = Book::default();
        book.add(1, Side::Ask, 200, 10);
        book.reduce(99, 5);
        book.delete(98);
        assert_eq!(book.unknown_orders, 2);
        assert_eq!(
            book.touch(),
            Touch {
                bid: None,
                ask: Some((200, 10))
            }
        );
    }

    #[test]
    fn an_emptied_side_has_no_touch_and_bounds_nothing() {
        let mut book = Book::default();
        book.add(1, Side::Bid, 100, 10);
        book.reduce(1, 50);
        let touch = book.touch();
        assert_eq!(touch, Touch::default());
        assert!(touch.admits(1) && !touch.crossed());
        let quoted = Touch {
            bid: Some((100, 1)),
            ask: Some((102, 1)),
        };
        assert!(quoted.admits(100) && quoted.admits(102) && !quoted.admits(103));
        assert!(
            Touch {
                bid: Some((102, 1)),
                ask: Some((102, 1))
            }
            .crossed()
        );
    }
}
