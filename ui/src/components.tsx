import { useEffect, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent, type ReactNode } from "react";
import dagre from "@dagrejs/dagre";
import { counts, type HistogramEntry, type Service, type Statistics } from "./api";
import { RANGES, fmtSecs, fmtRate, parseRange } from "./time";
import { setParams } from "./route";

// ------------------------------------------------------------------ small pieces

export function Loading({ what }: { what: string }) {
  return (
    <div className="state" data-testid="loading">
      <span className="spinner" /> Loading {what}…
    </div>
  );
}

export function ErrorBox({ error, retry }: { error: unknown; retry?: () => void }) {
  const e = error as { type?: string; message?: string };
  return (
    <div className="state error" role="alert" data-testid="error">
      <strong>{e.type ?? "Error"}</strong>: {e.message ?? String(error)}
      {retry && (
        <button className="link" onClick={retry}>
          try again
        </button>
      )}
    </div>
  );
}

/// What to do when there is nothing to show: how to send a first trace.
export function FirstTrace({ what }: { what: string }) {
  const origin = location.origin;
  return (
    <div className="state empty" data-testid="empty">
      <p>
        <strong>No {what} in this time range.</strong> Pick a longer range above, or send a first trace: any
        X-Ray SDK sends to UDP <code>127.0.0.1:2000</code> by default, for example with Python:
      </p>
      <pre>{`pip install aws-xray-sdk
python - <<'EOF'
from aws_xray_sdk.core import xray_recorder
xray_recorder.configure(service="checkout", sampling=False)
seg = xray_recorder.begin_segment("checkout")
seg.put_http_meta("url", "https://shop.example.com/checkout")
seg.put_http_meta("status", 200)
xray_recorder.end_segment()
EOF`}</pre>
      <p>
        OpenTelemetry exporters send OTLP to <code>{origin}/v1/traces</code> or gRPC port 4317.
      </p>
    </div>
  );
}

