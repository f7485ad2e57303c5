// timesales.js — the #timesales panel: the tape of the charted symbol.
//
// Owns: filling a TradeTape (tape.js) for the selected symbol, first from
// GET /api/ticks (the server's recent updates, with the token) and then
// from the live ticks main.js hands it, and drawing it newest on top.
// Live ticks that arrive while the history is on its way are held and
// folded in after it (the tape skips the seqs the history already had), so
// the two meet without a gap or a repeat. A 401 leaves the panel waiting
// for a token (auth.js prompts); a 404 says the server has no such symbol;
// either way the live trades still come in.
//
// Drawing costs nothing per tick: record() only touches the model, and
// render() (once per animation frame) inserts the frame's new rows at the
// top in one fragment and recycles the rows that fall off the bottom.

import { TradeTape, TAPE_ROWS } from './tape.js';
import { fmtTime } from './scale.js';

/** Updates asked of /api/ticks: about 30% of the simulated feed's updates
 * are trades, so 1,000 fill the 200 rows on a busy symbol. */
const HISTORY_UPDATES = 1000;
/** Live ticks held while the history loads (the oldest go first). */
const HELD_MAX = 5000;
/** One formatter for every row: toLocaleString() builds a new one per call,
 * which cost milliseconds a frame on a busy symbol. */
const SIZE = new Intl.NumberFormat('en-US');

export class TimeSales {
  /**
   * @param {HTMLElement} root  the #timesales panel
   * @param {import('./auth.js').Auth} auth  fetches /api/ticks with the token
   */
  constructor(root, auth) {
    this.body = root.querySelector('tbody');
    this.symEl = root.querySelector('#ts-sym');
    this.noteEl = root.querySelector('#ts-note');
    this.auth = auth;
    this.tape = new TradeTape(TAPE_ROWS);
    this.sym = '';
    this.held = null;      // live ticks held while the history loads; null once it is in
    this.request = 0;      // bumps on every load, so a late answer is ignored
    this.state = 'idle';   // idle | loading | live | token | unknown | failed
    this.fromHistory = 0;  // trades that came from /api/ticks
    this.shown = { generation: 0, count: 0 };
    this.spare = [];       // rows that fell off the bottom, reused for new ones
    auth.onToken(() => {
      if (this.state === 'token') this.load();
    });
  }

  /** Follow `sym` ('' = none): start over from its history. */
  show(sym) {
    if (sym === this.sym) return;
    this.sym = sym;
    this.symEl.textContent = sym;
    this.load();
  }

  /** Start over for the same symbol: the seqs began again (a new epoch). */
  restart() {
    this.load();
  }

  /** One live tick (any symbol). O(1) unless it is the symbol's history catching up. */
  record(t) {
    if (t.sym !== this.sym) return;
    if (this.held) {
      this.held.push(t);
      if (this.held.length > HELD_MAX) this.held.shift();
    } else {
      this.tape.push(t);
    }
  }

  async load() {
    const request = ++this.request;
    this.tape.clear();
    this.fromHistory = 0;
    if (!this.sym) {
      this.held = null;
      this.setState('idle');
      return;
    }
    this.held = [];
    this.setState('loading');
    const path = `/api/ticks?sym=${encodeURIComponent(this.sym)}&limit=${HISTORY_UPDATES}`;
    // failed when the server is down: the live ticks after a reconnect still fill it
    const { items, state } = await this.auth.history(path);
    if (request !== this.request) return; // another symbol or a restart since
    for (const t of items) if (this.tape.push(t)) this.fromHistory += 1;
    const held = this.held;
    this.held = null;
    for (const t of held) this.tape.push(t);
    this.setState(state);
  }

  setState(state) {
    this.state = state;
    const notes = {
      idle: '',
      loading: 'loading…',
      live: '',
      token: 'history needs the token',
      unknown: 'no history: the server has no such symbol',
      failed: 'history unavailable',
    };
    const note = notes[state];
    if (this.noteEl.textContent !== note) this.noteEl.textContent = note;
  }

  /** Draw the trades added since the last frame. Call once per animation frame. */
  render() {
    const tape = this.tape;
    if (tape.generation !== this.shown.generation) {
      this.shown = { generation: tape.generation, count: 0 };
      while (this.body.lastChild) this.spare.push(this.body.removeChild(this.body.lastChild));
    }
    const fresh = Math.min(tape.count - this.shown.count, tape.trades.length);
    if (fresh <= 0) return;
    this.shown.count = tape.count;
    const overflow = this.body.rows.length + fresh - tape.max;
    for (let i = 0; i < overflow; i++) this.spare.push(this.body.removeChild(this.body.lastChild));
    const frag = document.createDocumentFragment();
    const trades = tape.trades;
    for (let i = trades.length - 1; i >= trades.length - fresh; i--) frag.appendChild(this.paint(trades[i]));
    this.body.insertBefore(frag, this.body.firstChild);
  }

  /** A row for one trade: a spare one rewritten, or a new one. */
  paint(trade) {
    const tr = this.spare.pop() || newRow();
    const [time, dir, px, size] = tr.cells;
    tr.dataset.seq = String(trade.seq);
    tr.dataset.n = String(trade.n);
    tr.dataset.dir = trade.dir > 0 ? 'u' : trade.dir < 0 ? 'd' : '';
    tr.title = trade.n ? `with ${trade.n} earlier updates not seen one by one: the size is their volume too` : '';
    time.textContent = fmtTime(trade.ms, 3);
    dir.textContent = trade.dir > 0 ? '▲' : trade.dir < 0 ? '▼' : '';
    px.textContent = trade.px.toFixed(trade.px < 1 ? 4 : 2);
    size.textContent = SIZE.format(trade.size);
    return tr;
  }

  /** What the tests read: the trades newest first, where they came from, and
   * whether the rows on screen are this tape's (false until the first frame
   * after a symbol change or a restart). */
  snapshot() {
    return {
      sym: this.sym,
      state: this.state,
      drawn: this.shown.generation === this.tape.generation,
      fromHistory: this.fromHistory,
      trades: this.tape.trades.map(({ seq, px, size, dir, n }) => ({ seq, px, size, dir, n })).reverse(),
    };
  }
}

function newRow() {
  const tr = document.createElement('tr');
  for (const cls of ['t', 'dir', 'px num', 'sz num']) {
    const td = document.createElement('td');
    td.className = cls;
    tr.appendChild(td);
  }
  return tr;
}
