// search.js — the #search box: find a symbol in the server's list and add it.
//
// Owns: filtering the symbol list (from the `symbols` request) as the user
// types, the suggestion list (#search-list) and its keyboard navigation
// (ArrowUp/ArrowDown move, Enter adds, Escape closes then clears), and the
// `*` entry that watches everything. It reports choices through onAdd and
// never talks to the server itself. Press `/` anywhere to focus it.

import { isValidSymbol } from './protocol.js';

const MAX_SUGGESTIONS = 12;

export class Search {
  /**
   * @param {HTMLInputElement} input
   * @param {HTMLUListElement} list
   * @param {{onAdd:(sym:string)=>void, isWatched:(sym:string)=>boolean}} o
   */
  constructor(input, list, { onAdd, isWatched }) {
    this.input = input;
    this.list = list;
    this.onAdd = onAdd;
    this.isWatched = isWatched;
    this.symbols = [];
    this.items = [];
    this.active = -1;
    input.setAttribute('role', 'combobox');
    input.setAttribute('aria-autocomplete', 'list');
    input.setAttribute('aria-controls', list.id);
    input.setAttribute('aria-expanded', 'false');
    list.setAttribute('role', 'listbox');
    input.addEventListener('input', () => this.refresh());
    input.addEventListener('focus', () => this.refresh());
    input.addEventListener('blur', () => this.close());
    input.addEventListener('keydown', (e) => this.key(e));
    // mousedown, not click: it fires before the input's blur closes the list
    list.addEventListener('mousedown', (e) => {
      const li = e.target.closest('li[data-sym]');
      if (!li) return;
      e.preventDefault();
      this.choose(li.dataset.sym);
    });
    document.addEventListener('keydown', (e) => {
      if (e.key === '/' && document.activeElement !== input && !isEditable(e.target)) {
        e.preventDefault();
        input.focus();
      }
    });
  }

  /** The server's symbol list (replaces any earlier one). */
  setSymbols(symbols) {
    this.symbols = [...symbols].sort();
    if (document.activeElement === this.input) this.refresh();
  }

  /** Ranked matches: exact, then prefix (shortest first), then substring. */
  match(query) {
    const q = query.trim().toUpperCase();
    if (!q) return [];
    if (q === '*') return ['*'];
    const exact = [];
    const prefix = [];
    const inner = [];
    for (const s of this.symbols) {
      const u = s.toUpperCase();
      if (u === q) exact.push(s);
      else if (u.startsWith(q)) prefix.push(s);
      else if (u.includes(q)) inner.push(s);
    }
    prefix.sort((a, b) => a.length - b.length || a.localeCompare(b));
    return [...exact, ...prefix, ...inner].slice(0, MAX_SUGGESTIONS);
  }

  refresh() {
    this.items = this.match(this.input.value);
    this.active = this.items.length ? 0 : -1;
    this.paint();
  }

  paint() {
    const ul = this.list;
    ul.textContent = '';
    this.items.forEach((sym, i) => {
      const li = document.createElement('li');
      li.id = `search-opt-${i}`;
      li.dataset.sym = sym;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', String(i === this.active));
      const name = document.createElement('span');
      name.className = 'tkr';
      name.textContent = sym === '*' ? '*' : sym;
      const note = document.createElement('span');
      note.className = 'note';
      if (sym === '*') note.textContent = `watch all ${this.symbols.length || ''} symbols`.replace('  ', ' ');
      else if (this.isWatched(sym)) note.textContent = 'watching';
      li.append(name, note);
      ul.appendChild(li);
    });
    const open = this.items.length > 0;
    ul.hidden = !open;
    this.input.setAttribute('aria-expanded', String(open));
    if (this.active >= 0) this.input.setAttribute('aria-activedescendant', `search-opt-${this.active}`);
    else this.input.removeAttribute('aria-activedescendant');
  }

  move(delta) {
    if (!this.items.length) return;
    const n = this.items.length;
    this.active = (this.active + delta + n) % n;
    this.paint();
    const li = this.list.children[this.active];
    if (li) li.scrollIntoView({ block: 'nearest' });
  }

  key(e) {
    switch (e.key) {
      case 'ArrowDown':
        e.preventDefault();
        if (this.list.hidden) this.refresh();
        else this.move(1);
        break;
      case 'ArrowUp':
        e.preventDefault();
        this.move(-1);
        break;
      case 'Enter': {
        e.preventDefault();
        const typed = this.input.value.trim();
        const pick = this.active >= 0 ? this.items[this.active] : typed;
        if (pick && isValidSymbol(pick)) this.choose(pick);
        break;
      }
      case 'Escape':
        e.preventDefault();
        if (!this.list.hidden) this.close();
        else this.input.value = '';
        break;
      default:
    }
  }

  choose(sym) {
    this.onAdd(sym);
    this.input.value = '';
    this.close();
  }

  close() {
    this.items = [];
    this.active = -1;
    this.paint();
  }
}

function isEditable(el) {
  return el && (el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName));
}
