// protocol.js — the tickfeed v1 wire protocol, client side (see docs/protocol.md).
//
// Owns: building request objects, the WebSocket URL for an encoding, and
// decoding one server frame (JSON text or MessagePack binary) into an array
// of events. Knows nothing about the DOM or the socket's life; connection.js
// sends what this builds and hands back what this decodes.

import { decode as msgpackDecode } from './msgpack.js';

export const ENCODINGS = ['json', 'msgpack'];

/** Valid symbol per docs/protocol.md: 1 to 32 chars of A-Z a-z 0-9 . - _ / : ^ = */
export const SYMBOL_RE = /^[A-Za-z0-9.\-_/:^=]{1,32}$/;

/** `*` (all symbols) or a well-formed symbol. */
export function isValidSymbol(s) {
  return s === '*' || SYMBOL_RE.test(s);
}

/**
 * The /ws URL on the page's own host. The encoding travels in the query
 * string rather than as a subprotocol: a browser aborts the handshake if it
 * offers a subprotocol the server does not echo, while an unknown query
 * parameter just falls back to JSON, which we detect from the `hello`. The
 * token ('' for none) travels there too, since a browser WebSocket cannot
 * send an Authorization header; this URL is the socket's, never the page's.
 */
export function wsUrl(loc, encoding, token = '') {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  const q = new URLSearchParams();
  if (encoding === 'msgpack') q.set('encoding', 'msgpack');
  if (token) q.set('token', token);
  const query = q.toString();
  return `${scheme}//${loc.host}/ws${query ? `?${query}` : ''}`;
}

let nextId = 1;
/** A fresh request id (unsigned integer, echoed by the server). */
export function newId() {
  return nextId++;
}

/**
 * `resume` ({epoch, from}, see resume.js) continues after the seqs held.
 * The page always asks for field deltas (deltas.js expands them).
 */
export function subscribe(symbols, { maxHz = 0, snapshot = true, resume = null } = {}) {
  const req = { op: 'subscribe', id: newId(), symbols, max_hz: maxHz, snapshot, deltas: true };
  if (resume) {
    req.epoch = resume.epoch;
    req.from = resume.from;
  }
  return req;
}

export function unsubscribe(symbols) {
  return { op: 'unsubscribe', id: newId(), symbols };
}

/** Bars of `symbols` in timeframe `tf` (docs/protocol.md, "Bars"). */
export function subscribeBars(symbols, tf, { maxHz = 0 } = {}) {
  return { op: 'subscribe', id: newId(), channel: 'bars', tf, symbols, max_hz: maxHz };
}

export function unsubscribeBars(symbols, tf) {
  return { op: 'unsubscribe', id: newId(), channel: 'bars', tf, symbols };
}

/** The top `depth` levels of `symbols`' books (docs/protocol.md, "Book");
 * `depth` null: the server's own depth. */
export function subscribeBook(symbols, depth, { maxHz = 0 } = {}) {
  const req = { op: 'subscribe', id: newId(), channel: 'book', symbols, max_hz: maxHz };
  if (depth) req.depth = depth;
  return req;
}

export function unsubscribeBook(symbols) {
  return { op: 'unsubscribe', id: newId(), channel: 'book', symbols };
}

export function listSymbols() {
  return { op: 'symbols', id: newId() };
}

export function ping(t) {
  return { op: 'ping', id: newId(), t };
}

/**
 * Decode one frame's payload into an array of events.
 * Text frames are JSON; binary frames (ArrayBuffer) are MessagePack.
 * A lone object is wrapped so callers always get an array.
 */
export function decodeFrame(data) {
  const value = typeof data === 'string' ? JSON.parse(data) : msgpackDecode(data);
  return Array.isArray(value) ? value : [value];
}

/** Byte size of a frame payload, for the throughput readout. */
export function frameBytes(data) {
  return typeof data === 'string' ? data.length : data.byteLength;
}
