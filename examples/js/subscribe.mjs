// A tickfeed client for Node, with its built-in WebSocket: subscribes,
// checks the conflation invariant on every tick, and reconnects, resuming
// where it stopped with `from` and `epoch` (docs/protocol.md).
//
//   node examples/js/subscribe.mjs ws://127.0.0.1:8080/ws --symbols AAPL,MSFT --count 5000
//
// Node 22 and later have WebSocket built in; Node 20 and 21 need
// `node --experimental-websocket examples/js/subscribe.mjs ...`. With
// tokens, set TICKFEED_TOKEN. Prints one JSON summary line and exits 0
// after --count ticks or --seconds, 1 when the invariant breaks, 2 when
// the server refuses the subscription, 3 when it stays unreachable.
//
// Precision: `ts` (and `xt`) are nanoseconds since 1970, about 1.8e18,
// far above Number.MAX_SAFE_INTEGER (2^53 - 1). JSON.parse would round
// them silently (to a multiple of 256 ns), so parseEvents below reads
// them as BigInt. `seq`, `n` and `vol` stay well below 2^53 and are
// safe as Numbers; order ticks by `seq`, never by `ts`.

if (typeof WebSocket === "undefined") {
  console.error("this Node has no built-in WebSocket: use Node 22+, or run Node 20/21 with --experimental-websocket");
  process.exit(2);
}

const RECONNECT_GIVE_UP_MS = 30_000;
const BIG_FIELDS = new Set(["ts", "xt"]);

// Whether JSON.parse hands a reviver the source text of each value (Node
// 21+; the TC39 "JSON.parse source text access" proposal).
const reviverSeesSource = JSON.parse("1", (key, value, context) => context?.source) === "1";

/// Parses one frame, reading `ts` and `xt` as exact BigInts.
function parseEvents(text) {
  if (reviverSeesSource) {
    return JSON.parse(text, (key, value, context) =>
      BIG_FIELDS.has(key) && typeof value === "number" ? BigInt(context.source) : value);
  }
  // Older engines: quote the digits before JSON.parse sees them. Safe on
  // tickfeed's JSON: no string in it can hold `"ts":` (symbols are
  // [A-Za-z0-9._/:^=-]).
  const quoted = text.replace(/"(ts|xt)":(\d+)/g, '"$1":"$2"');
  return JSON.parse(quoted, (key, value) => (BIG_FIELDS.has(key) ? BigInt(value) : value));
}

function parseArgs(argv) {
  const options = { url: null, symbols: ["*"], count: 10_000, seconds: 60 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--symbols") options.symbols = argv[++i].split(",");
    else if (flag === "--count") options.count = Number(argv[++i]);
    else if (flag === "--seconds") options.seconds = Number(argv[++i]);
    else if (!flag.startsWith("--") && options.url === null) options.url = flag;
    else throw new Error(`unknown argument ${flag}`);
  }
  if (options.url === null) throw new Error("usage: subscribe.mjs WS_URL [--symbols A,B] [--count N] [--seconds S]");
  if (process.env.TICKFEED_TOKEN) {
    const url = new URL(options.url);
    url.searchParams.set("token", process.env.TICKFEED_TOKEN);
    options.url = url.toString();
  }
  return options;
}

class Violation extends Error {}

/// What the client holds across connections: the epoch of its seqs and
/// the last seq of each symbol, which make the next subscribe a resume.
class Stream {
  epoch = null;
  lastSeq = new Map();
  ticks = 0;
  snapshots = 0;
  connections = 0;
  resumed = 0;
  lost = 0;
  maxAgeMs = 0;

  hello(event) {
    this.connections += 1;
    if (event.epoch !== this.epoch) {
      // A new seq space (the server restarted): old seqs mean nothing.
      this.epoch = event.epoch;
      this.lastSeq.clear();
    }
  }

  subscribeRequest(symbols) {
    const request = { op: "subscribe", id: 1, symbols };
    if (this.lastSeq.size > 0) {
      request.epoch = this.epoch;
      request.from = Object.fromEntries(this.lastSeq);
    }
    return request;
  }

