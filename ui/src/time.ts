// Time ranges: a relative range ("15m", "1h", … up to "30d") ending now, or an absolute
// one ("from-to" in epoch seconds), as the `range` URL parameter.

export const RANGES = ["5m", "15m", "1h", "3h", "6h", "12h", "24h", "3d", "7d", "30d"];
const UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

export function parseRange(range: string | null, now = Date.now() / 1000): { start: number; end: number; label: string } {
  const r = range || "1h";
  const abs = /^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/.exec(r);
  if (abs) {
    const start = Number(abs[1]);
    const end = Number(abs[2]);
    return { start, end: Math.max(end, start), label: `${fmtTime(start)} – ${fmtTime(end)}` };
  }
  const m = /^(\d+)([smhd])$/.exec(r);
  const secs = m ? Number(m[1]) * UNIT[m[2]] : 3600;
  return { start: now - secs, end: now, label: `last ${m ? r : "1h"}` };
}

export function fmtTime(epoch?: number): string {
  if (epoch === undefined) return "";
  const d = new Date(epoch * 1000);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtSecs(s?: number): string {
  if (s === undefined || s === null || Number.isNaN(s)) return "–";
  if (s < 0.001) return `${(s * 1e6).toFixed(0)} µs`;
  if (s < 1) return `${(s * 1000).toFixed(s < 0.01 ? 2 : 1)} ms`;
  if (s < 60) return `${s.toFixed(2)} s`;
  return `${(s / 60).toFixed(1)} min`;
}

export function fmtRate(n: number): string {
  if (n >= 100) return n.toFixed(0);
  if (n >= 1) return n.toFixed(1);
  return n.toFixed(2);
}
