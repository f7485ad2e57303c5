// main.js — the dashboard's entry point: wires the modules together.
//
// Owns: the single event path (socket -> onEvents -> models, no DOM) and the
// single render path (one requestAnimationFrame loop writes the DOM and the
// canvas), the add/remove/select actions, resuming on a reconnect (the seqs
// held and the badge's note), toasts, and the test hook.
//
//   Connection --events--> onEvents --> SeqBook.observe (drops duplicates)
//                                    --> Watchlist.applyTick / Chart.record /
//                                        TimeSales.record / LatencyPanel.record (models)
//                        --bar events--> BarBook.record (the chart's bars)
//                        --book events--> BookFeed.record (the depth ladder's book)
//   requestAnimationFrame --> Chart.render, Watchlist.render, TimeSales.render,
//                             Ladder.render (DOM)
//
// Stable ids and attributes (the browser tests in tests/dashboard.rs use them):
//   #status              connection indicator; text contains "connected" when
//                        live (never otherwise), data-state = live|connecting|offline;
//                        its .note says what a reconnect resumed: "resumed · 37
//                        missed", "new session · snapshots" (hidden when empty)
//   #search, #search-list  symbol search box and its suggestions (li[data-sym])
//   #watchlist           table; rows tr[data-sym="AAPL"], cells td.sym td.last
//                        td.chg td.chgp td.bid td.ask td.spread td.vol td.ups
//                        (updates/s) td.n (conflation sum); button.rm removes;
//                        td.last[data-f=u|d] while tinted after a change;
//                        td.sym .badge shows a per-symbol max_hz
//   #watch-all           toggles watching `*`; #watch-count row count
//   #maxhz               global max_hz select (values 0, 1, 4, 10)
//   #symhz               max_hz for the charted symbol ('' = global)
//   #encoding            json | msgpack
//   #chart               canvas; #chartmode button[data-mode=line|candles]
//   #tf                  the chart's timeframe: ticks | 1s | 1m | 5m | 1h (bars
//                        from /api/bars, then the bars channel, as candles)
//   #latency             latency panel, values in [data-k=p50|p99|max|frames|ticks|fps]
//   #timesales           time & sales of the charted symbol (#ts-sym), #ts-note;
//                        #tape tbody rows tr[data-seq][data-n][data-dir=u|d|''],
//                        newest first, cells td.t (HH:MM:SS.mmm) td.dir (▲ ▼)
//                        td.px td.sz; data-n: updates the row stands for besides
//                        its own (its size is their volume)
//   #book                the depth ladder of the charted symbol (#book-sym):
//                        #ladder[data-sym][data-seq] (the book drawn), rows
//                        tr[data-side=a|b][data-i=0..9][data-px][data-sz] (level
//                        i of the asks or bids, 0 the best; no data-px past the
//                        book's depth), tr[data-last] on the last trade's level;
//                        #book-spread (ask1 - bid1), #book-last (last trade px),
//                        #book-note (why the server has no book for it)
//   #share, #toast
//   #token-dialog        the token prompt (a <dialog>, open while a token is
//                        needed); #token-input, its submit button, and
//                        #token-refused shown when a stored token was refused
// Test hook: window.tickfeed = { fps(), stats() (prompts: times the token
//   prompt opened; dups and gaps from SeqBook), sym(s) (ticks received per
//   symbol, kept after removal), resume() (the last connection's epoch kind
//   and tally), tape() (TimeSales.snapshot), dropSocket(hold) and reconnect()
//   (a lost connection, held offline until reconnect() with hold), resetRenderStats(),
//   msgpackDecode, LatencyWindow, planSubscribe, SeqBook, tallyResumed,
//   resumeNote, TradeTape, tradeOf, tickDirection, DeltaBook, add(s), remove(s),
//   setAll(on), select(s), held(s) (the full values of s's last tick, deltas applied),
//   bars() (BarBook.snapshot, with `drawn`: the candles the chart's last frame drew),
//   setTf(tf), mergeBar, book() (BookFeed.snapshot with `draws`: ladder
//   redraws, `frames`: animation frames, `drawnSeq`), BookFeed };
//   page errors are in window.__tickfeedErrors (js/errors.js).