export function TimeRangePicker({ range, refresh }: { range: string; refresh?: string | null }) {
  const absolute = !RANGES.includes(range);
  const [custom, setCustom] = useState(absolute);
  const { start, end } = parseRange(range);
  const [from, setFrom] = useState(toLocalInput(start));
  const [to, setTo] = useState(toLocalInput(end));
  return (
    <span className="picker">
      <label>
        Time range{" "}
        <select
          data-testid="range"
          value={custom || absolute ? "custom" : range}
          onChange={(e) => {
            if (e.target.value === "custom") {
              setFrom(toLocalInput(start));
              setTo(toLocalInput(end));
              setCustom(true);
              return;
            }
            setCustom(false);
            setParams({ range: e.target.value === "1h" ? null : e.target.value });
          }}
        >
          {RANGES.map((r) => (
            <option key={r} value={r}>
              last {r}
            </option>
          ))}
          <option value="custom">custom…</option>
        </select>
      </label>
      {(custom || absolute) && (
        <form
          className="custom-range"
          onSubmit={(e) => {
            e.preventDefault();
            const a = new Date(from).getTime() / 1000;
            const b = new Date(to).getTime() / 1000;
            if (Number.isFinite(a) && Number.isFinite(b) && b > a) setParams({ range: `${Math.floor(a)}-${Math.ceil(b)}` });
          }}
        >
          <input type="datetime-local" step="1" data-testid="range-from" value={from} onChange={(e) => setFrom(e.target.value)} />
          –
          <input type="datetime-local" step="1" data-testid="range-to" value={to} onChange={(e) => setTo(e.target.value)} />
          <button type="submit" data-testid="range-apply">
            Apply
          </button>
        </form>
      )}
      {refresh !== undefined && (
        <label>
          Auto-refresh{" "}
          <select data-testid="refresh" value={refresh ?? "off"} onChange={(e) => setParams({ refresh: e.target.value === "off" ? null : e.target.value })}>
            {["off", "10s", "30s", "1m", "5m"].map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
      )}
    </span>
  );
}

function toLocalInput(epoch: number): string {
  const d = new Date(epoch * 1000 - new Date(epoch * 1000).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 19);
}

export function refreshMillis(r: string | null): number | null {
  const m = /^(\d+)([sm])$/.exec(r ?? "");
  return m ? Number(m[1]) * (m[2] === "m" ? 60_000 : 1000) : null;
}

// ------------------------------------------------------------------ status ring

export const COLORS = { ok: "var(--ok)", error: "var(--error)", fault: "var(--fault)", throttle: "var(--throttle)" };

export function Ring({ stats, r = 30, width = 7, dashed = false }: { stats?: Statistics; r?: number; width?: number; dashed?: boolean }) {
  const c = counts(stats);
  const circ = 2 * Math.PI * r;
  const parts: [keyof typeof COLORS, number][] = [
    ["ok", c.ok],
    ["error", c.error],
    ["fault", c.fault],
    ["throttle", c.throttle],
  ];
  const total = parts.reduce((a, [, n]) => a + n, 0);
  let offset = 0;
  return (
    <g>
      <circle r={r} fill="var(--node-bg)" stroke="var(--muted-line)" strokeWidth={width} strokeDasharray={dashed ? "4 3" : undefined} />
      {total > 0 &&
        parts.map(([k, n]) => {
          if (n === 0) return null;
          const len = (n / total) * circ;
          const el = (
            <circle
              key={k}
              r={r}
              fill="none"
              stroke={COLORS[k]}
              strokeWidth={width}
              strokeDasharray={`${len} ${circ - len}`}
              strokeDashoffset={-offset}
              transform="rotate(-90)"
              data-share={k}
            />
          );
          offset += len;
          return el;
        })}
    </g>
  );
}

export function Legend() {
  return (
    <span className="legend">
      {(Object.keys(COLORS) as (keyof typeof COLORS)[]).map((k) => (
        <span key={k}>
          <i style={{ background: COLORS[k] }} /> {k}
        </span>
      ))}
    </span>
  );
}

// ------------------------------------------------------------------ service map

export type Selection = { kind: "node"; id: number } | { kind: "edge"; from: number; to: number } | null;

const INFERRED_ORIGINS = new Set([
  "AWS::EC2::Instance",
  "AWS::ECS::Container",
  "AWS::ElasticBeanstalk::Environment",
  "AWS::EKS::Container",
  "AWS::Lambda::Function",
  "AWS::Lambda",
]);

export function nodeKind(s: Service): "client" | "inferred" | "service" {
  if (s.Type === "client") return "client";
  if (s.Type === "remote" || (s.Type && !INFERRED_ORIGINS.has(s.Type) && s.Type.startsWith("AWS::"))) return "inferred";
  if (s.Type === "database::SQL") return "inferred";
  return "service";
}

const NODE_W = 80;
const NODE_H = 100;

export function layoutGraph(services: Service[]) {
  const t0 = performance.now();
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: "LR", nodesep: 30, ranksep: 120, marginx: 70, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  const ids = new Set<number>();
  for (const s of services) {
    if (s.ReferenceId === undefined) continue;
    ids.add(s.ReferenceId);
    g.setNode(String(s.ReferenceId), { width: NODE_W, height: NODE_H });
  }
  for (const s of services)
    for (const e of s.Edges ?? [])
      if (s.ReferenceId !== undefined && e.ReferenceId !== undefined && ids.has(e.ReferenceId) && e.ReferenceId !== s.ReferenceId)
        // No label size: label dummies would double dagre's work (and time) on dense
        // maps; the latency label sits at the middle of the routed edge instead.
        g.setEdge(String(s.ReferenceId), String(e.ReferenceId), {});
  dagre.layout(g);
  performance.measure("map-layout", { start: t0, end: performance.now() });
  const graph = g.graph();
  return { g, width: graph.width ?? 0, height: graph.height ?? 0 };
}

export function ServiceMap({
  services,
  minutes,
  selected,
  onSelect,
  testid = "service-map",
}: {
  services: Service[];
  /// The window's length, for requests per minute; 0 shows request counts instead.
  minutes: number;
  selected: Selection;
  onSelect: (s: Selection) => void;
  testid?: string;
}) {
  const { g, width, height } = useMemo(() => layoutGraph(services), [services]);
  const byId = useMemo(() => new Map(services.map((s) => [s.ReferenceId, s])), [services]);
  const [zoom, setZoom] = useState(1);
  const w = Math.max(width, 200);
  const h = Math.max(height, 120);
  // "fit": as large as the box allows (at most 1.4x), but never below 0.7x, so a map of
  // many services stays legible and scrolls instead of shrinking to dots.
  const box = useRef<HTMLDivElement>(null);
  const [boxWidth, setBoxWidth] = useState(1200);
  useLayoutEffect(() => {
    if (box.current) setBoxWidth(box.current.clientWidth);
  }, [w]);
  const fit = Math.min(1.4, Math.max(0.7, Math.min(boxWidth / w, (0.7 * window.innerHeight) / h)));
  const scale = fit * zoom;
  return (
    <div className="map-wrap">
      <div className="map-tools">
        <Legend />
        <span>
          <button onClick={() => setZoom((z) => Math.min(z * 1.25, 4))} aria-label="zoom in">+</button>
          <button onClick={() => setZoom(1)}>fit</button>
          <button onClick={() => setZoom((z) => Math.max(z / 1.25, 0.25))} aria-label="zoom out">−</button>
        </span>
      </div>
      <div className="map-scroll" ref={box}>
        <svg
          data-testid={testid}
          className="map"
          viewBox={`0 0 ${w} ${h}`}
          style={{ width: w * scale, height: h * scale, margin: "0 auto" }}
          role="img"
          aria-label="service map"
        >
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M 0 0 L 10 5 L 0 10 z" fill="var(--edge)" />
            </marker>
          </defs>
          {services.flatMap((s) =>
            (s.Edges ?? []).map((e) => {
              const ge = g.edge(String(s.ReferenceId), String(e.ReferenceId));
              if (!ge) return null;
              const pts = ge.points ?? [];
              const d = pts.map((p: { x: number; y: number }, i: number) => `${i ? "L" : "M"}${p.x},${p.y}`).join(" ");
              const mid = midpoint(pts);
              const c = counts(e.SummaryStatistics);
              const sel = selected?.kind === "edge" && selected.from === s.ReferenceId && selected.to === e.ReferenceId;
              const bad = c.fault > 0 ? "fault" : c.error + c.throttle > 0 ? "error" : "";
              const target = byId.get(e.ReferenceId);
              return (
                <g
                  key={`${s.ReferenceId}-${e.ReferenceId}`}
                  className={`edge ${sel ? "selected" : ""} ${bad}`}
                  data-testid="map-edge"
                  data-source={s.Name}
                  data-target={target?.Name}
                  onClick={() => onSelect({ kind: "edge", from: s.ReferenceId!, to: e.ReferenceId! })}
                >
                  <path d={d} className="edge-hit" />
                  <path d={d} className="edge-line" markerEnd="url(#arrow)" />
                  {mid && (
                    <text x={mid.x} y={mid.y - 4} className="edge-label" textAnchor="middle">
                      {fmtSecs(c.mean)}
                    </text>
                  )}
                </g>
              );
            }),
          )}
          {services.map((s) => {
            const n = g.node(String(s.ReferenceId));
            if (!n) return null;
            const kind = nodeKind(s);
            const c = counts(s.SummaryStatistics);
            const sel = selected?.kind === "node" && selected.id === s.ReferenceId;
            return (
              <g
                key={s.ReferenceId}
                transform={`translate(${n.x},${n.y - 12})`}
                className={`node ${kind} ${sel ? "selected" : ""}`}
                data-testid="map-node"
                data-name={s.Name}
                data-kind={kind}
                tabIndex={0}
                onClick={() => onSelect({ kind: "node", id: s.ReferenceId! })}
                onKeyDown={(ev) => ev.key === "Enter" && onSelect({ kind: "node", id: s.ReferenceId! })}
              >
                <title>{`${s.Name} (${s.Type ?? "service"})`}</title>
                {kind === "client" ? (
                  <g>
                    <circle r={30} fill="var(--node-bg)" stroke="var(--muted-line)" strokeWidth={3} />
                    <text textAnchor="middle" dominantBaseline="middle" className="node-icon">
                      client
                    </text>
                  </g>
                ) : (
                  <>
                    <Ring stats={s.SummaryStatistics} dashed={kind === "inferred"} />
                    {c.total > 0 && (
                      <>
                        <text y={-4} textAnchor="middle" className="node-stat">
                          {fmtSecs(c.mean)}
                        </text>
                        <text y={10} textAnchor="middle" className="node-stat">
                          {minutes > 0 ? `${fmtRate(c.total / Math.max(minutes, 1))}/min` : `${c.total} req`}
                        </text>
                      </>
                    )}
                  </>
                )}
                <text y={48} textAnchor="middle" className="node-name">
                  {truncate(s.Name ?? "?", 22)}
                </text>
                {s.Type && kind !== "client" && (
                  <text y={62} textAnchor="middle" className="node-type">
                    {truncate(s.Type, 26)}
                  </text>
                )}
              </g>
            );
          })}
        </svg>
      </div>
    </div>
  );
}

/// The point halfway along a polyline.
function midpoint(pts: { x: number; y: number }[]): { x: number; y: number } | null {
  if (pts.length === 0) return null;
  const seg = pts.slice(1).map((p, i) => Math.hypot(p.x - pts[i].x, p.y - pts[i].y));
  let half = seg.reduce((a, b) => a + b, 0) / 2;
  for (let i = 0; i < seg.length; i++) {
    if (half <= seg[i] && seg[i] > 0) {
      const t = half / seg[i];
      return { x: pts[i].x + t * (pts[i + 1].x - pts[i].x), y: pts[i].y + t * (pts[i + 1].y - pts[i].y) };
    }
    half -= seg[i];
  }
  return pts[pts.length - 1];
}

function truncate(s: string, n: number) {
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

// ------------------------------------------------------------------ histogram with brush

export interface Bin { lo: number; hi: number; count: number; series?: number[] }

/// Bins of `values` (seconds, each with a count) over [0, max], `n` of them.
export function binEntries(entries: HistogramEntry[], n = 30, maxOverride?: number): Bin[] {
  const max = maxOverride ?? Math.max(0, ...entries.map((e) => e.Value));
  const width = max > 0 ? max / n : 1;
  const bins: Bin[] = Array.from({ length: n }, (_, i) => ({ lo: i * width, hi: (i + 1) * width, count: 0 }));
  for (const e of entries) {
    const i = Math.min(n - 1, Math.floor(e.Value / width));
    bins[Math.max(0, i)].count += e.Count;
  }
  return bins;
}

/// A bar chart of response times; dragging across it selects a range (seconds).
export function Histogram({
  bins,
  selection,
  onSelect,
  height = 120,
  colors = ["var(--accent)", "var(--accent2)"],
  label = "response time",
  testid = "histogram",
}: {
  bins: Bin[];
  selection?: [number, number] | null;
  onSelect?: (range: [number, number] | null) => void;
  height?: number;
  colors?: string[];
  label?: string;
  testid?: string;
}) {
  const W = 600;
  const H = height;
  const pad = 18;
  const ref = useRef<SVGSVGElement>(null);
  const [drag, setDrag] = useState<[number, number] | null>(null);
  const series = bins[0]?.series ? bins[0].series.length : 1;
  const max = Math.max(1, ...bins.flatMap((b) => b.series ?? [b.count]));
  const lo = bins[0]?.lo ?? 0;
  const hi = bins[bins.length - 1]?.hi ?? 1;
  const bw = (W - 2 * pad) / Math.max(bins.length, 1);
  const toX = (v: number) => pad + ((v - lo) / (hi - lo || 1)) * (W - 2 * pad);
  const toV = (clientX: number) => {
    const r = ref.current!.getBoundingClientRect();
    const x = ((clientX - r.left) / r.width) * W;
    return Math.min(hi, Math.max(lo, lo + ((x - pad) / (W - 2 * pad)) * (hi - lo)));
  };
  const shown = drag ?? selection;
  return (
    <svg
      ref={ref}
      className="histogram"
      data-testid={testid}
      viewBox={`0 0 ${W} ${H + 16}`}
      onMouseDown={onSelect && ((e) => setDrag([toV(e.clientX), toV(e.clientX)]))}
      onMouseMove={(e) => drag && setDrag([drag[0], toV(e.clientX)])}
      onMouseUp={() => {
        if (!drag || !onSelect) return;
        const [a, b] = [Math.min(...drag), Math.max(...drag)];
        setDrag(null);
        onSelect(b - a > (hi - lo) / 200 ? [a, b] : null);
      }}
      onMouseLeave={() => setDrag(null)}
      role="img"
      aria-label={`${label} distribution`}
    >
      {bins.map((b, i) =>
        (b.series ?? [b.count]).map((n, s) => {
          const h = (n / max) * (H - 10);
          return (
            <rect
              key={`${i}-${s}`}
              x={pad + i * bw + (s * bw) / series + 0.5}
              y={H - h}
              width={Math.max(bw / series - 1, 0.5)}
              height={h}
              fill={colors[s % colors.length]}
              opacity={series > 1 ? 0.8 : 1}
            >
              <title>{`${fmtSecs(b.lo)} – ${fmtSecs(b.hi)}: ${n}`}</title>
            </rect>
          );
        }),
      )}
      <line x1={pad} x2={W - pad} y1={H} y2={H} stroke="var(--muted-line)" />
      <text x={pad} y={H + 13} className="axis">
        {fmtSecs(lo)}
      </text>
      <text x={W - pad} y={H + 13} className="axis" textAnchor="end">
        {fmtSecs(hi)}
      </text>
      <text x={W / 2} y={H + 13} className="axis" textAnchor="middle">
        {label}
        {onSelect ? " (drag to select)" : ""}
      </text>
      {shown && (
        <rect
          data-testid="brush"
          x={toX(Math.min(...shown))}
          y={0}
          width={Math.abs(toX(shown[1]) - toX(shown[0]))}
          height={H}
          className="brush"
        />
      )}
    </svg>
  );
}

export function StatsTable({ stats, minutes }: { stats?: Statistics; minutes: number }) {
  const c = counts(stats);
  const pct = (n: number) => (c.total ? `${((n / c.total) * 100).toFixed(1)} %` : "–");
  const rows: [string, ReactNode][] = [
    ["requests", c.total],
    ["requests / min", fmtRate(c.total / Math.max(minutes, 1))],
    ["mean response time", fmtSecs(c.mean)],
    ["ok", `${c.ok} (${pct(c.ok)})`],
    ["error (4xx)", `${c.error} (${pct(c.error)})`],
    ["throttle (429)", `${c.throttle} (${pct(c.throttle)})`],
    ["fault (5xx)", `${c.fault} (${pct(c.fault)})`],
  ];
  return (
    <table className="kv" data-testid="stats">
      <tbody>
        {rows.map(([k, v]) => (
          <tr key={k}>
            <th>{k}</th>
            <td>{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/// Keyboard navigation of a table's rows: ArrowDown/j and ArrowUp/k move the cursor
/// (and the focus, once a row has it), Enter acts on the row under the cursor. Spread
/// `body` on the `<tbody>` and `row(i)` on each `<tr>`.
export function useRowKeys(count: number, onEnter: (i: number) => void) {
  const [cursor, setCursor] = useState(0);
  const ref = useRef<HTMLTableSectionElement>(null);
  useEffect(() => {
    const el = ref.current?.children[cursor] as HTMLElement | undefined;
    if (el && ref.current?.contains(document.activeElement)) el.focus();
  }, [cursor]);
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.target instanceof HTMLButtonElement || e.target instanceof HTMLAnchorElement) return;
    if (e.key === "ArrowDown" || e.key === "j") setCursor((c) => Math.min(count - 1, c + 1));
    else if (e.key === "ArrowUp" || e.key === "k") setCursor((c) => Math.max(0, c - 1));
    else if (e.key === "Enter" && cursor < count) onEnter(cursor);
    else return;
    e.preventDefault();
  };
  return {
    body: { ref, onKeyDown },
    row: (i: number) => ({
      tabIndex: i === cursor ? 0 : -1,
      className: i === cursor ? "cursor" : "",
      onClick: () => setCursor(i),
    }),
  };
}
