// scale.js — axis arithmetic and labels for the chart.
//
// Owns: "nice" price steps (1, 2, 2.5, 5 x 10^k) and their decimals, time
// steps for the time axis, and the short time and volume labels (the time
// label also serves the time & sales rows). Pure functions, no DOM.

const TIME_STEPS_MS = [100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 144e5];

/** A step of 1, 2, 2.5 or 5 x 10^k giving about `target` intervals over `range`. */
export function niceStep(range, target) {
  if (!(range > 0)) return 1;
  const raw = range / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
  return nice * mag;
}

export function decimalsFor(step) {
  return Math.min(6, Math.max(0, Math.ceil(-Math.log10(step) - 1e-9) + (String(step).includes('25') ? 1 : 0)));
}

export function timeStep(span, target) {
  for (const s of TIME_STEPS_MS) if (span / s <= target) return s;
  return TIME_STEPS_MS[TIME_STEPS_MS.length - 1];
}

/** Local HH:MM:SS, with `digits` (0 to 3) decimals of the second. */
export function fmtTime(ms, digits = 0) {
  const d = new Date(ms);
  const p = (x) => String(x).padStart(2, '0');
  const base = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  if (!digits) return base;
  return `${base}.${String(d.getMilliseconds()).padStart(3, '0').slice(0, digits)}`;
}

export function fmtVol(v) {
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}K`;
  return String(Math.round(v));
}
