import { useMemo } from "react";
import { serviceGraph, summaries, type TraceSummary } from "../api";
import { ErrorBox, Histogram, Loading, TimeRangePicker, type Bin } from "../components";
import { setParams, useLocation } from "../route";
import { fmtSecs, fmtTime, parseRange } from "../time";
import { useAsync } from "../useAsync";
import { FilterBar } from "./TracesView";

const MAX = 2000;
const COLORS = ["var(--accent)", "var(--accent2)"];

/// Analytics: the response-time distribution and the time series of one filter, or of
/// two side by side to compare them.
export function AnalyticsView() {
  const { params } = useLocation();
  const range = params.get("range") ?? "1h";
  const a = params.get("a") ?? "";
  const b = params.get("b");
  const { start, end } = useMemo(() => parseRange(range), [range]);
  const ra = useAsync((s) => summaries(start, end, a, MAX, s), [start, end, a]);
  const rb = useAsync((s) => (b === null ? Promise.resolve({ items: [], more: false }) : summaries(start, end, b, MAX, s)), [start, end, b]);
  const graph = useAsync((s) => serviceGraph(start, end, undefined, s), [start, end]);
  const services = (graph.data?.Services ?? []).map((s) => s.Name ?? "").filter((n) => n && n !== "client");
  const keys = [...new Set([...(ra.data?.items ?? []), ...(rb.data?.items ?? [])].flatMap((t) => Object.keys(t.Annotations ?? {})))];
  const sets: TraceSummary[][] = [ra.data?.items ?? [], ...(b !== null ? [rb.data?.items ?? []] : [])];
  const dist = useMemo(() => distribution(sets, 40), [ra.data, rb.data, b]);
  const series = useMemo(() => timeBuckets(sets, start, end, 60), [ra.data, rb.data, b, start, end]);
  return (
    <div className="view">
      <div className="toolbar">
        <h2>Analytics</h2>
        <TimeRangePicker range={range} />
      </div>
      <div className="compare">
        <div>
          <span className="swatch" style={{ background: COLORS[0] }} /> A
          <FilterBar value={a} error={ra.error} services={services} annotationKeys={keys} onApply={(f) => setParams({ a: f })} testid="filter-a" placeholder="filter A (empty: all traces)" />
          <Summary set={ra.data?.items} more={ra.data?.more} />
        </div>
        {b !== null ? (
          <div>
            <span className="swatch" style={{ background: COLORS[1] }} /> B{" "}
            <button className="link" onClick={() => setParams({ b: null })}>
              remove
            </button>
            <FilterBar value={b} error={rb.error} services={services} annotationKeys={keys} onApply={(f) => setParams({ b: f || " " })} testid="filter-b" placeholder="filter B" />
            <Summary set={rb.data?.items} more={rb.data?.more} />
          </div>
        ) : (
          <button data-testid="compare" onClick={() => setParams({ b: " " })}>
            Compare with another filter
          </button>
        )}
      </div>
      {ra.error && (ra.error as { type?: string }).type !== "InvalidRequestException" ? <ErrorBox error={ra.error} /> : null}
      {!ra.data ? (
        <Loading what="traces" />
      ) : (
        <>
          <h3>Response-time distribution</h3>
          <Histogram bins={dist} colors={COLORS} testid="analytics-histogram" height={160} />
          <h3>Traces per minute</h3>
          <TimeSeries series={series} start={start} end={end} />
        </>
      )}
    </div>
  );
}

function Summary({ set, more }: { set?: TraceSummary[]; more?: boolean }) {
  if (!set) return null;
  const rts = set.map((t) => t.ResponseTime ?? 0).sort((x, y) => x - y);
  const q = (p: number) => (rts.length ? rts[Math.min(rts.length - 1, Math.floor(p * rts.length))] : undefined);
  const faults = set.filter((t) => t.HasFault).length;
  return (
    <p className="hint" data-testid="analytics-summary">
      {set.length}
      {more ? "+" : ""} traces · p50 {fmtSecs(q(0.5))} · p90 {fmtSecs(q(0.9))} · p99 {fmtSecs(q(0.99))} · faults {faults}
    </p>
  );
}

function distribution(sets: TraceSummary[][], n: number): Bin[] {
  const max = Math.max(0.001, ...sets.flatMap((s) => s.map((t) => t.ResponseTime ?? 0)));
  const w = max / n;
  const bins: Bin[] = Array.from({ length: n }, (_, i) => ({ lo: i * w, hi: (i + 1) * w, count: 0, series: sets.map(() => 0) }));
  sets.forEach((s, k) =>
    s.forEach((t) => {
      const i = Math.min(n - 1, Math.floor((t.ResponseTime ?? 0) / w));
      bins[i].series![k] += 1;
      bins[i].count += 1;
    }),
  );
  return bins;
}

function timeBuckets(sets: TraceSummary[][], start: number, end: number, n: number) {
  const w = (end - start) / n;
  return sets.map((s) => {
    const c = new Array(n).fill(0);
    for (const t of s) {
      const i = Math.floor(((t.StartTime ?? start) - start) / w);
      if (i >= 0 && i < n) c[i] += 1;
    }
    return c.map((x) => x / (w / 60));
  });
}

function TimeSeries({ series, start, end }: { series: number[][]; start: number; end: number }) {
  const W = 600;
  const H = 140;
  const max = Math.max(1e-9, ...series.flat());
  const n = series[0]?.length ?? 1;
  return (
    <svg className="histogram" viewBox={`0 0 ${W} ${H + 16}`} data-testid="timeseries" role="img" aria-label="traces per minute">
      {series.map((s, k) => (
        <polyline
          key={k}
          fill="none"
          stroke={COLORS[k]}
          strokeWidth={2}
          points={s.map((v, i) => `${18 + (i / Math.max(n - 1, 1)) * (W - 36)},${H - (v / max) * (H - 10)}`).join(" ")}
        />
      ))}
      <line x1={18} x2={W - 18} y1={H} y2={H} stroke="var(--muted-line)" />
      <text x={18} y={H + 13} className="axis">
        {fmtTime(start)}
      </text>
      <text x={W - 18} y={H + 13} className="axis" textAnchor="end">
        {fmtTime(end)}
      </text>
      <text x={22} y={12} className="axis">
        max {max.toFixed(2)}/min
      </text>
    </svg>
  );
}
