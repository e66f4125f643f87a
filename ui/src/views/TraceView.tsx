import { useEffect, useMemo, useRef, useState, type KeyboardEvent, type ReactNode } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import { batchGetTraces, traceGraph, type Service } from "../api";
import { ErrorBox, Loading, ServiceMap, type Selection } from "../components";
import { link, onLink, setParams, useLocation } from "../route";
import { fmtSecs, fmtTime } from "../time";
import { useAsync } from "../useAsync";
import { markData, markPainted } from "../marks";

/// A segment or subsegment as the documents have it (only what the console reads).
export interface Entity {
  id?: string;
  name?: string;
  start_time?: number;
  end_time?: number;
  in_progress?: boolean;
  parent_id?: string;
  trace_id?: string;
  origin?: string;
  namespace?: string;
  error?: boolean;
  fault?: boolean;
  throttle?: boolean;
  http?: Record<string, unknown>;
  aws?: Record<string, unknown>;
  sql?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  cause?: { working_directory?: string; exceptions?: Exception[] } | string;
  subsegments?: Entity[];
  user?: string;
  [k: string]: unknown;
}
interface Exception {
  id?: string;
  message?: string;
  type?: string;
  remote?: boolean;
  truncated?: number;
  skipped?: number;
  cause?: string;
  stack?: { path?: string; line?: number; label?: string }[];
}

/// Each segment's document exactly as BatchGetTraces returned it (the raw tab shows it).
const RAW = new WeakMap<Entity, string>();

export interface Row {
  e: Entity;
  depth: number;
  service: string;
  segment: boolean;
  hasChildren: boolean;
  key: string;
}

/// Every segment and subsegment of the documents as a tree: subsegments under their
/// segment, a segment under the subsegment that called it (its `parent_id`).
export function buildTree(docs: Entity[]) {
  const byId = new Map<string, Entity>();
  const owner = new Map<Entity, string>();
  const children = new Map<Entity, Entity[]>();
  const visit = (e: Entity, service: string) => {
    if (e.id) byId.set(e.id, e);
    owner.set(e, service);
    for (const s of e.subsegments ?? []) visit(s, service);
    children.set(e, [...(e.subsegments ?? [])]);
  };
  for (const d of docs) visit(d, d.name ?? "?");
  const roots: Entity[] = [];
  for (const d of docs) {
    const parent = d.parent_id ? byId.get(d.parent_id) : undefined;
    if (parent && parent !== d) children.get(parent)!.push(d);
    else roots.push(d);
  }
  const byStart = (a: Entity, b: Entity) => (a.start_time ?? 0) - (b.start_time ?? 0);
  roots.sort(byStart);
  for (const list of children.values()) list.sort(byStart);
  const segmentSet = new Set(docs);
  return { roots, children, owner, segmentSet, count: byId.size };
}

export function flatten(tree: ReturnType<typeof buildTree>, collapsed: Set<string>): Row[] {
  const rows: Row[] = [];
  const stack: [Entity, number][] = tree.roots.map((r) => [r, 0] as [Entity, number]).reverse();
  let n = 0;
  while (stack.length) {
    const [e, depth] = stack.pop()!;
    const kids = tree.children.get(e) ?? [];
    const key = e.id ?? `#${n++}`;
    rows.push({ e, depth, service: tree.owner.get(e) ?? "?", segment: tree.segmentSet.has(e), hasChildren: kids.length > 0, key });
    if (!collapsed.has(key)) for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + 1]);
  }
  return rows;
}

const PALETTE = ["#4f7cff", "#14a38b", "#c77dff", "#f0a020", "#e8590c", "#2b8a3e", "#d6336c", "#1098ad", "#7048e8", "#a9743b"];
function serviceColor(services: string[], s: string) {
  return PALETTE[Math.max(0, services.indexOf(s)) % PALETTE.length];
}