import { Auth } from './auth.js';
import { Connection } from './connection.js';
import { listSymbols, subscribe, unsubscribe } from './protocol.js';
import { decode as msgpackDecode } from './msgpack.js';
import { Store } from './state.js';
import { Watchlist } from './watchlist.js';
import { Search } from './search.js';
import { Chart } from './chart.js';
import { LatencyPanel, LatencyWindow, nowEpochMs } from './latency.js';
import { RateControl, planSubscribe } from './ratecontrol.js';
import { SeqBook, tallyResumed, resumeNote } from './resume.js';
import { TimeSales } from './timesales.js';
import { TradeTape, tradeOf, tickDirection } from './tape.js';
import { DeltaBook } from './deltas.js';
import { BarBook, mergeBar } from './bars.js';
import { BookFeed } from './book.js';
import { Ladder } from './ladder.js';

const $ = (sel) => document.querySelector(sel);
const store = new Store();
const st = store.state;

/** Cumulative counters since the page loaded. */
const counters = { frames: 0, events: 0, ticks: 0, bytes: 0, acks: 0, errors: 0 };
/** Per-symbol receive stats, kept even after removal so tests can see updates stop. */
const perSym = new Map();
/** In `*` mode: symbols the user removed, ignored locally. */
const hidden = new Set();
/** The epoch and the last seq of every symbol: what a reconnect resumes from. */
const seqs = new SeqBook();
const deltas = new DeltaBook();
/** This connection's resume: the hello's epoch kind, whether `from` was sent, the acks' `resumed`. */
let resume = { kind: '', asked: false, acks: [] };

// ---- frame clock -----------------------------------------------------------
const FPS_WINDOW_MS = 1000;
const frameTimes = [];
const work = { frames: 0, totalMs: 0, maxMs: 0, chartMs: 0 };

function fps() {
  const now = performance.now();
  while (frameTimes.length && now - frameTimes[0] > FPS_WINDOW_MS) frameTimes.shift();
  return frameTimes.length * (1000 / FPS_WINDOW_MS);
}

// ---- modules ---------------------------------------------------------------
const auth = new Auth($('#token-dialog'));
const conn = new Connection({ statusEl: $('#status'), encoding: st.encoding, onEvents, onOpen, auth });
const watchlist = new Watchlist($('#watchlist'), {
  onSelect: select,
  onRemove: remove,
  onSort: (sort) => store.update((s) => { s.sort = sort; }),
  sort: st.sort,
});
const chart = new Chart($('#chart'));
const search = new Search($('#search'), $('#search-list'), { onAdd: add, isWatched: (s) => watchlist.has(s) });
const rate = new RateControl(
  { global: $('#maxhz'), perSymbol: $('#symhz'), perSymbolLabel: $('#symhz-sym') },
  store,
  (req) => conn.send(req),
  () => st.symbols,
  (sym, hz) => watchlist.setHzBadge(sym, hz),
);
const latency = new LatencyPanel($('#latency'), () => counters, fps, auth);
const timesales = new TimeSales($('#timesales'), auth);
const bars = new BarBook(auth, (req) => conn.send(req));
chart.setBook(bars);
const book = new BookFeed((req) => conn.send(req));
const ladder = new Ladder($('#book'), book);

// ---- socket ----------------------------------------------------------------
function onOpen() {
  conn.send(listSymbols());
  const reqs = planSubscribe({
    symbols: st.symbols, all: st.all, globalHz: st.maxHz, symHz: st.symHz, snapshot: true,
    resume: (symbols, except) => seqs.resumeFor(symbols, except),
  });
  resume = { kind: '', asked: reqs.some((r) => r.from), acks: [] };
  for (const req of reqs) conn.send(req);
  bars.reconnected();
  book.reconnected();
}

/** The hello comes before any reply: a new epoch resets the seqs before its snapshots. */
function onHello(ev) {
  resume.kind = seqs.hello(ev.epoch);
  if (resume.kind === 'new') {
    timesales.restart();
    deltas.clear();
  }
  paintResume();
}

function onAck(ev) {
  counters.acks += 1;
  if (book.answered(ev)) return;
  if (!ev.resumed) return;
  resume.acks.push(ev.resumed);
  paintResume();
}

function paintResume() {
  const tally = tallyResumed(resume.acks);
  const worst = tally.worst.map(([sym, n]) => `${sym} ${n.toLocaleString('en-US')}`).join(', ');
  const warn = resume.kind === 'new' || tally.missed > 0 || tally.snapshots > 0;
  conn.setNote(resumeNote(resume.kind, resume.asked, tally), worst ? `missed most: ${worst}` : '', warn);
}

