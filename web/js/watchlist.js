// watchlist.js — the #watchlist table: one row per watched symbol.
//
// Owns: the per-symbol quote model (last, first price seen, bid/ask, volume,
// update and conflation counts) and its rendering. Ticks only touch the model
// and mark the row dirty (applyTick is O(1), no DOM); render() runs once per
// animation frame and writes just the cells that changed, and only for rows
// on screen (an IntersectionObserver tracks them; a row is repainted as it
// scrolls into view), so 500 rows cost what the visible 30 cost. Also owns sorting
// (header clicks, re-sorted at most once a second so rows do not jump under
// the pointer) and the up/down tint on price changes.

const COLUMNS = [
  // key, header, css class, numeric, title
  ['sym', 'Symbol', 'sym', false, 'Symbol; click a row to chart it'],
  ['last', 'Last', 'last', true, 'Last trade price'],
  ['chg', 'Chg', 'chg', true, 'Change since the first price seen'],
  ['chgp', 'Chg %', 'chgp', true, 'Change % since the first price seen'],
  ['bid', 'Bid', 'bid', true, 'Best bid'],
  ['ask', 'Ask', 'ask', true, 'Best ask'],
  ['spread', 'Spread', 'spread', true, 'Ask minus bid'],
  ['vol', 'Volume', 'vol', true, 'Cumulative volume'],
  ['ups', 'Upd/s', 'ups', true, 'Events received per second'],
  ['n', 'n', 'n', true, 'Source updates merged by conflation (sum)'],
];
const RATE_WINDOW_MS = 2000;
const RESORT_EVERY_MS = 1000;
/** How long a price cell stays tinted after a change. Timed here rather than
 * by a CSS animation: hundreds of restarted animations cost a full style
 * pass per frame, a tint is two attribute writes. */
const FLASH_MS = 400;

class Row {
  constructor(sym) {
    this.sym = sym;
    this.first = NaN; // first trade price seen: the base of chg and chg %
    this.last = NaN;
    this.bid = NaN;
    this.ask = NaN;
    this.vol = NaN;
    this.seq = 0;
    this.count = 0;   // events received
    this.nSum = 0;    // sum of `n` over received events
    this.ups = 0;
    this.marks = [];  // [timeMs, count] samples for the rate
    this.dir = 0;     // +1 up, -1 down, 0 unchanged since last render
    this.flashUntil = 0;
    this.decimals = 2;
    this.hz = undefined; // per-symbol max_hz override shown as a badge
    this.el = null;
    this.cells = null;
  }

  get chg() { return this.last - this.first; }
  get chgp() { return (this.last / this.first - 1) * 100; }
  get spread() { return this.ask - this.bid; }

  /** Value for a sort key; NaN sorts last. */
  key(k) {
    return k === 'n' ? this.nSum : this[k];
  }
}

export class Watchlist {
  /**
   * @param {HTMLTableElement} table
   * @param {{onSelect:(s:string)=>void, onRemove:(s:string)=>void, onSort:(sort:object)=>void, sort:object}} o
   */
  constructor(table, { onSelect, onRemove, onSort, sort }) {
    this.table = table;
    this.tbody = table.tBodies[0];
    this.onSelect = onSelect;
    this.onRemove = onRemove;
    this.onSort = onSort;
    this.sort = sort || { key: '', dir: 1 };
    this.rows = new Map();
    this.order = [];          // rows in display order
    this.dirty = new Set();
    this.flashing = new Set(); // rows whose last-price cell is tinted
    this.structural = true;   // rows added/removed/reordered since last render
    this.lastResort = 0;
    this.selected = '';
    this.rowOf = new WeakMap(); // tr -> Row, for the visibility observer
    this.observer = new IntersectionObserver((entries) => this.visibility(entries), {
      root: table.closest('.table-wrap'),
      rootMargin: '200px 0px',
    });
    this.buildHeader();
    this.empty = this.buildEmpty();
    table.addEventListener('click', (e) => this.clicked(e));
  }

  buildHeader() {
    const tr = this.table.tHead.rows[0];
    tr.textContent = '';
    for (const [key, label, cls, numeric, title] of COLUMNS) {
      const th = document.createElement('th');
      th.className = cls + (numeric ? ' num' : '');
      th.dataset.key = key;
      th.title = title;
      th.scope = 'col';
      th.innerHTML = `<button type="button" class="sort">${label}<span class="arrow"></span></button>`;
      tr.appendChild(th);
    }
    const th = document.createElement('th');
    th.className = 'x';
    th.innerHTML = '<span class="sr">Remove</span>';
    tr.appendChild(th);
    this.paintSortArrows();
  }

  buildEmpty() {
    const tr = document.createElement('tr');
    tr.className = 'empty';
    tr.innerHTML = `<td colspan="${COLUMNS.length + 1}">No symbols yet. Type a ticker in the search box, or <kbd>*</kbd> to watch everything.</td>`;
    return tr;
  }