export function TraceView({ id }: { id: string }) {
  const { params } = useLocation();
  const range = params.get("range") ?? "";
  const res = useAsync(
    (signal) =>
      batchGetTraces([id], signal).then((r) => {
        markData("trace");
        return r;
      }),
    [id],
  );
  const graph = useAsync((signal) => traceGraph([id], signal), [id]);
  const trace = res.data?.Traces?.[0];
  const docs = useMemo(() => {
    const out: Entity[] = [];
    for (const s of trace?.Segments ?? []) {
      try {
        const doc: Entity = JSON.parse(s.Document ?? "{}");
        RAW.set(doc, s.Document ?? "");
        out.push(doc);
      } catch {
        /* a document the server kept verbatim but that is not JSON: skipped */
      }
    }
    return out;
  }, [trace]);
  const back = link("/traces", { range });
  return (
    <div className="view">
      <div className="toolbar">
        <a href={back} onClick={(e) => onLink(e, back)}>
          ← Traces
        </a>
        <h2 className="mono">{id}</h2>
      </div>
      {res.error ? (
        <ErrorBox error={res.error} retry={res.reload} />
      ) : !res.data ? (
        <Loading what="the trace" />
      ) : !trace ? (
        <div className="state empty" data-testid="empty">
          Trace <code>{id}</code> is not in the store. It may be older than the retention, or its segments have not arrived yet;{" "}
          <button className="link" onClick={res.reload}>
            look again
          </button>
          .
        </div>
      ) : (
        <TraceBody docs={docs} services={graph.data?.Services ?? []} />
      )}
    </div>
  );
}

