// bars.js — the chart's bars: OHLCV candles of one symbol in one timeframe.
//
// Owns: BarBook, the bars of the charted symbol and timeframe (oldest
// first, bounded), filled first from GET /api/bars (the server's final
// bars and its open one, with the token) and then from the live `bar`
// events of the bars channel (docs/protocol.md, "Bars"). The subscribe
// goes out before the history is asked for, and live bars that arrive
// while the history is on its way are held and folded in after it (a bar
// replaces the one with the same start), so the two meet without a gap.
// Switching keeps the previous bars on screen until the new history is in,
// so the chart is never empty when history exists. A reconnect asks again
// (main.js calls reconnected()). Pure data: chart.js draws what this keeps.

import { subscribeBars, unsubscribeBars } from './protocol.js';

/** The chart's timeframes; `ticks` is the tick chart (no bars). */
export const TIMEFRAMES = ['ticks', '1s', '1m', '5m', '1h'];
/** Bars asked of /api/bars and kept. */
export const BARS_KEPT = 500;
/** Live bars held while the history loads (the oldest go first). */
const HELD_MAX = 2000;
const TF_MS = { '1s': 1000, '1m': 60_000, '5m': 300_000, '1h': 3_600_000 };

/** A bar event as the chart keeps it: times in ms since the epoch. */
export function barOf(ev) {
  return { t: Number(ev.t) / 1e6, o: ev.o, h: ev.h, l: ev.l, c: ev.c, v: ev.v, final: ev.final === true };
}

/**
 * Put `bar` into `bars` (oldest first): it replaces the bar with the same
 * start, or goes in its place by time; at most `max` are kept (the oldest
 * go first). Returns whether anything changed.
 */
export function mergeBar(bars, bar, max = BARS_KEPT) {
  let i = bars.length;
  while (i > 0 && bars[i - 1].t > bar.t) i -= 1;
  if (i > 0 && bars[i - 1].t === bar.t) {
    if (bars[i - 1].final && !bar.final) return false; // a closed bar never reopens
    bars[i - 1] = bar;
    return true;
  }
  bars.splice(i, 0, bar);
  if (bars.length > max) bars.splice(0, bars.length - max);
  return true;
}

export class BarBook {
  /**
   * @param {import('./auth.js').Auth} auth  fetches /api/bars with the token
   * @param {(req: object) => boolean} send  sends a request on the socket
   */
  constructor(auth, send) {
    this.auth = auth;
    this.send = send;
    this.sym = '';
    this.tf = 'ticks';
    this.maxHz = 0;
    this.bars = [];          // what the chart draws, oldest first
    this.shown = { sym: '', tf: 'ticks' }; // whose bars `bars` are (the previous ones while loading)
    this.held = null;        // live bars held while the history loads; null once it is in
    this.request = 0;        // bumps on every load, so a late answer is ignored
    this.state = 'idle';     // idle | loading | live | token | unknown | failed
    this.fromHistory = 0;    // bars that came from /api/bars
    this.loads = 0;          // histories asked for (a reconnect asks again)
    this.generation = 0;     // bumps whenever the bars change
    auth.onToken(() => {
      if (this.state === 'token') this.load();
    });
  }

  /** The bar length in ms, or 0 for the tick chart. */
  get tfMs() {
    return TF_MS[this.tf] || 0;
  }

  /** Whether the chart draws bars (a timeframe is chosen and a symbol charted). */
  get active() {
    return this.tfMs > 0 && this.sym !== '';
  }

  /** Follow `sym` in timeframe `tf` ('ticks' = none), at `maxHz`. */
  follow(sym, tf, maxHz = 0) {
    if (sym === this.sym && tf === this.tf) return;
    if (this.active) this.send(unsubscribeBars([this.sym], this.tf));
    this.sym = sym;
    this.tf = TIMEFRAMES.includes(tf) ? tf : 'ticks';
    this.maxHz = maxHz;
    this.load();
  }

  /** A new connection: subscribe again and reload the history. */
  reconnected() {
    if (this.active) this.load();
  }

  /** One live `bar` event (any symbol or timeframe). */
  record(ev) {
    if (ev.sym !== this.sym || ev.tf !== this.tf) return; // in flight after a switch
    const bar = barOf(ev);
    if (this.held) {
      this.held.push(bar);
      if (this.held.length > HELD_MAX) this.held.shift();
    } else if (this.shown.sym === this.sym && this.shown.tf === this.tf && mergeBar(this.bars, bar)) {
      this.generation += 1;
    }
  }

  async load() {
    const request = ++this.request;
    if (!this.active) {
      this.held = null;
      this.bars = [];
      this.shown = { sym: this.sym, tf: this.tf };
      this.generation += 1;
      this.state = 'idle';
      return;
    }
    const { sym, tf } = this;
    this.held = [];
    this.state = 'loading';
    this.send(subscribeBars([sym], tf, { maxHz: this.maxHz }));
    this.loads += 1;
    const path = `/api/bars?sym=${encodeURIComponent(sym)}&tf=${tf}&limit=${BARS_KEPT}`;
    const { items, state } = await this.auth.history(path); // failed when down: a reconnect loads again
    if (request !== this.request) return; // another symbol, timeframe or connection since
    const bars = [];
    for (const ev of items) mergeBar(bars, barOf(ev));
    this.fromHistory = bars.length;
    for (const bar of this.held) mergeBar(bars, bar);
    this.held = null;
    // Keep what was shown when there is nothing new to show: a failed
    // reload after a reconnect leaves the chart as it was.
    if (bars.length || state === 'live' || state === 'unknown') {
      this.bars = bars;
      this.shown = { sym, tf };
      this.generation += 1;
    }
    this.state = state;
  }

  /** What the tests read: the bars held, oldest first, and where they came from. */
  snapshot() {
    return {
      sym: this.sym,
      tf: this.tf,
      state: this.state,
      loads: this.loads,
      fromHistory: this.fromHistory,
      generation: this.generation,
      bars: this.bars.map((b) => ({ ...b })),
    };
  }
}
