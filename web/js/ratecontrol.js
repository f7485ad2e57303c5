// ratecontrol.js — max_hz choices: global (#maxhz) and per symbol (#symhz).
//
// Owns: turning the rate settings into subscribe requests. planSubscribe()
// groups symbols by their effective max_hz so a whole watchlist becomes a few
// requests (used on every (re)connect, resuming where it stopped), and the
// two selects re-send `subscribe` with the new max_hz and snapshot:false for
// just the symbols whose rate changed, so conflation can be watched working
// (the `n` and Upd/s columns move).

import { subscribe } from './protocol.js';
import { HZ_CHOICES } from './state.js';

/**
 * Subscribe requests for a watchlist, one per distinct max_hz.
 * With `all`, `*` goes first at the global rate, then the overrides.
 * `resume(symbols, except)` (SeqBook.resumeFor on a reconnect) gives each
 * request its `epoch` and `from`; the `*` request names every symbol held
 * but those with an override, which their own request names.
 * @returns {object[]} requests ready to send
 */
export function planSubscribe({ symbols, all, globalHz, symHz, snapshot, resume = () => null }) {
  const groups = new Map();
  const add = (hz, sym) => {
    if (!groups.has(hz)) groups.set(hz, []);
    groups.get(hz).push(sym);
  };
  const overridden = new Set();
  for (const sym of symbols) {
    const o = symHz[sym];
    if (o !== undefined) {
      add(o, sym);
      overridden.add(sym);
    } else if (!all) {
      add(globalHz, sym);
    }
  }
  const reqs = [];
  if (all) reqs.push(subscribe(['*'], { maxHz: globalHz, snapshot, resume: resume(['*'], overridden) }));
  for (const [hz, syms] of groups) reqs.push(subscribe(syms, { maxHz: hz, snapshot, resume: resume(syms) }));
  return reqs;
}

function fillSelect(select, withGlobal) {
  select.textContent = '';
  if (withGlobal) select.append(new Option('global', ''));
  for (const hz of HZ_CHOICES) select.append(new Option(hz ? `${hz} Hz` : 'off', String(hz)));
}

export class RateControl {
  /**
   * @param {{global: HTMLSelectElement, perSymbol: HTMLSelectElement, perSymbolLabel: HTMLElement}} els
   * @param {import('./state.js').Store} store
   * @param {(req: object) => void} send
   * @param {() => string[]} watched  explicit watchlist symbols
   * @param {(sym: string, hz: number|undefined) => void} onBadge  undefined = no override
   */
  constructor(els, store, send, watched, onBadge) {
    this.els = els;
    this.store = store;
    this.send = send;
    this.watched = watched;
    this.onBadge = onBadge;
    this.symbol = '';
    fillSelect(els.global, false);
    fillSelect(els.perSymbol, true);
    els.global.value = String(store.state.maxHz);
    els.global.addEventListener('change', () => this.setGlobal(Number(els.global.value)));
    els.perSymbol.addEventListener('change', () => this.setSymbol(this.symbol, els.perSymbol.value));
  }

  /** Point the per-symbol select at the charted symbol. */
  showSymbol(sym) {
    this.symbol = sym;
    const o = this.store.state.symHz[sym];
    this.els.perSymbol.value = o === undefined ? '' : String(o);
    this.els.perSymbol.disabled = !sym;
    this.els.perSymbolLabel.textContent = sym || '—';
  }

  setGlobal(hz) {
    const s = this.store.state;
    if (hz === s.maxHz) return;
    this.store.update((st) => { st.maxHz = hz; });
    this.els.global.value = String(hz);
    const targets = this.watched().filter((sym) => s.symHz[sym] === undefined);
    for (const req of planSubscribe({ symbols: targets, all: s.all, globalHz: hz, symHz: {}, snapshot: false })) {
      this.send(req);
    }
  }

  /** value '' = follow the global choice. */
  setSymbol(sym, value) {
    if (!sym) return;
    const hz = value === '' ? undefined : Number(value);
    this.store.update((st) => {
      if (hz === undefined) delete st.symHz[sym];
      else st.symHz[sym] = hz;
    });
    this.send(subscribe([sym], { maxHz: this.store.hzFor(sym), snapshot: false }));
    this.onBadge(sym, hz);
    this.showSymbol(sym);
  }
}
