// msgpack.js — a small, dependency-free MessagePack decoder.
//
// Owns: turning the bytes of one binary WebSocket frame into plain JS values.
// Used by protocol.js (decoding server frames) and exposed on
// window.tickfeed.msgpackDecode for the browser tests, which check it against
// bytes produced by rmp-serde on the Rust side.
//
// Covers the whole format except the timestamp extension's special meaning:
// nil, bool, positive/negative fixint, (u)int 8/16/32/64, float 32/64,
// fixstr/str 8/16/32 (UTF-8), bin 8/16/32 (-> Uint8Array), fixarray/array
// 16/32, fixmap/map 16/32 (-> plain objects; keys are stringified), and
// fixext/ext 8/16/32 (-> {ext: type, data: Uint8Array}).
//
// 64-bit integers: decoded as Number by default. Our largest values are `ts`
// (nanoseconds since the epoch, ~1.8e18), where a double keeps ~256 ns of
// precision: plenty for millisecond latency. Pass {bigint: true} to get a
// BigInt whenever the value is outside Number.MAX_SAFE_INTEGER, exactly.

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decode exactly one MessagePack value from `input`.
 * @param {Uint8Array|ArrayBuffer|number[]} input
 * @param {{bigint?: boolean}} [opts]
 * @returns {*} the decoded value
 * @throws {Error} on truncated input, trailing bytes or the reserved 0xc1 byte
 */
export function decode(input, opts = {}) {
  const bytes = toBytes(input);
  const r = new Reader(bytes, !!opts.bigint);
  const value = r.value();
  if (r.pos !== bytes.length) {
    throw new Error(`msgpack: ${bytes.length - r.pos} trailing byte(s) at offset ${r.pos}`);
  }
  return value;
}

function toBytes(input) {
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  if (Array.isArray(input)) return Uint8Array.from(input);
  throw new TypeError('msgpack: expected Uint8Array, ArrayBuffer or byte array');
}

class Reader {
  constructor(bytes, bigint) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
    this.bigint = bigint;
  }

  need(n) {
    if (this.pos + n > this.bytes.length) {
      throw new Error(`msgpack: truncated input (need ${n} byte(s) at offset ${this.pos})`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8() { return this.view.getUint8(this.need(1)); }
  u16() { return this.view.getUint16(this.need(2)); }
  u32() { return this.view.getUint32(this.need(4)); }

  u64() {
    const v = this.view.getBigUint64(this.need(8));
    return this.int64(v);
  }

  i64() {
    const v = this.view.getBigInt64(this.need(8));
    return this.int64(v);
  }

  int64(v) {
    const safe = v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER);
    return this.bigint && !safe ? v : Number(v);
  }

  str(len) {
    const at = this.need(len);
    return utf8.decode(this.bytes.subarray(at, at + len));
  }

  bin(len) {
    const at = this.need(len);
    return this.bytes.slice(at, at + len);
  }

  array(len) {
    const out = new Array(len);
    for (let i = 0; i < len; i++) out[i] = this.value();
    return out;
  }

  map(len) {
    const out = {};
    for (let i = 0; i < len; i++) {
      const key = this.value();
      out[typeof key === 'string' ? key : String(key)] = this.value();
    }
    return out;
  }

  ext(len) {
    const type = this.view.getInt8(this.need(1));
    return { ext: type, data: this.bin(len) };
  }

  value() {
    const b = this.u8();
    if (b <= 0x7f) return b;                          // positive fixint
    if (b >= 0xe0) return b - 0x100;                  // negative fixint
    if (b >= 0x80 && b <= 0x8f) return this.map(b & 0x0f);
    if (b >= 0x90 && b <= 0x9f) return this.array(b & 0x0f);
    if (b >= 0xa0 && b <= 0xbf) return this.str(b & 0x1f);
    const v = this.view;
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bin(this.u8());
      case 0xc5: return this.bin(this.u16());
      case 0xc6: return this.bin(this.u32());
      case 0xc7: return this.ext(this.u8());
      case 0xc8: return this.ext(this.u16());
      case 0xc9: return this.ext(this.u32());
      case 0xca: return v.getFloat32(this.need(4));
      case 0xcb: return v.getFloat64(this.need(8));
      case 0xcc: return this.u8();
      case 0xcd: return this.u16();
      case 0xce: return this.u32();
      case 0xcf: return this.u64();
      case 0xd0: return v.getInt8(this.need(1));
      case 0xd1: return v.getInt16(this.need(2));
      case 0xd2: return v.getInt32(this.need(4));
      case 0xd3: return this.i64();
      case 0xd4: return this.ext(1);
      case 0xd5: return this.ext(2);
      case 0xd6: return this.ext(4);
      case 0xd7: return this.ext(8);
      case 0xd8: return this.ext(16);
      case 0xd9: return this.str(this.u8());
      case 0xda: return this.str(this.u16());
      case 0xdb: return this.str(this.u32());
      case 0xdc: return this.array(this.u16());
      case 0xdd: return this.array(this.u32());
      case 0xde: return this.map(this.u16());
      case 0xdf: return this.map(this.u32());
      default:
        throw new Error(`msgpack: reserved byte 0x${b.toString(16)} at offset ${this.pos - 1}`);
    }
  }
}