function TraceBody({ docs, services }: { docs: Entity[]; services: Service[] }) {
  const { params } = useLocation();
  const tree = useMemo(() => buildTree(docs), [docs]);
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const rows = useMemo(() => flatten(tree, collapsed), [tree, collapsed]);
  const names = useMemo(() => [...new Set(docs.map((d) => d.name ?? "?"))].sort(), [docs]);
  const t0 = Math.min(...docs.map((d) => d.start_time ?? Infinity));
  const t1 = Math.max(...docs.map((d) => d.end_time ?? d.start_time ?? -Infinity));
  const span = Math.max(t1 - t0, 1e-6);
  const selectedId = params.get("entity");
  const selected = rows.find((r) => r.key === selectedId) ?? null;
  const search = params.get("q") ?? "";
  const setSearch = (q: string) => setParams({ q }, true);
  const matches = useMemo(() => {
    const q = search.trim().toLowerCase();
    if (!q) return [] as number[];
    return rows.flatMap((r, i) => ((r.e.name ?? "").toLowerCase().includes(q) || (r.e.id ?? "").includes(q) ? [i] : []));
  }, [rows, search]);
  const [matchAt, setMatchAt] = useState(0);
  const scroller = useRef<HTMLDivElement>(null);
  const virt = useVirtualizer({ count: rows.length, getScrollElement: () => scroller.current, estimateSize: () => 26, overscan: 20 });
  useEffect(() => {
    markPainted("trace");
  }, [rows]);
  const subsegments = tree.count - docs.length;
  const select = (r: Row | undefined) => r && setParams({ entity: r.key }, true);
  const onKey = (e: KeyboardEvent) => {
    const i = selected ? rows.indexOf(selected) : -1;
    if (e.key === "ArrowDown" || e.key === "j") select(rows[Math.min(rows.length - 1, i + 1)]);
    else if (e.key === "ArrowUp" || e.key === "k") select(rows[Math.max(0, i - 1)]);
    else if ((e.key === "ArrowLeft" || e.key === "ArrowRight") && selected?.hasChildren) toggle(selected.key, e.key === "ArrowLeft");
    else return;
    e.preventDefault();
    const j = rows.indexOf(selected!) + (e.key === "ArrowDown" || e.key === "j" ? 1 : e.key === "ArrowUp" || e.key === "k" ? -1 : 0);
    if (j >= 0) virt.scrollToIndex(Math.min(rows.length - 1, j));
  };
  const toggle = (key: string, collapse?: boolean) =>
    setCollapsed((c) => {
      const n = new Set(c);
      if (collapse ?? !n.has(key)) n.add(key);
      else n.delete(key);
      return n;
    });
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  return (
    <>
      <div className="toolbar">
        <span data-testid="segment-count" data-segments={docs.length} data-subsegments={subsegments}>
          {docs.length} segments · {subsegments} subsegments · {fmtSecs(span)} · started {fmtTime(t0)}
        </span>
        <span className="legend">
          {names.map((n) => (
            <span key={n}>
              <i style={{ background: serviceColor(names, n) }} /> {n}
            </span>
          ))}
        </span>
      </div>
      <div className="toolbar">
        <input
          data-testid="waterfall-search"
          placeholder="search names and ids"
          value={search}
          onChange={(e) => {
            setSearch(e.target.value);
            setMatchAt(0);
          }}
          onKeyDown={(e) => {
            if (e.key === "Enter" && matches.length) {
              const i = matches[matchAt % matches.length];
              virt.scrollToIndex(i, { align: "center" });
              select(rows[i]);
              setMatchAt((m) => m + 1);
            }
          }}
        />
        {search && <span data-testid="search-count">{matches.length} matches (Enter: next)</span>}
        <button onClick={() => setCollapsed(new Set())}>Expand all</button>
        <button onClick={() => setCollapsed(new Set(rows.filter((r) => r.hasChildren && r.depth > 0).map((r) => r.key)))}>Collapse all</button>
      </div>
      <div className="split">
        <div className="waterfall" data-testid="waterfall">
          <div className="wf-head">
            <span className="wf-name">Name</span>
            <span className="wf-bar-head">
              {ticks.map((t) => (
                <span key={t} style={{ left: `${t * 100}%`, transform: `translateX(-${t * 100}%)` }}>
                  {fmtSecs(t * span)}
                </span>
              ))}
            </span>
          </div>
          <div
            className="wf-scroll"
            ref={scroller}
            tabIndex={0}
            onKeyDown={onKey}
            data-testid="waterfall-scroll"
            style={{ height: Math.min(rows.length * 26 + 2, Math.round(window.innerHeight * 0.62)) }}
          >
            <div style={{ height: virt.getTotalSize(), position: "relative" }}>
              {virt.getVirtualItems().map((v) => {
                const r = rows[v.index];
                const e = r.e;
                const s = ((e.start_time ?? t0) - t0) / span;
                const end = e.end_time ?? (e.in_progress ? t1 : e.start_time ?? t0);
                const w = Math.max((end - (e.start_time ?? t0)) / span, 0.002);
                const flag = e.fault ? "fault" : e.throttle ? "throttle" : e.error ? "error" : "";
                const isMatch = matches.length > 0 && matches.includes(v.index);
                return (
                  <div
                    key={r.key + v.index}
                    className={`wf-row ${r.segment ? "segment" : ""} ${selected === r ? "selected" : ""} ${isMatch ? "match" : ""}`}
                    style={{ transform: `translateY(${v.start}px)`, height: v.size }}
                    data-testid="wf-row"
                    data-name={e.name}
                    onClick={() => select(r)}
                  >
                    <span className="wf-name" style={{ paddingLeft: 6 + r.depth * 14 }}>
                      {r.hasChildren ? (
                        <button className="twisty" onClick={(ev) => (ev.stopPropagation(), toggle(r.key))} aria-label={collapsed.has(r.key) ? "expand" : "collapse"}>
                          {collapsed.has(r.key) ? "▸" : "▾"}
                        </button>
                      ) : (
                        <span className="twisty" />
                      )}
                      {flag && <span className={`marker ${flag}`} title={flag} data-testid={`marker-${flag}`} />}
                      <span title={e.name}>{e.name}</span>
                      {typeof e.http?.response === "object" && (e.http.response as { status?: number }).status !== undefined && (
                        <small className={`status ${flag || "ok"}`}>{(e.http.response as { status?: number }).status}</small>
                      )}
                    </span>
                    <span className="wf-bar-cell">
                      <span
                        className={`wf-bar ${flag}`}
                        style={{ left: `${s * 100}%`, width: `${w * 100}%`, background: serviceColor(names, r.service) }}
                      />
                      <small className="wf-dur" style={{ left: `${Math.min(s + w, 0.9) * 100}%` }}>
                        {fmtSecs(end - (e.start_time ?? t0))}
                      </small>
                    </span>
                  </div>
                );
              })}
            </div>
          </div>
        </div>
        {selected && <EntityPanel row={selected} t0={t0} />}
      </div>
      {services.length > 0 && <TraceMap services={services} />}
    </>
  );
}

function TraceMap({ services }: { services: Service[] }) {
  const [sel, setSel] = useState<Selection>(null);
  return (
    <section>
      <h3>This trace's map</h3>
      <ServiceMap services={services} minutes={0} selected={sel} onSelect={setSel} testid="trace-map" />
    </section>
  );
}

