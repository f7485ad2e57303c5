// state.js — the user's watchlist and settings, persisted and shareable.
//
// Owns: loading settings from localStorage, letting the URL override them
// (`/?symbols=AAPL,MSFT`, also `&encoding=msgpack`, `&max_hz=4` and
// `&tf=1m`, the chart's timeframe), saving
// every change back to localStorage, and keeping the address bar in sync so
// the current URL can always be copied and shared. Nothing else touches
// localStorage or history.

import { ENCODINGS, isValidSymbol } from './protocol.js';
import { TIMEFRAMES } from './bars.js';

const STORAGE_KEY = 'tickfeed.v1';
const SAVE_DELAY_MS = 200;
export const HZ_CHOICES = [0, 1, 4, 10]; // 0 = off (as fast as we read)

/** What a first-time visitor sees: liquid names the simulated feed carries. */
const DEFAULT_SYMBOLS = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'META', 'TSLA', 'JPM'];

function defaults() {
  return {
    symbols: [...DEFAULT_SYMBOLS], // explicit watchlist, in the order added
    all: false,                    // watching `*`
    maxHz: 0,                      // global max_hz
    symHz: {},                     // per-symbol max_hz overrides
    encoding: 'json',
    chartMode: 'line',             // 'line' | 'candles'
    tf: 'ticks',                   // the chart's timeframe: 'ticks' or bars of '1s' | '1m' | '5m' | '1h'
    selected: DEFAULT_SYMBOLS[0],  // symbol shown in the chart
    sort: { key: '', dir: 1 },     // '' = order added
  };
}

function parseSymbols(text) {
  const out = [];
  for (const raw of text.split(',')) {
    const s = raw.trim();
    if (s && isValidSymbol(s) && !out.includes(s)) out.push(s);
  }
  return out;
}

function readStorage() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY) || 'null');
  } catch {
    return null; // storage disabled or corrupt: start from defaults
  }
}

/** Merge stored values over defaults, keeping only well-typed fields. */
function sanitize(stored) {
  const s = defaults();
  if (!stored || typeof stored !== 'object') return s;
  if (Array.isArray(stored.symbols)) s.symbols = parseSymbols(stored.symbols.join(',')).filter((x) => x !== '*');
  if (typeof stored.all === 'boolean') s.all = stored.all;
  if (HZ_CHOICES.includes(stored.maxHz)) s.maxHz = stored.maxHz;
  if (stored.symHz && typeof stored.symHz === 'object') {
    for (const [k, v] of Object.entries(stored.symHz)) if (HZ_CHOICES.includes(v)) s.symHz[k] = v;
  }
  if (ENCODINGS.includes(stored.encoding)) s.encoding = stored.encoding;
  if (['line', 'candles'].includes(stored.chartMode)) s.chartMode = stored.chartMode;
  if (TIMEFRAMES.includes(stored.tf)) s.tf = stored.tf;
  if (typeof stored.selected === 'string') s.selected = stored.selected;
  if (stored.sort && typeof stored.sort.key === 'string') s.sort = { key: stored.sort.key, dir: stored.sort.dir === -1 ? -1 : 1 };
  return s;
}

export class Store {
  constructor() {
    this.state = sanitize(readStorage());
    this.applyUrl(new URLSearchParams(location.search));
    this.saveTimer = 0;
    this.save();
  }

  /** The URL wins over storage, so a shared link shows what its sender saw. */
  applyUrl(q) {
    const s = this.state;
    if (q.has('symbols')) {
      const syms = parseSymbols(q.get('symbols'));
      s.all = syms.includes('*');
      s.symbols = syms.filter((x) => x !== '*');
      if (s.symbols.length) s.selected = s.symbols[0];
    }
    if (ENCODINGS.includes(q.get('encoding'))) s.encoding = q.get('encoding');
    const hz = Number(q.get('max_hz'));
    if (q.has('max_hz') && HZ_CHOICES.includes(hz)) s.maxHz = hz;
    if (TIMEFRAMES.includes(q.get('tf'))) s.tf = q.get('tf');
  }

  /** Mutate the state through `fn`, then persist (debounced). */
  update(fn) {
    fn(this.state);
    clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => this.save(), SAVE_DELAY_MS);
  }

  save() {
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify(this.state));
    } catch {
      // storage full or disabled: the session still works, it just won't persist
    }
    history.replaceState(null, '', this.shareUrl());
  }

  /** A URL that reproduces the current watchlist and settings. */
  shareUrl() {
    const s = this.state;
    const q = new URLSearchParams();
    const syms = s.all ? ['*', ...s.symbols] : s.symbols;
    q.set('symbols', syms.join(','));
    if (s.encoding !== 'json') q.set('encoding', s.encoding);
    if (s.maxHz) q.set('max_hz', String(s.maxHz));
    if (s.tf !== 'ticks') q.set('tf', s.tf);
    // URLSearchParams escapes the commas; keep them readable.
    return `${location.pathname}?${q.toString().replace(/%2C/g, ',').replace(/%2A/g, '*')}`;
  }

  /** Effective max_hz for a symbol: its override, else the global choice. */
  hzFor(sym) {
    const o = this.state.symHz[sym];
    return o === undefined ? this.state.maxHz : o;
  }
}
