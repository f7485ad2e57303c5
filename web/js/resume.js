// resume.js — continuing the stream after a reconnect (docs/protocol.md,
// "Resuming after a reconnect"). Pure: no DOM, no socket, no clock.
//
// Owns: SeqBook, the epoch from `hello` and the last seq received of each
// symbol. main.js passes every tick through it (a tick at or below the seq
// already held is a duplicate and is dropped; a jump that `n` does not
// count is counted as a gap, the rule of src/sequence.rs) and builds the
// `epoch` and `from` of its reconnect subscribes from it. A new epoch
// forgets every seq: they belong to another seq space, so the snapshots
// that follow are taken even when their seq is lower. Also owns adding up
// the acks' `resumed` into the words of the connection badge.

/** At most this many `from` entries per subscribe: 2,000 of them are about
 * 40 KB of JSON, under the server's 64 KiB request limit. Symbols beyond
 * it take a snapshot instead. */
export const MAX_FROM = 2000;

export class SeqBook {
  constructor() {
    this.epoch = '';        // '' until a hello names one
    this.last = new Map();  // symbol -> seq of the last tick received (snapshot or not)
    this.dups = 0;          // ticks dropped: not a snapshot, seq not above the last
    this.gaps = 0;          // ticks whose seq jump `n` does not account for
  }

  /**
   * A connection's hello. Returns 'first' (no epoch held before), 'same'
   * (the seqs held still count: a resume) or 'new' (another seq space).
   * Anything but 'same' forgets the seqs held.
   */
  hello(epoch) {
    const e = typeof epoch === 'string' ? epoch : '';
    const kind = !this.epoch ? 'first' : e === this.epoch ? 'same' : 'new';
    if (kind !== 'same') this.last.clear();
    this.epoch = e;
    return kind;
  }

  /** Fold one tick in; false when it is a duplicate the page must not apply. */
  observe(t) {
    const prev = this.last.get(t.sym);
    if (prev !== undefined && !t.snap) {
      if (t.seq <= prev) {
        this.dups += 1;
        return false;
      }
      if (t.seq - prev - 1 !== (t.n || 0)) this.gaps += 1;
    }
    this.last.set(t.sym, t.seq);
    return true;
  }

  forget(sym) {
    this.last.delete(sym);
  }

  /**
   * The resume fields of a subscribe for `symbols` (`['*']`: every symbol
   * held except those in `except`): `{epoch, from}`, or null when nothing
   * is held for them or no epoch is known.
   */
  resumeFor(symbols, except = new Set()) {
    if (!this.epoch) return null;
    const from = {};
    let count = 0;
    const take = (sym) => {
      const seq = this.last.get(sym);
      if (seq === undefined || count >= MAX_FROM) return;
      from[sym] = seq;
      count += 1;
    };
    if (symbols.length === 1 && symbols[0] === '*') {
      for (const sym of this.last.keys()) if (!except.has(sym)) take(sym);
    } else {
      for (const sym of symbols) take(sym);
    }
    return count ? { epoch: this.epoch, from } : null;
  }
}

/**
 * Adds up the `resumed` maps of one reconnect's acks: symbols resumed,
 * updates missed over them, and symbols that took a snapshot instead
 * (`null`: the epoch did not match). `worst` names up to three symbols
 * that missed the most, for the badge's tooltip.
 */
export function tallyResumed(maps) {
  const t = { resumed: 0, missed: 0, snapshots: 0, worst: [] };
  const lost = [];
  for (const m of maps) {
    for (const [sym, n] of Object.entries(m || {})) {
      if (n === null || n === undefined) {
        t.snapshots += 1;
      } else {
        t.resumed += 1;
        t.missed += n;
        if (n > 0) lost.push([sym, n]);
      }
    }
  }
  t.worst = lost.sort((a, b) => b[1] - a[1]).slice(0, 3);
  return t;
}

/**
 * The badge's words for a connection: `kind` from SeqBook.hello, whether
 * the page asked to resume, and the tally of the acks so far ('' = say
 * nothing: a first connection, or nothing to resume).
 */
export function resumeNote(kind, asked, tally) {
  if (kind === 'new') return 'new session · snapshots';
  if (kind !== 'same' || !asked) return '';
  if (tally.resumed === 0 && tally.snapshots === 0) return 'resuming…';
  if (tally.resumed === 0) return 'new session · snapshots';
  const missed = `resumed · ${tally.missed.toLocaleString('en-US')} missed`;
  if (tally.snapshots === 0) return missed;
  return `${missed} · ${tally.snapshots} ${tally.snapshots === 1 ? 'snapshot' : 'snapshots'}`;
}