function onEvents(events, bytes) {
  counters.frames += 1;
  counters.bytes += bytes;
  counters.events += events.length;
  const now = nowEpochMs();
  for (const ev of events) {
    switch (ev.ev) {
      case 'tick': onTick(ev, now); break;
      case 'bar': bars.record(ev); break;
      case 'book': book.record(ev); break;
      case 'symbols': search.setSymbols(ev.symbols || []); break;
      case 'ack': onAck(ev); break;
      case 'error': onError(ev); break;
      case 'hello': onHello(ev); break;
      default: // pong is the connection's business
    }
  }
}

function onTick(delta, now) {
  if (!seqs.observe(delta)) return; // a duplicate: never applied twice
  const t = deltas.expand(delta); // the full values from here on
  counters.ticks += 1;
  let p = perSym.get(t.sym);
  if (!p) perSym.set(t.sym, (p = { count: 0, nSum: 0, seq: 0, px: NaN, snaps: 0 }));
  p.count += 1;
  p.nSum += t.n || 0;
  p.seq = t.seq;
  if (t.px !== undefined) p.px = t.px;
  if (t.snap) p.snaps += 1;
  else latency.record(t.ts, now); // a snapshot's ts is the last update's, not fresh
  if (!watchlist.has(t.sym)) {
    if (!st.all || hidden.has(t.sym)) return; // in flight after a remove
    watchlist.ensure(t.sym);
  }
  watchlist.applyTick(t);
  chart.record(t);
  timesales.record(t);
  book.trade(t);
}

function onError(ev) {
  counters.errors += 1;
  if (book.answered(ev)) return; // the ladder says why
  if (ev.code === 'unknown_symbol' && Array.isArray(ev.symbols)) {
    for (const sym of ev.symbols) dropLocal(sym);
    toast(`Unknown symbol: ${ev.symbols.join(', ')}`);
  } else {
    toast(`${ev.code || 'error'}: ${ev.msg || ''}`);
  }
}

// ---- actions ---------------------------------------------------------------
function add(sym) {
  if (sym === '*') {
    setAll(true);
    return;
  }
  hidden.delete(sym);
  if (!st.symbols.includes(sym)) {
    store.update((s) => { s.symbols.push(sym); });
    watchlist.ensure(sym);
    const o = st.symHz[sym];
    if (o !== undefined) watchlist.setHzBadge(sym, o);
    conn.send(subscribe([sym], { maxHz: store.hzFor(sym), snapshot: true }));
  }
  select(sym);
}

function remove(sym) {
  if (st.all) hidden.add(sym);
  else conn.send(unsubscribe([sym]));
  dropLocal(sym);
}

/** Forget a symbol on the page (after remove, or an unknown_symbol error). */
function dropLocal(sym) {
  watchlist.remove(sym);
  chart.forget(sym);
  seqs.forget(sym);
  deltas.forget(sym);
  store.update((s) => {
    s.symbols = s.symbols.filter((x) => x !== sym);
    delete s.symHz[sym];
  });
  if (watchlist.selected === sym) select(watchlist.symbols()[0] || '');
}

function setAll(on) {
  if (on === st.all) return;
  store.update((s) => { s.all = on; });
  hidden.clear();
  if (on) {
    conn.send(subscribe(['*'], { maxHz: st.maxHz, snapshot: true }));
  } else {
    conn.send(unsubscribe(['*'])); // stops everything: re-add the explicit list
    for (const sym of watchlist.symbols()) if (!st.symbols.includes(sym)) dropLocal(sym);
    for (const req of planSubscribe({ symbols: st.symbols, all: false, globalHz: st.maxHz, symHz: st.symHz, snapshot: true })) {
      conn.send(req);
    }
  }
  paintAll();
}

function select(sym) {
  watchlist.select(sym);
  chart.show(sym);
  timesales.show(sym);
  bars.follow(sym, st.tf, store.hzFor(sym));
  book.follow(sym);
  rate.showSymbol(sym);
  if (sym !== st.selected) store.update((s) => { s.selected = sym; });
}

function paintAll() {
  const b = $('#watch-all');
  b.setAttribute('aria-pressed', String(st.all));
  b.textContent = st.all ? 'Watching all ×' : 'Watch all';
}

let toastTimer = 0;
function toast(text) {
  const el = $('#toast');
  el.textContent = text;
  el.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('show'), 4000);
}

