// latency.js — end-to-end latency and throughput readouts (#latency panel).
//
// Owns: LatencyWindow, a pure sliding-window percentile estimator (no DOM,
// no clock of its own: callers pass times in, so tests can feed it known
// values), and LatencyPanel, which shows the client's view (now - tick.ts as
// p50/p99/max over the window, frames/s, ticks/s) beside the server's stage
// percentiles polled from /api/stats once a second (with the token, if any).

/**
 * Sliding window of latency samples, bounded both by age (windowMs) and by
 * count (maxSamples, oldest dropped first), so memory never depends on the
 * message rate. Percentiles use the nearest-rank method: the p-th percentile
 * of n sorted samples is sorted[ceil(p/100 * n) - 1].
 */
export class LatencyWindow {
  constructor({ windowMs = 10_000, maxSamples = 60_000 } = {}) {
    this.windowMs = windowMs;
    this.capacity = maxSamples;
    this.values = new Float64Array(maxSamples);
    this.times = new Float64Array(maxSamples);
    this.head = 0; // index of the oldest sample
    this.size = 0;
  }

  /** Record a sample `value` (any unit; we use ms) taken at time `atMs`. */
  add(value, atMs) {
    const tail = (this.head + this.size) % this.capacity;
    this.values[tail] = value;
    this.times[tail] = atMs;
    if (this.size < this.capacity) this.size += 1;
    else this.head = (this.head + 1) % this.capacity;
  }

  /** Drop samples older than nowMs - windowMs. */
  prune(nowMs) {
    const oldest = nowMs - this.windowMs;
    while (this.size > 0 && this.times[this.head] < oldest) {
      this.head = (this.head + 1) % this.capacity;
      this.size -= 1;
    }
  }

  /** The samples currently in the window, oldest first. */
  samples(nowMs) {
    this.prune(nowMs);
    const out = new Float64Array(this.size);
    for (let i = 0; i < this.size; i++) out[i] = this.values[(this.head + i) % this.capacity];
    return out;
  }

  /** {count, p50, p90, p99, max, min, mean} over the window; NaN fields when empty. */
  summary(nowMs) {
    const s = this.samples(nowMs).sort();
    const n = s.length;
    if (n === 0) return { count: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN, min: NaN, mean: NaN };
    let sum = 0;
    for (let i = 0; i < n; i++) sum += s[i];
    return {
      count: n,
      p50: LatencyWindow.percentile(s, 50),
      p90: LatencyWindow.percentile(s, 90),
      p99: LatencyWindow.percentile(s, 99),
      max: s[n - 1],
      min: s[0],
      mean: sum / n,
    };
  }

  /** Nearest-rank percentile of an ascending array; NaN when empty. */
  static percentile(sorted, p) {
    const n = sorted.length;
    if (n === 0) return NaN;
    const rank = Math.ceil((p / 100) * n);
    return sorted[Math.min(n - 1, Math.max(0, rank - 1))];
  }
}

/** Wall-clock now in ms with sub-ms resolution, comparable to tick.ts / 1e6. */
export function nowEpochMs() {
  return performance.timeOrigin + performance.now();
}

/** End-to-end latency of a tick in ms: now minus its source timestamp (ns). */
export function tickLatencyMs(tsNs, nowMs = nowEpochMs()) {
  return nowMs - Number(tsNs) / 1e6;
}

function fmtMs(ms) {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

function fmtUs(us) {
  if (!Number.isFinite(us)) return '—';
  if (us < 1000) return `${Math.round(us)} µs`;
  return `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
}

function fmtRate(x) {
  if (!Number.isFinite(x)) return '—';
  return x >= 10_000 ? `${(x / 1000).toFixed(1)}k` : Math.round(x).toLocaleString('en-US');
}

const STAGE_KEYS = ['p50', 'p90', 'p99', 'p999', 'max'];

export class LatencyPanel {
  /**
   * @param {HTMLElement} root    the #latency panel
   * @param {() => {frames:number, ticks:number, bytes:number}} counters cumulative counts
   * @param {() => number} fps    frames per second of the page
   * @param {import('./auth.js').Auth} auth  fetches /api/stats with the token
   */
  constructor(root, counters, fps, auth) {
    this.root = root;
    this.counters = counters;
    this.fps = fps;
    this.auth = auth;
    this.window = new LatencyWindow();
    this.last = { at: performance.now(), frames: 0, ticks: 0, bytes: 0 };
    this.rates = { frames: 0, ticks: 0, bytes: 0 };
    this.server = null;
    this.el = (id) => root.querySelector(`[data-k="${id}"]`);
    this.stagesBody = root.querySelector('#server-stages tbody');
    this.fetching = false;
    setInterval(() => this.tick(), 1000);
  }

  /** Record one tick's latency (called per tick; cheap). */
  record(tsNs, nowMs) {
    this.window.add(tickLatencyMs(tsNs, nowMs), nowMs);
  }

  tick() {
    const now = performance.now();
    const c = this.counters();
    const dt = (now - this.last.at) / 1000;
    for (const k of ['frames', 'ticks', 'bytes']) this.rates[k] = (c[k] - this.last[k]) / dt;
    this.last = { at: now, ...c };
    this.render();
    this.poll();
  }

  async poll() {
    if (this.fetching) return;
    this.fetching = true;
    try {
      const res = await this.auth.fetch('/api/stats', { cache: 'no-store' });
      this.server = res.ok ? await res.json() : null;
    } catch {
      this.server = null;
    } finally {
      this.fetching = false;
    }
    this.renderServer();
  }

  render() {
    const s = this.window.summary(nowEpochMs());
    this.set('p50', fmtMs(s.p50));
    this.set('p99', fmtMs(s.p99));
    this.set('max', fmtMs(s.max));
    this.set('samples', s.count.toLocaleString('en-US'));
    this.set('frames', fmtRate(this.rates.frames));
    this.set('ticks', fmtRate(this.rates.ticks));
    this.set('kbps', `${(this.rates.bytes / 1024).toFixed(1)} KiB/s`);
    this.set('fps', Number.isFinite(this.fps()) ? this.fps().toFixed(0) : '—');
  }

  renderServer() {
    const st = this.server;
    const lat = (st && st.latency_us) || {};
    const rows = Object.keys(lat).map((stage) => {
      const cells = STAGE_KEYS.map((k) => `<td>${fmtUs(lat[stage][k])}</td>`).join('');
      return `<tr><th scope="row">${escapeHtml(stage)}</th>${cells}</tr>`;
    });
    const html = rows.length ? rows.join('') : '<tr><td colspan="6" class="muted">no server stats</td></tr>';
    if (this.stagesBody.innerHTML !== html) this.stagesBody.innerHTML = html;
    const num = (v) => (Number.isFinite(v) ? v.toLocaleString('en-US') : '—');
    this.set('connections', num(st?.connections));
    this.set('subscriptions', num(st?.subscriptions));
    this.set('ticks_in', num(st?.ticks_in));
    this.set('conflated', num(st?.events_conflated));
    this.set('uptime', Number.isFinite(st?.uptime_s) ? `${Math.floor(st.uptime_s)} s` : '—');
  }

  set(key, text) {
    const el = this.el(key);
    if (el && el.textContent !== text) el.textContent = text;
  }
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