const TABS = ["overview", "http", "aws", "sql", "annotations", "metadata", "exceptions", "raw"] as const;

function EntityPanel({ row, t0 }: { row: Row; t0: number }) {
  const { params } = useLocation();
  const e = row.e;
  const exceptions = typeof e.cause === "object" ? e.cause?.exceptions ?? [] : [];
  const has: Record<string, boolean> = {
    overview: true,
    http: !!e.http,
    aws: !!e.aws,
    sql: !!e.sql,
    annotations: !!e.annotations && Object.keys(e.annotations).length > 0,
    metadata: !!e.metadata && Object.keys(e.metadata).length > 0,
    exceptions: exceptions.length > 0 || typeof e.cause === "string",
    raw: true,
  };
  const wanted = params.get("tab") ?? "overview";
  const tab = has[wanted] ? wanted : "overview";
  // A segment's raw document is the text as stored; a subsegment's, its part of it.
  const raw = useMemo(() => {
    const text = RAW.get(e);
    if (text === undefined) return JSON.stringify(e, null, 2);
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      return text;
    }
  }, [e]);
  return (
    <aside className="panel" data-testid="entity-panel">
      <div className="panel-head">
        <h3>{e.name}</h3>
        <button className="link" onClick={() => setParams({ entity: null, tab: null }, true)} aria-label="close">
          ✕
        </button>
      </div>
      <div className="tabs" role="tablist">
        {TABS.filter((t) => has[t]).map((t) => (
          <button key={t} role="tab" aria-selected={t === tab} className={t === tab ? "active" : ""} data-testid={`tab-${t}`} onClick={() => setParams({ tab: t }, true)}>
            {t}
          </button>
        ))}
      </div>
      <div className="tab-body" data-testid="tab-body">
        {tab === "overview" && (
          <KV
            obj={{
              kind: row.segment ? "segment" : "subsegment",
              id: e.id,
              service: row.service,
              origin: e.origin,
              namespace: e.namespace,
              start: `${fmtTime(e.start_time)} (+${fmtSecs((e.start_time ?? t0) - t0)})`,
              duration: e.end_time !== undefined ? fmtSecs(e.end_time - (e.start_time ?? 0)) : e.in_progress ? "in progress" : "–",
              status: e.fault ? "fault" : e.throttle ? "throttle" : e.error ? "error" : "ok",
              user: e.user,
              parent_id: e.parent_id,
            }}
          />
        )}
        {tab === "http" && <KV obj={e.http!} />}
        {tab === "aws" && <KV obj={e.aws!} />}
        {tab === "sql" && <KV obj={e.sql!} />}
        {tab === "annotations" && <KV obj={e.annotations!} />}
        {tab === "metadata" && <pre>{JSON.stringify(e.metadata, null, 2)}</pre>}
        {tab === "exceptions" && (
          <div data-testid="exceptions">
            {typeof e.cause === "string" && <p>Cause: exception {e.cause} (recorded in another subsegment)</p>}
            {typeof e.cause === "object" && e.cause?.working_directory && <p className="hint">working directory {e.cause.working_directory}</p>}
            {exceptions.map((x, i) => (
              <div key={x.id ?? i} className="exception">
                <strong>{x.type ?? "exception"}</strong>: {x.message}
                {x.remote && <small> (remote)</small>}
                {x.cause && <small> caused by {x.cause}</small>}
                {x.stack && (
                  <ol className="stack">
                    {x.stack.map((f, j) => (
                      <li key={j}>
                        <code>{f.label}</code> {f.path}:{f.line}
                      </li>
                    ))}
                    {x.truncated ? <li>… {x.truncated} more frames</li> : null}
                  </ol>
                )}
              </div>
            ))}
          </div>
        )}
        {tab === "raw" && <pre data-testid="raw">{raw}</pre>}
      </div>
    </aside>
  );
}

function KV({ obj }: { obj: Record<string, unknown> }): ReactNode {
  const entries = Object.entries(obj).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return (
    <table className="kv">
      <tbody>
        {entries.map(([k, v]) => (
          <tr key={k}>
            <th>{k}</th>
            <td>{typeof v === "object" ? <pre>{JSON.stringify(v, null, 2)}</pre> : String(v)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
