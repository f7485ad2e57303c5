// series.js — bounded price history for the chart.
//
// Owns: Series, a fixed-capacity ring of price points per symbol (ticks
// within BUCKET_MS share a point, so memory never grows with time or rate),
// merging points into OHLCV candles, and finding the point nearest a time.
// Pure data: no DOM, no canvas; chart.js draws what this keeps.

export const HISTORY = 2000;   // points per symbol
export const BUCKET_MS = 250;  // ticks closer than this share a point: 2,000 points >= 8 min

/**
 * Fixed-capacity ring of price points. Ticks within one BUCKET_MS slot are
 * folded into one point (open/high/low/close, traded volume, time of its
 * latest tick), so a symbol trading hundreds of times a second still keeps
 * minutes of history and a quiet one keeps every tick.
 */
export class Series {
  constructor(capacity = HISTORY, bucketMs = BUCKET_MS) {
    this.cap = capacity;
    this.bucketMs = bucketMs;
    for (const k of ['t', 'o', 'h', 'l', 'c', 'v']) this[k] = new Float64Array(capacity);
    this.start = 0;
    this.len = 0;
    this.lastVol = NaN; // cumulative volume at the previous tick
  }

  /** Fold in a tick: time ms, price, cumulative volume. */
  push(t, p, cumVol) {
    const traded = cumVol >= this.lastVol ? cumVol - this.lastVol : 0;
    this.lastVol = cumVol;
    if (this.len > 0) {
      const j = this.idx(this.len - 1);
      if (Math.floor(this.t[j] / this.bucketMs) === Math.floor(t / this.bucketMs)) {
        this.t[j] = t;
        if (p > this.h[j]) this.h[j] = p;
        if (p < this.l[j]) this.l[j] = p;
        this.c[j] = p;
        this.v[j] += traded;
        return;
      }
    }
    const i = (this.start + this.len) % this.cap;
    this.t[i] = t;
    this.o[i] = this.h[i] = this.l[i] = this.c[i] = p;
    this.v[i] = traded;
    if (this.len < this.cap) this.len += 1;
    else this.start = (this.start + 1) % this.cap;
  }

  idx(i) { return (this.start + i) % this.cap; }
  time(i) { return this.t[this.idx(i)]; }
  /** Closing (latest) price of point i. */
  price(i) { return this.c[this.idx(i)]; }
  volume(i) { return this.v[this.idx(i)]; }
}

/** OHLCV candles of width `bucketMs` merged from a series' points. */
export function buildCandles(s, bucketMs) {
  const out = [];
  let cur = null;
  for (let i = 0; i < s.len; i++) {
    const j = s.idx(i);
    const b = Math.floor(s.t[j] / bucketMs) * bucketMs;
    if (!cur || cur.t !== b) {
      cur = { t: b, o: s.o[j], h: s.h[j], l: s.l[j], c: s.c[j], v: 0 };
      out.push(cur);
    }
    if (s.h[j] > cur.h) cur.h = s.h[j];
    if (s.l[j] < cur.l) cur.l = s.l[j];
    cur.c = s.c[j];
    cur.v += s.v[j];
  }
  return out;
}

/** Index of the point whose time is closest to t (binary search; times ascend). */
export function nearestIndex(s, t) {
  let a = 0;
  let b = s.len - 1;
  while (a < b) {
    const mid = (a + b) >> 1;
    if (s.time(mid) < t) a = mid + 1;
    else b = mid;
  }
  if (a > 0 && Math.abs(s.time(a - 1) - t) < Math.abs(s.time(a) - t)) return a - 1;
  return a;
}