  ack(event) {
    for (const [sym, lost] of Object.entries(event.resumed ?? {})) {
      if (lost === null) {
        this.lastSeq.delete(sym); // a snapshot follows instead
      } else {
        this.resumed += 1;
        this.lost += lost;
      }
    }
  }

  tick(event) {
    const { sym, seq, n } = event;
    const snap = event.snap === true;
    const prev = this.lastSeq.get(sym);
    if (prev !== undefined) {
      if (seq < prev) throw new Violation(`${sym}: seq went back from ${prev} to ${seq}`);
      if (!snap && seq - prev - 1 !== n) throw new Violation(`${sym}: seq ${prev} then ${seq} with n=${n}`);
    }
    this.lastSeq.set(sym, seq);
    if (snap) {
      this.snapshots += 1;
    } else {
      this.ticks += 1;
      // Exact age from BigInt nanoseconds (live feeds only: a replay's ts is the replay's).
      const ageMs = Number(BigInt(Date.now()) * 1_000_000n - event.ts) / 1e6;
      this.maxAgeMs = Math.max(this.maxAgeMs, ageMs);
    }
  }

  summary() {
    return {
      client: "node",
      ticks: this.ticks,
      snapshots: this.snapshots,
      reconnects: Math.max(0, this.connections - 1),
      resumed: this.resumed,
      lost: this.lost,
      max_age_ms: Math.round(this.maxAgeMs),
    };
  }
}

/// One connection: hello, subscribe (or resume), then ticks until `done()`
/// or the connection drops. Resolves with "done" or "dropped"; rejects on
/// a violation or a refusal.
function streamOnce(url, symbols, stream, done) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    let finished = false;
    const finish = (outcome, error) => {
      if (finished) return;
      finished = true;
      ws.close();
      error ? reject(error) : resolve(outcome);
    };
    ws.onmessage = (message) => {
      if (finished) return;
      try {
        for (const event of parseEvents(message.data)) {
          if (event.ev === "hello") {
            stream.hello(event);
            ws.send(JSON.stringify(stream.subscribeRequest(symbols)));
          } else if (event.ev === "tick") {
            stream.tick(event);
          } else if (event.ev === "ack" && event.id === 1) {
            stream.ack(event);
          } else if (event.ev === "error") {
            console.error("server refused:", JSON.stringify(event));
            if (event.code !== "unknown_symbol") finish(null, Object.assign(new Error("refused"), { exitCode: 2 }));
          }
        }
      } catch (error) {
        finish(null, error);
        return;
      }
      if (done()) finish("done");
    };
    ws.onclose = () => finish("dropped");
    ws.onerror = () => finish("dropped");
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const stream = new Stream();
  const deadline = Date.now() + options.seconds * 1000;
  const done = () => stream.ticks >= options.count || Date.now() >= deadline;
  let delay = 100;
  let unreachableSince = null;
  while (!done()) {
    const connections = stream.connections;
    let outcome;
    try {
      outcome = await Promise.race([
        streamOnce(options.url, options.symbols, stream, done),
        sleep(Math.max(0, deadline - Date.now())).then(() => "done"),
      ]);
    } catch (error) {
      console.log(JSON.stringify(stream.summary()));
      if (error instanceof Violation) {
        console.error(`invariant broken: ${error.message}`);
        return 1;
      }
      return error.exitCode ?? 1;
    }
    if (outcome === "done") break;
    const now = Date.now();
    if (stream.connections > connections) {
      delay = 100; // it was up: start afresh
      unreachableSince = now;
    }
    unreachableSince ??= now;
    if (now - unreachableSince > RECONNECT_GIVE_UP_MS) {
      console.error("giving up: the server stays unreachable");
      return 3;
    }
    console.error("connection lost; reconnecting");
    await sleep(delay);
    delay = Math.min(delay * 2, 5000);
  }
  console.log(JSON.stringify(stream.summary()));
  return 0;
}

process.exitCode = await main();
process.exit();
