// auth.js — the access token of a server started with --token.
//
// Owns: the token, kept in sessionStorage only (gone with the tab; never in
// the address bar, history, localStorage or a shared link), the
// #token-dialog prompt, and fetch() with `Authorization: Bearer`. A browser
// WebSocket cannot send headers, so connection.js puts the token in the
// query of the socket's own URL, never the page's. Whoever meets a 401 calls
// refused() with the token it sent; the prompt opens once however many
// requests fail together, and a refused token is forgotten before it opens.

const STORAGE_KEY = 'tickfeed.token';

export class Auth {
  /** @param {HTMLDialogElement} dialog  the #token-dialog prompt */
  constructor(dialog) {
    this.dialog = dialog;
    this.input = dialog.querySelector('#token-input');
    this.refusedNote = dialog.querySelector('#token-refused');
    this.listeners = [];
    this.prompts = 0;  // times the prompt opened, for the tests
    this.memory = '';  // used only where sessionStorage is disabled
    dialog.querySelector('form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    dialog.addEventListener('cancel', (e) => e.preventDefault()); // nothing works without it
  }

  /** The stored token; '' when none. */
  get token() {
    try {
      return sessionStorage.getItem(STORAGE_KEY) || '';
    } catch {
      return this.memory;
    }
  }

  set token(value) {
    try {
      if (value) sessionStorage.setItem(STORAGE_KEY, value);
      else sessionStorage.removeItem(STORAGE_KEY);
    } catch {
      this.memory = value;
    }
  }

  /** Call `fn` whenever a new token has been entered. */
  onToken(fn) {
    this.listeners.push(fn);
  }

  /** A request sent with token `sent` ('' for none) was answered 401. */
  refused(sent) {
    if (sent !== this.token) return; // a newer token was entered meanwhile
    if (this.dialog.open) return;
    this.token = '';
    this.refusedNote.hidden = !sent;
    this.input.value = '';
    this.prompts += 1;
    this.dialog.showModal();
    this.input.focus();
  }

  submit() {
    const value = this.input.value.trim();
    if (!value) return;
    this.input.value = '';
    this.token = value;
    this.dialog.close();
    for (const fn of this.listeners) fn();
  }

  /** fetch() with the token as a bearer header; a 401 opens the prompt. */
  async fetch(path, init = {}) {
    const sent = this.token;
    const headers = new Headers(init.headers);
    if (sent) headers.set('Authorization', `Bearer ${sent}`);
    const res = await fetch(path, { ...init, headers });
    if (res.status === 401) this.refused(sent);
    return res;
  }

  /**
   * GET a history endpoint (/api/ticks, /api/bars): its array and how it
   * went: `live` (answered), `token` (401), `unknown` (404: no such
   * symbol) or `failed` (another status, or the server is down).
   */
  async history(path) {
    try {
      const res = await this.fetch(path, { cache: 'no-store' });
      if (res.ok) {
        const body = await res.json();
        return { items: Array.isArray(body) ? body : [], state: 'live' };
      }
      return { items: [], state: res.status === 401 ? 'token' : res.status === 404 ? 'unknown' : 'failed' };
    } catch {
      return { items: [], state: 'failed' };
    }
  }
}