// ---- controls --------------------------------------------------------------
$('#encoding').value = st.encoding;
$('#encoding').addEventListener('change', (e) => {
  const enc = e.target.value;
  store.update((s) => { s.encoding = enc; });
  conn.setEncoding(enc);
});
$('#watch-all').addEventListener('click', () => setAll(!st.all));
$('#share').addEventListener('click', async () => {
  store.save();
  const url = location.href;
  try {
    await navigator.clipboard.writeText(url);
    toast('Link copied');
  } catch {
    toast(url); // clipboard needs a secure context; show the link instead
  }
});
const modeButtons = document.querySelectorAll('#chartmode button');
function setMode(mode) {
  chart.setMode(mode);
  for (const b of modeButtons) b.setAttribute('aria-pressed', String(b.dataset.mode === mode));
  if (mode !== st.chartMode) store.update((s) => { s.chartMode = mode; });
}
for (const b of modeButtons) b.addEventListener('click', () => setMode(b.dataset.mode));
function setTf(tf) {
  $('#tf').value = tf;
  if (tf !== st.tf) store.update((s) => { s.tf = tf; });
  bars.follow(watchlist.selected || '', tf, store.hzFor(watchlist.selected || ''));
}
$('#tf').addEventListener('change', (e) => setTf(e.target.value));

// ---- render loop -----------------------------------------------------------
let shownCount = -1;
function frame() {
  const t0 = performance.now();
  frameTimes.push(t0);
  while (t0 - frameTimes[0] > FPS_WINDOW_MS) frameTimes.shift();
  // The chart first: setting a canvas font may resolve styles, which is
  // cheap before this frame's table writes and costly after them.
  chart.render();
  work.chartMs += performance.now() - t0;
  watchlist.render(t0);
  timesales.render();
  ladder.render();
  if (watchlist.size !== shownCount) {
    shownCount = watchlist.size;
    $('#watch-count').textContent = shownCount ? `· ${shownCount}` : '';
  }
  const ms = performance.now() - t0;
  work.frames += 1;
  work.totalMs += ms;
  if (ms > work.maxMs) work.maxMs = ms;
  requestAnimationFrame(frame);
}

// ---- start -----------------------------------------------------------------
for (const sym of st.symbols) {
  watchlist.ensure(sym);
  if (st.symHz[sym] !== undefined) watchlist.setHzBadge(sym, st.symHz[sym]);
}
select(st.symbols.includes(st.selected) ? st.selected : st.symbols[0] || '');
setMode(st.chartMode);
setTf(st.tf);
paintAll();
conn.start();
requestAnimationFrame(frame);

window.tickfeed = {
  fps,
  stats: () => ({
    state: $('#status').dataset.state,
    connected: conn.isOpen,
    connects: conn.connects,
    prompts: auth.prompts,
    encoding: conn.serverEncoding,
    rttMs: conn.rttMs,
    ...counters,
    rows: watchlist.size,
    fps: fps(),
    renderFrames: work.frames,
    renderAvgMs: work.frames ? work.totalMs / work.frames : 0,
    renderMaxMs: work.maxMs,
    chartAvgMs: work.frames ? work.chartMs / work.frames : 0,
    handleMs: conn.handleMs,
    dups: seqs.dups,
    deltas: deltas.applied,
    deltaOrphans: deltas.orphans,
    gaps: seqs.gaps,
  }),
  resume: () => ({ kind: resume.kind, asked: resume.asked, ...tallyResumed(resume.acks), note: $('#status .note').textContent }),
  tape: () => timesales.snapshot(),
  dropSocket: (hold) => conn.drop(hold),
  reconnect: () => conn.release(),
  held: (s) => deltas.held.get(s) || null,
  bars: () => ({ ...bars.snapshot(), drawn: { ...chart.drawnBars } }),
  setTf,
  mergeBar,
  book: () => ({ ...book.snapshot(), draws: ladder.draws, drawnSeq: ladder.drawn.seq, frames: work.frames }),
  BookFeed,
  sym: (s) => ({ ...(perSym.get(s) || { count: 0, nSum: 0, seq: 0, px: NaN, snaps: 0 }) }),
  resetRenderStats: () => { work.frames = 0; work.totalMs = 0; work.maxMs = 0; work.chartMs = 0; },
  msgpackDecode,
  LatencyWindow,
  planSubscribe,
  SeqBook,
  tallyResumed,
  resumeNote,
  TradeTape,
  tradeOf,
  tickDirection,
  DeltaBook,
  add,
  remove,
  setAll,
  select,
};