  has(sym) { return this.rows.has(sym); }
  get size() { return this.rows.size; }
  symbols() { return [...this.rows.keys()]; }
  row(sym) { return this.rows.get(sym); }

  /** Add an (empty) row if missing; returns it. */
  ensure(sym) {
    let row = this.rows.get(sym);
    if (!row) {
      row = new Row(sym);
      this.rows.set(sym, row);
      this.order.push(row);
      this.dirty.add(row);
      this.structural = true;
    }
    return row;
  }

  remove(sym) {
    const row = this.rows.get(sym);
    if (!row) return;
    this.rows.delete(sym);
    this.dirty.delete(row);
    this.flashing.delete(row);
    this.order = this.order.filter((r) => r !== row);
    if (row.el) {
      this.observer.unobserve(row.el);
      row.el.remove();
    }
    this.structural = true;
  }

  clear() {
    for (const sym of [...this.rows.keys()]) this.remove(sym);
  }

  setHzBadge(sym, hz) {
    const row = this.rows.get(sym);
    if (row && row.hz !== hz) {
      row.hz = hz;
      row.badgeDirty = true;
      this.dirty.add(row);
    }
  }

  select(sym) {
    if (this.selected === sym) return;
    const old = this.rows.get(this.selected);
    if (old && old.el) old.el.classList.remove('selected');
    this.selected = sym;
    const row = this.rows.get(sym);
    if (row && row.el) row.el.classList.add('selected');
  }

  /** Fold one tick into the model. No DOM work. Returns the row or undefined. */
  applyTick(t) {
    const row = this.rows.get(t.sym);
    if (!row) return undefined;
    if (t.px !== undefined) {
      if (Number.isNaN(row.first)) {
        row.first = t.px;
        row.decimals = t.px < 1 ? 4 : 2;
      }
      if (!t.snap && !Number.isNaN(row.last) && t.px !== row.last) row.dir = t.px > row.last ? 1 : -1;
      row.last = t.px;
    }
    if (t.bid !== undefined) row.bid = t.bid;
    if (t.ask !== undefined) row.ask = t.ask;
    if (t.vol !== undefined) row.vol = t.vol;
    row.seq = t.seq;
    row.count += 1;
    row.nSum += t.n || 0;
    this.dirty.add(row);
    return row;
  }

  /** Write pending changes to the DOM. Call once per animation frame. */
  render(now) {
    this.updateRates(now);
    if (this.sort.key && now - this.lastResort > RESORT_EVERY_MS) this.resort(now);
    for (const row of this.dirty) {
      if (!row.el) this.createRowEl(row);
      if (row.visible) this.paintRow(row, now);
      else row.stale = true; // painted when it scrolls into view
    }
    this.dirty.clear();
    for (const row of this.flashing) {
      if (now < row.flashUntil) continue;
      if (row.cells) delete row.cells.last.dataset.f;
      this.flashing.delete(row);
    }
    if (this.structural) this.placeRows();
  }

  updateRates(now) {
    for (const row of this.order) {
      const m = row.marks;
      if (m.length && now - m[m.length - 1][0] < 250) continue; // sample 4x a second
      m.push([now, row.count]);
      while (m.length > 2 && now - m[1][0] >= RATE_WINDOW_MS) m.shift();
      const [t0, c0] = m[0];
      const ups = now - t0 > 0 ? ((row.count - c0) * 1000) / (now - t0) : 0;
      const rounded = ups < 10 ? Math.round(ups * 10) / 10 : Math.round(ups);
      if (rounded !== row.ups) {
        row.ups = rounded;
        this.dirty.add(row);
      }
    }
  }

  createRowEl(row) {
    const tr = document.createElement('tr');
    tr.dataset.sym = row.sym;
    const cells = {};
    for (const [key, , cls, numeric] of COLUMNS) {
      const td = document.createElement('td');
      td.className = cls + (numeric ? ' num' : '');
      tr.appendChild(td);
      cells[key] = td;
    }
    cells.sym.innerHTML = `<span class="tkr"></span><span class="badge" hidden></span>`;
    cells.sym.firstChild.textContent = row.sym;
    const x = document.createElement('td');
    x.className = 'x';
    x.innerHTML = `<button type="button" class="rm" title="Remove">×</button>`;
    x.firstChild.setAttribute('aria-label', `Remove ${row.sym}`);
    tr.appendChild(x);
    if (row.sym === this.selected) tr.classList.add('selected');
    row.el = tr;
    row.visible = true; // until the observer says otherwise: paint once
    this.rowOf.set(tr, row);
    this.observer.observe(tr);
    row.cells = cells;
    row.shown = {};
    row.badgeDirty = true;
    this.structural = true;
  }

