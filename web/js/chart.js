// chart.js — the #chart canvas: a live price chart drawn by hand.
//
// Owns: one Series (series.js) per watched symbol, and drawing the selected
// symbol: line or candles built from ticks, or, with a timeframe chosen,
// the candles of the server's bars (a BarBook, bars.js), with volume bars,
// a right-hand price
// axis and a time axis with "nice" ticks, a last-price marker, and a
// crosshair with a price/time/volume readout. The canvas is sized for the
// device pixel ratio and redrawn only when something changed, at most once
// per animation frame (main.js calls render()).

import { Series, BUCKET_MS, buildCandles, nearestIndex } from './series.js';
import { niceStep, decimalsFor, timeStep, fmtTime, fmtVol } from './scale.js';

const AXIS_W = 64;       // right price axis, CSS px
const AXIS_H = 20;       // bottom time axis
const LEGEND_H = 24;     // symbol / price legend at the top
const VOL_FRACTION = 0.18;
const MIN_SPAN_MS = 5000;

export class Chart {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.series = new Map();
    this.symbol = '';
    this.mode = 'line';
    this.first = new Map(); // first price per symbol, for the legend's change
    this.mouse = null;
    this.dirty = true;
    this.cssW = 0;
    this.cssH = 0;
    this.dpr = 1;
    this.book = null;       // the BarBook drawn instead of ticks while a timeframe is chosen
    this.drawnBars = { generation: -1, count: 0, sym: '', tf: '' }; // what the last frame drew
    this.colors = this.readColors();
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    canvas.addEventListener('pointermove', (e) => this.pointer(e));
    canvas.addEventListener('pointerdown', (e) => this.pointer(e));
    canvas.addEventListener('pointerleave', () => {
      this.mouse = null;
      this.dirty = true;
    });
    this.resize();
  }

  readColors() {
    const cs = getComputedStyle(document.documentElement);
    const v = (name, fallback) => cs.getPropertyValue(name).trim() || fallback;
    return {
      bg: v('--panel', '#11161d'),
      grid: v('--grid', '#1f2832'),
      text: v('--muted', '#8b98a8'),
      strong: v('--text', '#e6edf3'),
      up: v('--up', '#22c55e'),
      down: v('--down', '#ef4444'),
      line: v('--accent', '#4da3ff'),
      cross: v('--cross', '#9aa7b4'),
      vol: v('--vol', '#3a4a5c'),
    };
  }

  resize() {
    const box = this.canvas.parentElement.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(200, Math.floor(box.width));
    const h = Math.max(160, Math.floor(box.height));
    if (w === this.cssW && h === this.cssH && dpr === this.dpr) return;
    this.cssW = w;
    this.cssH = h;
    this.dpr = dpr;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
    this.dirty = true;
  }

  pointer(e) {
    const r = this.canvas.getBoundingClientRect();
    this.mouse = { x: e.clientX - r.left, y: e.clientY - r.top };
    this.dirty = true;
  }

  /** Record a tick (any watched symbol). O(1). */
  record(t) {
    const px = t.px !== undefined ? t.px : (t.bid + t.ask) / 2;
    if (!Number.isFinite(px)) return;
    let s = this.series.get(t.sym);
    if (!s) {
      s = new Series();
      this.series.set(t.sym, s);
      this.first.set(t.sym, px);
    }
    const ms = t.ts !== undefined ? Number(t.ts) / 1e6 : Date.now();
    s.push(ms, px, t.vol || 0);
    if (t.sym === this.symbol) this.dirty = true;
  }

  forget(sym) {
    this.series.delete(sym);
    this.first.delete(sym);
    if (sym === this.symbol) this.dirty = true;
  }

  show(sym) {
    if (sym !== this.symbol) {
      this.symbol = sym;
      this.dirty = true;
    }
  }

  setMode(mode) {
    if (mode !== this.mode) {
      this.mode = mode;
      this.dirty = true;
    }
  }

  /** Draw `book`'s bars while it is active (a timeframe is chosen). */
  setBook(book) {
    this.book = book;
    this.dirty = true;
  }

  /** Draw if anything changed. Call once per animation frame. */
  render() {
    const book = this.book;
    if (book && book.active && book.generation !== this.drawnBars.generation) this.dirty = true;
    if (!this.dirty || this.cssW === 0) return;
    this.dirty = false;
    const { ctx, cssW: w, cssH: h, dpr, colors: c } = this;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = c.bg;
    ctx.fillRect(0, 0, w, h);
    ctx.font = '11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
    ctx.textBaseline = 'middle';
    if (book && book.active) {
      this.renderBars(book);
      return;
    }
    const s = this.series.get(this.symbol);
    if (!s || s.len === 0) {
      ctx.fillStyle = c.text;
      ctx.textAlign = 'center';
      ctx.fillText(this.symbol ? `Waiting for ${this.symbol} ticks…` : 'Click a symbol to chart it', w / 2, h / 2);
      return;
    }
    this.drawSeries(s);
  }

  /** The book's bars as candles; until its first history, a note. */
  renderBars(book) {
    const { sym, tf } = book.shown;
    this.drawnBars = { generation: book.generation, count: 0, sym, tf };
    if (book.bars.length === 0) {
      const { ctx, cssW: w, cssH: h, colors: c } = this;
      ctx.fillStyle = c.text;
      ctx.textAlign = 'center';
      const text = book.state === 'loading' ? `Loading ${book.sym} ${book.tf} bars…` : `Waiting for ${book.sym} ${book.tf} bars…`;
      ctx.fillText(text, w / 2, h / 2);
      return;
    }
    const bars = book.bars;
    const view = {
      len: bars.length,
      time: (i) => bars[i].t,
      price: (i) => bars[i].c,
      volume: (i) => bars[i].v,
    };
    this.drawSeries(view, { candles: bars, bucketMs: book.tfMs, label: `${sym} ${tf}`, first: bars[0].o });
    this.drawnBars.count = bars.length;
  }

  /**
   * Draw `s` (a Series, or a view of bars with the same accessors). With
   * `bars` ({candles, bucketMs, label, first}), those candles are drawn
   * as they are, whatever the mode.
   */
  drawSeries(s, bars = null) {
    const { cssW: w, cssH: h } = this;
    const plot = { x0: 0, x1: w - AXIS_W, y0: LEGEND_H, y1: h - AXIS_H };
    const volH = Math.round((plot.y1 - plot.y0) * VOL_FRACTION);
    const price = { ...plot, y1: plot.y1 - volH - 4 };
    const vol = { ...plot, y0: plot.y1 - volH };

    const tEnd = bars ? s.time(s.len - 1) + bars.bucketMs : s.time(s.len - 1);
    const tStart = Math.min(s.time(0), tEnd - MIN_SPAN_MS);
    const span = tEnd - tStart;
    const pad = span * 0.02;
    const x = (t) => plot.x0 + ((t - tStart) / (span + pad)) * (plot.x1 - plot.x0);

    const bucketMs = bars ? bars.bucketMs : Math.max(BUCKET_MS, timeStep(span, Math.max(20, (plot.x1 - plot.x0) / 9)));
    const candles = bars ? bars.candles : buildCandles(s, bucketMs);
    const mode = bars ? 'candles' : this.mode;
    let lo = Infinity;
    let hi = -Infinity;
    for (const k of candles) {
      if (k.l < lo) lo = k.l;
      if (k.h > hi) hi = k.h;
    }
    if (hi - lo < 1e-9) {
      hi += Math.max(0.01, Math.abs(hi) * 0.001);
      lo -= Math.max(0.01, Math.abs(lo) * 0.001);
    }
    const m = (hi - lo) * 0.08;
    lo -= m;
    hi += m;
    const y = (p) => price.y1 - ((p - lo) / (hi - lo)) * (price.y1 - price.y0);

    this.drawGrid(price, plot, lo, hi, y, tStart, tEnd, x, s.price(s.len - 1));
    this.drawVolume(candles, vol, x, bucketMs);
    if (mode === 'candles') this.drawCandles(candles, x, y, bucketMs);
    else this.drawLine(s, x, y, price);
    this.drawLast(s, plot, y);
    this.drawLegend(s, bars ? bars.label : this.symbol, bars ? bars.first : this.first.get(this.symbol));
    this.drawCrosshair(s, candles, plot, price, x, y, lo, hi, tStart, span + pad, bucketMs, mode);
  }

  drawGrid(price, plot, lo, hi, y, tStart, tEnd, x, lastPrice) {
    const { ctx, colors: c, cssW: w, cssH: h } = this;
    ctx.strokeStyle = c.grid;
    ctx.lineWidth = 1;
    ctx.fillStyle = c.text;
    ctx.textAlign = 'left';
    const step = niceStep(hi - lo, Math.max(2, (price.y1 - price.y0) / 48));
    const dec = decimalsFor(step);
    const lastY = y(lastPrice);
    ctx.beginPath();
    for (let i = Math.ceil(lo / step); i * step <= hi; i++) {
      const p = i * step;
      const yy = Math.round(y(p)) + 0.5;
      ctx.moveTo(plot.x0, yy);
      ctx.lineTo(plot.x1, yy);
      // the last-price marker covers its neighbourhood of the axis
      if (Math.abs(yy - lastY) > 16) ctx.fillText(p.toFixed(dec), plot.x1 + 6, yy);
    }
    const ts = timeStep(tEnd - tStart, Math.max(2, (plot.x1 - plot.x0) / 90));
    ctx.textAlign = 'center';
    for (let t = Math.ceil(tStart / ts) * ts; t <= tEnd; t += ts) {
      const xx = Math.round(x(t)) + 0.5;
      ctx.moveTo(xx, plot.y0);
      ctx.lineTo(xx, plot.y1);
      const label = fmtTime(t, ts < 1000 ? 1 : 0);
      const half = ctx.measureText(label).width / 2;
      if (xx - half >= plot.x0 && xx + half <= plot.x1) ctx.fillText(label, xx, h - AXIS_H / 2);
    }
    ctx.stroke();
    ctx.beginPath();
    ctx.strokeStyle = c.vol;
    ctx.moveTo(plot.x1 + 0.5, plot.y0);
    ctx.lineTo(plot.x1 + 0.5, plot.y1);
    ctx.moveTo(plot.x0, plot.y1 + 0.5);
    ctx.lineTo(w, plot.y1 + 0.5);
    ctx.stroke();
  }

  drawVolume(candles, vol, x, bucketMs) {
    const { ctx, colors: c } = this;
    let max = 0;
    for (const k of candles) if (k.v > max) max = k.v;
    if (max <= 0) return;
    const bw = Math.max(1, (x(bucketMs) - x(0)) * 0.7);
    for (const k of candles) {
      const hgt = (k.v / max) * (vol.y1 - vol.y0);
      ctx.fillStyle = k.c >= k.o ? c.up : c.down;
      ctx.globalAlpha = 0.35;
      ctx.fillRect(x(k.t + bucketMs / 2) - bw / 2, vol.y1 - hgt, bw, hgt);
    }
    ctx.globalAlpha = 1;
  }

  drawCandles(candles, x, y, bucketMs) {
    const { ctx, colors: c } = this;
    const bw = Math.max(1, (x(bucketMs) - x(0)) * 0.7);
    for (const k of candles) {
      const cx = Math.round(x(k.t + bucketMs / 2)) + 0.5;
      const color = k.c >= k.o ? c.up : c.down;
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.beginPath();
      ctx.moveTo(cx, y(k.h));
      ctx.lineTo(cx, y(k.l));
      ctx.stroke();
      const top = y(Math.max(k.o, k.c));
      const bh = Math.max(1, Math.abs(y(k.o) - y(k.c)));
      ctx.fillRect(cx - bw / 2, top, bw, bh);
    }
  }

  drawLine(s, x, y, price) {
    const { ctx, colors: c } = this;
    ctx.beginPath();
    for (let i = 0; i < s.len; i++) {
      const xx = x(s.time(i));
      const yy = y(s.price(i));
      if (i === 0) ctx.moveTo(xx, yy);
      else ctx.lineTo(xx, yy);
    }
    ctx.strokeStyle = c.line;
    ctx.lineWidth = 1.5;
    ctx.lineJoin = 'round';
    ctx.stroke();
    ctx.lineTo(x(s.time(s.len - 1)), price.y1);
    ctx.lineTo(x(s.time(0)), price.y1);
    ctx.closePath();
    const g = ctx.createLinearGradient(0, price.y0, 0, price.y1);
    g.addColorStop(0, 'rgba(77,163,255,0.22)');
    g.addColorStop(1, 'rgba(77,163,255,0)');
    ctx.fillStyle = g;
    ctx.fill();
    ctx.lineWidth = 1;
  }

  drawLast(s, plot, y) {
    const { ctx, colors: c } = this;
    const last = s.price(s.len - 1);
    const prev = s.len > 1 ? s.price(s.len - 2) : last;
    const color = last >= prev ? c.up : c.down;
    const yy = Math.round(y(last)) + 0.5;
    ctx.setLineDash([3, 3]);
    ctx.strokeStyle = color;
    ctx.beginPath();
    ctx.moveTo(plot.x0, yy);
    ctx.lineTo(plot.x1, yy);
    ctx.stroke();
    ctx.setLineDash([]);
    this.axisLabel(last.toFixed(last < 1 ? 4 : 2), plot.x1, yy, color);
  }

  axisLabel(text, x, y, color) {
    const { ctx } = this;
    ctx.fillStyle = color;
    ctx.fillRect(x + 1, y - 9, AXIS_W - 2, 18);
    ctx.fillStyle = '#0b0f14';
    ctx.textAlign = 'left';
    ctx.fillText(text, x + 6, y);
  }

  drawLegend(s, label, first) {
    const { ctx, colors: c } = this;
    const last = s.price(s.len - 1);
    const chg = last - first;
    const pct = (last / first - 1) * 100;
    ctx.textAlign = 'left';
    ctx.font = '600 13px system-ui, sans-serif';
    ctx.fillStyle = c.strong;
    ctx.fillText(label, 8, LEGEND_H / 2);
    const wSym = ctx.measureText(label).width;
    ctx.font = '12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
    ctx.fillStyle = chg >= 0 ? c.up : c.down;
    const sign = chg > 0 ? '+' : '';
    ctx.fillText(`${last.toFixed(last < 1 ? 4 : 2)}  ${sign}${chg.toFixed(2)} (${sign}${pct.toFixed(2)}%)`, 16 + wSym, LEGEND_H / 2);
    ctx.font = '11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
  }

  drawCrosshair(s, candles, plot, price, x, y, lo, hi, tStart, spanPad, bucketMs, mode) {
    const mouse = this.mouse;
    if (!mouse || mouse.x < plot.x0 || mouse.x > plot.x1 || mouse.y < plot.y0 || mouse.y > plot.y1) return;
    const { ctx, colors: c, cssH: h } = this;
    const mx = Math.round(mouse.x) + 0.5;
    const my = Math.round(mouse.y) + 0.5;
    ctx.strokeStyle = c.cross;
    ctx.setLineDash([4, 4]);
    ctx.beginPath();
    ctx.moveTo(mx, plot.y0);
    ctx.lineTo(mx, plot.y1);
    if (mouse.y <= price.y1) {
      ctx.moveTo(plot.x0, my);
      ctx.lineTo(plot.x1, my);
    }
    ctx.stroke();
    ctx.setLineDash([]);
    const t = tStart + ((mouse.x - plot.x0) / (plot.x1 - plot.x0)) * spanPad;
    if (mouse.y <= price.y1) {
      const p = lo + ((price.y1 - mouse.y) / (price.y1 - price.y0)) * (hi - lo);
      this.axisLabel(p.toFixed(p < 1 ? 4 : 2), plot.x1, my, c.cross);
    }
    const label = fmtTime(t, 1);
    ctx.font = '11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
    const tw = ctx.measureText(label).width + 10;
    ctx.fillStyle = c.cross;
    ctx.fillRect(mx - tw / 2, h - AXIS_H + 1, tw, AXIS_H - 2);
    ctx.fillStyle = '#0b0f14';
    ctx.textAlign = 'center';
    ctx.fillText(label, mx, h - AXIS_H / 2);
    this.readout(s, candles, t, bucketMs, mode);
  }

  /** Values under the crosshair, top-right of the plot. */
  readout(s, candles, t, bucketMs, mode) {
    const { ctx, colors: c, cssW: w } = this;
    let text;
    if (mode === 'candles') {
      const b = Math.floor(t / bucketMs) * bucketMs;
      const k = candles.find((q) => q.t === b);
      if (!k) return;
      const d = k.c < 1 ? 4 : 2;
      text = `O ${k.o.toFixed(d)}  H ${k.h.toFixed(d)}  L ${k.l.toFixed(d)}  C ${k.c.toFixed(d)}  V ${fmtVol(k.v)}`;
    } else {
      const i = nearestIndex(s, t);
      const p = s.price(i);
      text = `${fmtTime(s.time(i), 1)}  ${p.toFixed(p < 1 ? 4 : 2)}  V ${fmtVol(s.volume(i))}`;
    }
    ctx.textAlign = 'right';
    ctx.fillStyle = c.text;
    ctx.fillText(text, w - AXIS_W - 8, LEGEND_H / 2);
  }
}
