// tape.js — the time & sales model: trades read off one symbol's ticks.
// Pure: no DOM, no fetch; timesales.js fills it and draws it.
//
// Owns: what counts as a trade (the cumulative volume rose since the
// symbol's previous tick: the rise is the size, `px` the price; a
// quote-only update leaves `vol` alone), the tick direction of each trade
// against the previous trade's price (an equal price keeps the previous
// direction: zero-plus / zero-minus), and TradeTape, the latest trades in
// a bounded array, oldest first.

/** Trades the tape keeps (and the panel shows). */
export const TAPE_ROWS = 200;

/**
 * The trade `t` reports, given `prev` ({seq, vol}) of the tick before it in
 * the same seq space, or null. A tick that comes after a seq gap (merged by
 * conflation, lost while away, or a snapshot a little ahead of the history)
 * stands for the updates in between too: its size is all their volume and
 * its `n` counts them, as the tick's own `n` does on the wire.
 */
export function tradeOf(prev, t) {
  if (!prev || t.px === undefined || !(t.vol > prev.vol)) return null;
  const ns = t.xt !== undefined ? t.xt : t.ts;
  return { seq: t.seq, ms: Number(ns) / 1e6, px: t.px, size: t.vol - prev.vol, n: t.seq - prev.seq - 1, dir: 0 };
}

/** +1 uptick, -1 downtick; an unchanged price keeps `prevDir`; 0 for the first trade. */
export function tickDirection(prevPx, prevDir, px) {
  if (prevPx === undefined) return 0;
  if (px > prevPx) return 1;
  if (px < prevPx) return -1;
  return prevDir;
}

export class TradeTape {
  constructor(max = TAPE_ROWS) {
    this.max = max;
    this.clear();
  }

  /** Forget everything (another symbol, or a new seq space). */
  clear() {
    this.trades = [];      // the latest `max` trades, oldest first
    this.prev = null;      // {seq, vol} of the last tick folded in
    this.count = 0;        // trades ever added since the last clear
    this.generation = (this.generation || 0) + 1; // bumped by clear, for the renderer
  }

  /**
   * Fold in one tick of the symbol, in seq order; a tick at or below the
   * last seq folded is skipped, so history and live may overlap. Returns
   * the trade it made, or null.
   */
  push(t) {
    if (this.prev && t.seq <= this.prev.seq) return null;
    const trade = tradeOf(this.prev, t);
    if (t.vol !== undefined) this.prev = { seq: t.seq, vol: t.vol };
    else if (this.prev) this.prev.seq = t.seq;
    if (!trade) return null;
    const last = this.trades[this.trades.length - 1];
    trade.dir = last ? tickDirection(last.px, last.dir, trade.px) : 0;
    this.trades.push(trade);
    if (this.trades.length > this.max) this.trades.shift();
    this.count += 1;
    return trade;
  }

  /** The newest trade, or undefined. */
  get newest() {
    return this.trades[this.trades.length - 1];
  }
}