  paintRow(row, now) {
    const c = row.cells;
    const d = row.decimals;
    this.setText(row, 'last', fmt(row.last, d));
    const chg = row.chg;
    this.setText(row, 'chg', fmtSigned(chg, d));
    this.setText(row, 'chgp', Number.isFinite(row.chgp) ? `${fmtSigned(row.chgp, 2)}%` : '—');
    const tone = !(chg !== 0 && Number.isFinite(chg)) ? '' : chg > 0 ? 'pos' : 'neg';
    if (row.tone !== tone) {
      row.tone = tone;
      c.chg.dataset.tone = tone;
      c.chgp.dataset.tone = tone;
    }
    this.setText(row, 'bid', fmt(row.bid, d));
    this.setText(row, 'ask', fmt(row.ask, d));
    this.setText(row, 'spread', fmt(row.spread, d));
    this.setText(row, 'vol', fmtCompact(row.vol));
    this.setText(row, 'ups', String(row.ups));
    this.setText(row, 'n', String(row.nSum));
    if (row.dir !== 0) {
      const f = row.dir > 0 ? 'u' : 'd';
      if (c.last.dataset.f !== f) c.last.dataset.f = f;
      row.flashUntil = now + FLASH_MS;
      this.flashing.add(row);
      row.dir = 0;
    }
    if (row.badgeDirty) {
      const b = c.sym.lastChild;
      b.hidden = row.hz === undefined;
      b.textContent = row.hz === undefined ? '' : row.hz ? `${row.hz} Hz` : 'live';
      row.badgeDirty = false;
    }
  }

  visibility(entries) {
    for (const e of entries) {
      const row = this.rowOf.get(e.target);
      if (!row) continue;
      row.visible = e.isIntersecting;
      if (row.visible && row.stale) {
        row.stale = false;
        this.dirty.add(row);
      }
    }
  }

  setText(row, key, text) {
    if (row.shown[key] !== text) {
      row.shown[key] = text;
      row.cells[key].textContent = text;
    }
  }

  /** Put row elements in display order; only moves what is out of place. */
  placeRows() {
    this.structural = false;
    const body = this.tbody;
    if (this.order.length === 0) {
      if (this.empty.parentNode !== body) body.appendChild(this.empty);
      return;
    }
    if (this.empty.parentNode) this.empty.remove();
    let cursor = body.firstElementChild;
    for (const row of this.order) {
      if (!row.el) continue;
      if (row.el !== cursor) body.insertBefore(row.el, cursor);
      else cursor = cursor.nextElementSibling;
    }
  }

  resort(now) {
    this.lastResort = now;
    const { key, dir } = this.sort;
    if (!key) return;
    const before = this.order.slice();
    const cmp = key === 'sym'
      ? (a, b) => dir * a.sym.localeCompare(b.sym)
      : (a, b) => {
          const x = a.key(key);
          const y = b.key(key);
          if (Number.isNaN(x)) return Number.isNaN(y) ? 0 : 1;
          if (Number.isNaN(y)) return -1;
          return dir * (x - y);
        };
    this.order.sort(cmp);
    if (this.order.some((r, i) => r !== before[i])) this.structural = true;
  }

  /** Unsorted order = the order symbols were added. */
  restoreInsertionOrder() {
    this.order = [...this.rows.values()];
    this.structural = true;
  }

  clicked(e) {
    const th = e.target.closest('th[data-key]');
    if (th) {
      this.cycleSort(th.dataset.key);
      return;
    }
    const tr = e.target.closest('tr[data-sym]');
    if (!tr) return;
    if (e.target.closest('button.rm')) this.onRemove(tr.dataset.sym);
    else this.onSelect(tr.dataset.sym);
  }

  /** Header click: ascending, then descending, then back to the order added. */
  cycleSort(key) {
    const s = this.sort;
    if (s.key !== key) this.sort = { key, dir: key === 'sym' ? 1 : -1 };
    else if (s.dir === (key === 'sym' ? 1 : -1)) this.sort = { key, dir: -s.dir };
    else this.sort = { key: '', dir: 1 };
    if (this.sort.key) this.resort(performance.now());
    else this.restoreInsertionOrder();
    this.paintSortArrows();
    this.onSort(this.sort);
  }

  paintSortArrows() {
    for (const th of this.table.tHead.querySelectorAll('th[data-key]')) {
      const on = th.dataset.key === this.sort.key;
      th.setAttribute('aria-sort', on ? (this.sort.dir > 0 ? 'ascending' : 'descending') : 'none');
      th.querySelector('.arrow').textContent = on ? (this.sort.dir > 0 ? ' ▲' : ' ▼') : '';
    }
  }
}

function fmt(x, d) {
  return Number.isFinite(x) ? x.toFixed(d) : '—';
}

function fmtSigned(x, d) {
  if (!Number.isFinite(x)) return '—';
  const s = x.toFixed(d);
  if (Number(s) === 0) return (0).toFixed(d); // no "-0.00" for a tiny fall
  return x > 0 ? `+${s}` : s;
}

function fmtCompact(x) {
  if (!Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  if (a >= 1e9) return `${(x / 1e9).toFixed(2)}B`;
  if (a >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${(x / 1e3).toFixed(1)}K`;
  return String(Math.round(x));
}
