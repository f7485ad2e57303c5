// deltas.js — field deltas, client side (docs/protocol.md, "Field deltas").
//
// Owns: the full values of each symbol's last tick, so that a delta (a tick
// with `d: 1` carrying only what changed, `null` for a field now absent)
// becomes a full tick before the rest of the page sees it. A full tick
// replaces what is held. Knows nothing about the DOM or the socket.

export class DeltaBook {
  constructor() {
    this.held = new Map(); // sym -> the full tick last seen
    this.applied = 0;      // deltas expanded so far
    this.orphans = 0;      // deltas with nothing held (never expected)
  }

  /** The full tick `t` stands for; remembers it for the next delta. */
  expand(t) {
    if (t.d !== 1) {
      this.held.set(t.sym, t);
      return t;
    }
    const prev = this.held.get(t.sym);
    if (!prev) this.orphans += 1;
    const full = { ...prev, ...t };
    delete full.d;
    delete full.snap;
    for (const k of Object.keys(full)) if (full[k] === null) delete full[k];
    this.held.set(t.sym, full);
    this.applied += 1;
    return full;
  }

  forget(sym) {
    this.held.delete(sym);
  }

  clear() {
    this.held.clear();
  }
}
