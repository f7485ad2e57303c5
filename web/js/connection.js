// connection.js — one WebSocket to the server's /ws, kept alive.
//
// Owns: the socket's life (open, close, reconnect with exponential backoff
// and full jitter), the #status indicator, an application-level ping for the
// round-trip readout and for detecting a silently dead link. It decodes
// frames with protocol.js and hands whole event arrays to its owner; it never
// interprets ticks. main.js resubscribes from onOpen, so every reconnect
// restores the full watchlist, resuming where it stopped (resume.js); what
// the resume gave ("resumed · 37 missed") is the badge's note, which main.js
// sets and a closed socket clears.
//
// A browser does not say why a handshake failed, so when a socket closes
// without ever opening, /api/stats is asked: a 401 there means the server
// wants a token (auth.js prompts for it), and the connection waits for one
// instead of retrying.

import { wsUrl, decodeFrame, frameBytes, ping } from './protocol.js';

const BACKOFF_BASE_MS = 250;   // first retry almost at once: restarts are quick
const BACKOFF_CAP_MS = 8000;   // a trader should never wait longer than this
const PING_EVERY_MS = 5000;
const DEAD_AFTER_MS = 20000;   // no frame at all for this long: reconnect

export class Connection {
  /**
   * @param {object} o
   * @param {HTMLElement} o.statusEl  the #status indicator
   * @param {string} o.encoding       'json' | 'msgpack'
   * @param {(events: object[], bytes: number) => void} o.onEvents
   * @param {() => void} o.onOpen     called when the socket opens (resubscribe here)
   * @param {import('./auth.js').Auth} o.auth  the access token and its prompt
   */
  constructor({ statusEl, encoding, onEvents, onOpen, auth }) {
    this.statusEl = statusEl;
    this.encoding = encoding;
    this.onEvents = onEvents;
    this.onOpen = onOpen;
    this.auth = auth;
    this.ws = null;
    this.openedWs = null; // the last socket that opened
    this.attempt = 0;
    this.retryTimer = 0;
    this.retryAt = 0;
    this.lastFrameAt = 0;
    this.pingId = 0;
    this.pingSentAt = 0;
    this.rttMs = NaN;
    this.connects = 0;
    this.handleMs = 0; // main-thread time spent decoding and applying frames
    this.serverEncoding = '';
    this.session = '';
    this.holding = false; // after drop(true): stay offline until release()
    setInterval(() => this.healthCheck(), PING_EVERY_MS);
    setInterval(() => this.renderStatus(), 500);
    auth.onToken(() => {
      this.attempt = 0;
      this.restart();
    });
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  start() {
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    const ws = new WebSocket(wsUrl(location, this.encoding, this.auth.token));
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => this.opened(ws);
    ws.onmessage = (e) => this.received(ws, e.data);
    ws.onclose = () => this.closed(ws);
    ws.onerror = () => {}; // followed by close; browsers log the detail themselves
    this.ws = ws;
    this.setStatus('connecting', 'connecting…');
    this.setNote('');
  }

  /** Switch encoding: reconnect now, resubscribing through onOpen. */
  setEncoding(encoding) {
    if (encoding === this.encoding) return;
    this.encoding = encoding;
    this.attempt = 0;
    this.restart();
  }

  restart() {
    const old = this.ws;
    this.ws = null;
    if (old) {
      old.onclose = null;
      old.onmessage = null;
      old.close(1000);
    }
    this.start();
  }

  /** Send one request as a JSON text frame; false when not connected. */
  send(request) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(request));
    return true;
  }

  opened(ws) {
    if (ws !== this.ws) return;
    this.openedWs = ws;
    this.connects += 1;
    this.lastFrameAt = performance.now();
    this.setStatus('live', `connected · ${this.encoding}`);
    this.onOpen();
  }

  received(ws, data) {
    if (ws !== this.ws) return;
    const t0 = performance.now();
    this.lastFrameAt = t0;
    let events;
    try {
      events = decodeFrame(data);
    } catch (err) {
      console.warn('tickfeed: undecodable frame', err);
      return;
    }
    for (const ev of events) {
      if (ev.ev === 'hello') {
        this.attempt = 0; // a server that talks to us resets the backoff
        this.serverEncoding = ev.encoding || 'json';
        this.session = ev.session || '';
        this.setStatus('live', `connected · ${this.serverEncoding}`);
      } else if (ev.ev === 'pong' && ev.id === this.pingId) {
        this.rttMs = performance.now() - this.pingSentAt;
      }
    }
    this.onEvents(events, frameBytes(data));
    this.handleMs += performance.now() - t0;
  }

  closed(ws) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.setNote('');
    if (ws === this.openedWs) this.scheduleRetry();
    else this.askWhyRefused();
  }

  /** After a failed handshake: wait for a token on a 401, else retry. */
  async askWhyRefused() {
    let status = 0;
    try {
      status = (await this.auth.fetch('/api/stats', { cache: 'no-store' })).status;
    } catch {
      // the server is down: retry as usual
    }
    if (this.ws) return; // restarted meanwhile (a token was entered)
    if (status === 401) this.setStatus('offline', 'token required');
    else this.scheduleRetry();
  }

  /** Full jitter: a random delay in [0.5, 1] x min(cap, base x 2^attempt). */
  scheduleRetry() {
    if (this.holding) {
      this.setStatus('offline', 'offline · held');
      return;
    }
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = ceiling * (0.5 + Math.random() * 0.5);
    this.attempt += 1;
    this.retryAt = performance.now() + delay;
    this.retryTimer = setTimeout(() => this.start(), delay);
    this.renderStatus();
  }

  healthCheck() {
    if (!this.isOpen) return;
    if (performance.now() - this.lastFrameAt > DEAD_AFTER_MS) {
      this.restart();
      return;
    }
    const req = ping(Date.now());
    this.pingId = req.id;
    this.pingSentAt = performance.now();
    this.send(req);
  }

  renderStatus() {
    if (this.ws || !this.retryTimer) return;
    const s = Math.max(0, (this.retryAt - performance.now()) / 1000);
    this.setStatus('offline', `offline · retry in ${s.toFixed(1)}s (#${this.attempt})`);
  }

  /**
   * Close the socket as a dropped network would: the usual retry follows,
   * or with `hold` none until release(), so a test can keep the page away
   * for as long as it needs.
   */
  drop(hold = false) {
    this.holding = hold;
    if (this.ws) this.ws.close();
  }

  /** End a hold: connect now. */
  release() {
    if (!this.holding) return;
    this.holding = false;
    this.attempt = 0;
    if (!this.ws) this.start();
  }

  /** The badge's note after the label ('' hides it), with a tooltip; `warn` tints it. */
  setNote(text, title = '', warn = false) {
    const el = this.statusEl.querySelector('.note');
    if (!el) return;
    if (el.textContent !== text) el.textContent = text;
    el.hidden = !text;
    el.title = title;
    el.dataset.tone = warn ? 'warn' : '';
  }

  setStatus(state, text) {
    const el = this.statusEl;
    if (el.dataset.state !== state) el.dataset.state = state;
    const label = el.querySelector('.label') || el;
    if (label.textContent !== text) label.textContent = text;
    const rtt = Number.isFinite(this.rttMs) && state === 'live' ? `${this.rttMs.toFixed(1)} ms rtt` : '';
    el.title = rtt;
  }
}
