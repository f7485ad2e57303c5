// ladder.js — the #book panel: the depth ladder of the charted symbol.
//
// Owns: drawing a BookFeed (book.js) as a price ladder, asks above and
// bids below with the best of each next to the spread row in the middle,
// each level's size as a horizontal bar (scaled to the largest size shown
// on either side), and the last trade price marked on its level (and
// named in the spread row, where it shows even when no level holds it).
//
// Drawing happens at most once per animation frame and only when the book
// or the last trade changed: render() compares generations. The rows are
// made once (BOOK_DEPTH per side) and rewritten in place. When the panel
// is shorter than the ladder, a symbol's first book scrolls the spread row
// to the middle, where the eye looks.

import { BOOK_DEPTH } from './book.js';

const SIZE = new Intl.NumberFormat('en-US');

/** Decimals the ladder shows of a price (and of a spread at that price). */
function pxDecimals(px) {
  return px < 1 ? 4 : 2;
}

function fmtPx(px) {
  return px.toFixed(pxDecimals(px));
}

export class Ladder {
  /**
   * @param {HTMLElement} root  the #book panel
   * @param {import('./book.js').BookFeed} book
   */
  constructor(root, book) {
    this.book = book;
    this.symEl = root.querySelector('#book-sym');
    this.spreadEl = root.querySelector('#book-spread');
    this.lastEl = root.querySelector('#book-last');
    this.noteEl = root.querySelector('#book-note');
    this.table = root.querySelector('#ladder');
    this.wrap = root.querySelector('.table-wrap');
    this.mid = this.table.querySelector('tbody.mid');
    this.centred = ''; // the symbol whose spread row was scrolled to the middle
    this.askRows = makeRows(this.table.querySelector('tbody.asks'), 'a');
    this.bidRows = makeRows(this.table.querySelector('tbody.bids'), 'b');
    this.drawn = { generation: -1, sym: '', seq: 0 };
    this.draws = 0; // ladder redraws, for the tests
  }

  /** Draw the book if it changed since the last frame. Call once per animation frame. */
  render() {
    const book = this.book;
    if (book.generation === this.drawn.generation) return;
    this.drawn = { generation: book.generation, sym: book.sym, seq: book.seq };
    this.draws += 1;
    if (this.symEl.textContent !== book.sym) this.symEl.textContent = book.sym;
    if (this.noteEl.textContent !== book.refusal) this.noteEl.textContent = book.refusal;
    let biggest = 1;
    for (const [, sz] of book.bids) biggest = Math.max(biggest, sz);
    for (const [, sz] of book.asks) biggest = Math.max(biggest, sz);
    // The last trade is marked where its price reads the same as a level's.
    const last = Number.isFinite(book.last) ? fmtPx(book.last) : '';
    paintSide(this.bidRows, book.bids, biggest, last);
    paintSide(this.askRows, book.asks, biggest, last);
    const spread = book.spread;
    this.spreadEl.textContent = Number.isFinite(spread) ? spread.toFixed(pxDecimals(book.asks[0][0])) : '—';
    this.lastEl.textContent = last || '—';
    this.table.dataset.seq = String(book.seq);
    this.table.dataset.sym = book.sym;
    if (this.centred !== book.sym && book.bids.length + book.asks.length > 0) {
      this.centred = book.sym;
      this.centreSpread();
    }
  }

  /** Scroll the spread row to the middle of the panel (once per symbol: it reads layout). */
  centreSpread() {
    const row = this.mid.getBoundingClientRect();
    const view = this.wrap.getBoundingClientRect();
    this.wrap.scrollTop += row.top + row.height / 2 - (view.top + view.height / 2);
  }
}

/**
 * BOOK_DEPTH empty rows in `body` (bid size, price, ask size), returned by
 * level: asks are laid out deepest first, so the best ask sits just above
 * the spread row and the best bid just below it.
 */
function makeRows(body, side) {
  const rows = [];
  for (let k = 0; k < BOOK_DEPTH; k++) {
    const i = side === 'a' ? BOOK_DEPTH - 1 - k : k;
    const tr = document.createElement('tr');
    tr.dataset.side = side;
    tr.dataset.i = String(i);
    for (const cls of ['bsz num', 'px num', 'asz num']) {
      const td = document.createElement('td');
      td.className = cls;
      tr.appendChild(td);
    }
    const sizeCell = tr.cells[side === 'b' ? 0 : 2];
    const bar = document.createElement('span');
    bar.className = 'bar';
    const value = document.createElement('span');
    value.className = 'v';
    sizeCell.append(bar, value);
    rows[i] = tr;
    body.appendChild(tr);
  }
  return rows;
}

/** Write `levels` (best first) into `rows` (row i = level i), marking the
 * level priced `last` (as shown); rows past the book are blank. */
function paintSide(rows, levels, biggest, last) {
  for (let i = 0; i < rows.length; i++) {
    const tr = rows[i];
    const level = levels[i];
    const sizeCell = tr.cells[tr.dataset.side === 'b' ? 0 : 2];
    const [bar, value] = sizeCell.children;
    if (!level) {
      if (tr.dataset.px === undefined) continue;
      delete tr.dataset.px;
      delete tr.dataset.sz;
      delete tr.dataset.last;
      tr.cells[1].textContent = '';
      value.textContent = '';
      bar.style.width = '0';
      continue;
    }
    const [px, sz] = level;
    const shown = fmtPx(px);
    tr.dataset.px = String(px);
    tr.dataset.sz = String(sz);
    if (shown === last) tr.dataset.last = '';
    else delete tr.dataset.last;
    tr.cells[1].textContent = shown;
    value.textContent = SIZE.format(sz);
    bar.style.width = `${((100 * sz) / biggest).toFixed(1)}%`;
  }
}
