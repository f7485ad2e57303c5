// book.js — the depth ladder's data: the charted symbol's order book.
//
// Owns: BookFeed, the top levels of one symbol's book from the book
// channel (docs/protocol.md, "Book"): it subscribes when the chart follows
// a symbol (the previous one is unsubscribed), again after every reconnect
// (the server's first event is a snapshot, so there is nothing to resume),
// and keeps the latest event, checking the channel's own seq and `n` (the
// same invariant as ticks). The last trade price comes from the ticks the
// page already receives. The subscription asks for BOOK_HZ events a
// second: the server conflates in between, so the ladder changes at a rate
// an eye can follow, whatever the symbol's pace. Its requests' replies
// are its own: a refused subscribe is noted for the ladder and never
// touches the watchlist, and a server that keeps fewer levels than the
// ladder's (`serve --depth`) is asked again for all it keeps. Pure data:
// ladder.js draws what this keeps.

import { subscribeBook, unsubscribeBook } from './protocol.js';

/** Levels per side the ladder shows (the server's default depth). */
export const BOOK_DEPTH = 10;
/** The ladder's display rate: the `max_hz` of its subscription. */
export const BOOK_HZ = 10;

export class BookFeed {
  /** @param {(req: object) => void} send  sends a request on the socket */
  constructor(send) {
    this.send = send;
    this.sym = '';
    this.depth = BOOK_DEPTH; // levels asked for; null: as many as the server keeps
    this.pending = new Set(); // ids of subscribes not yet answered
    this.clear();
    this.subscribes = 0; // subscriptions sent (one per follow and reconnect)
    this.events = 0;     // book events of the followed symbol received
    this.snaps = 0;      // of them, snapshots
    this.nSum = 0;       // updates the server merged into them
    this.gaps = 0;       // events whose seq broke the invariant
    this.generation = 0; // bumps whenever what the ladder shows changes
  }

  /** Forget the levels (a new symbol or a new subscription's snapshot follows). */
  clear() {
    this.bids = [];
    this.asks = [];
    this.seq = 0;
    this.ts = 0;
    this.last = NaN; // the last trade price
    this.refusal = ''; // why the server refused this symbol's book ('' = it did not)
  }

  /** Follow `sym` ('' = none). */
  follow(sym) {
    if (sym === this.sym) return;
    if (this.sym) this.send(unsubscribeBook([this.sym]));
    this.sym = sym;
    this.clear();
    this.generation += 1;
    this.subscribe();
  }

  /** A new connection: subscribe again; its snapshot replaces the book. */
  reconnected() {
    this.pending.clear(); // the old connection's requests get no answer
    this.subscribe();
  }

  subscribe() {
    if (!this.sym) return;
    const req = subscribeBook([this.sym], this.depth, { maxHz: BOOK_HZ });
    if (!this.send(req)) return;
    this.subscribes += 1;
    this.pending.add(req.id);
  }

  /**
   * An `ack` or `error` (any request): true when it answers one of this
   * book's subscribes, which it then handles.
   */
  answered(ev) {
    if (!this.pending.delete(ev.id)) return false;
    if (ev.ev !== 'error') return true;
    if (ev.code === 'bad_request' && this.depth !== null) {
      this.depth = null; // the server keeps fewer levels: take all it keeps
      this.subscribe();
    } else {
      this.refusal = ev.code === 'unknown_symbol' ? 'no such symbol' : `${ev.code}: ${ev.msg || ''}`;
      this.generation += 1;
    }
    return true;
  }

  /** One `book` event (any symbol). */
  record(ev) {
    if (ev.sym !== this.sym) return; // in flight after a switch
    const n = ev.n || 0;
    if (ev.snap) this.snaps += 1;
    if (!ev.snap) {
      if (ev.seq <= this.seq) return; // already held
      if (this.seq && ev.seq - this.seq - 1 !== n) this.gaps += 1;
    }
    this.events += 1;
    this.nSum += n;
    this.seq = ev.seq;
    this.ts = ev.ts;
    this.bids = ev.bids || [];
    this.asks = ev.asks || [];
    this.generation += 1;
  }

  /** One tick (full values, any symbol): its `px` is the last trade price. */
  trade(t) {
    if (t.sym !== this.sym || t.px === undefined || t.px === this.last) return;
    this.last = t.px;
    this.generation += 1;
  }

  /** ask1 - bid1, or NaN while a side is empty. */
  get spread() {
    return this.asks.length && this.bids.length ? this.asks[0][0] - this.bids[0][0] : NaN;
  }

  /** What the tests read. */
  snapshot() {
    return {
      sym: this.sym,
      depth: BOOK_DEPTH,
      maxHz: BOOK_HZ,
      refusal: this.refusal,
      seq: this.seq,
      bids: this.bids.map((l) => [...l]),
      asks: this.asks.map((l) => [...l]),
      last: this.last,
      subscribes: this.subscribes,
      events: this.events,
      snaps: this.snaps,
      nSum: this.nSum,
      gaps: this.gaps,
      generation: this.generation,
    };
  }
}
