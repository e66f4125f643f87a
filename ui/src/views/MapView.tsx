import { useEffect, useMemo, useState } from "react";
import { getGroups, serviceGraph, type Group, type Service, type ServiceGraphResult } from "../api";
import { ErrorBox, FirstTrace, Histogram, Loading, ServiceMap, StatsTable, TimeRangePicker, binEntries, refreshMillis, type Selection } from "../components";
import { link, onLink, setParams, useLocation } from "../route";
import { parseRange } from "../time";
import { useAsync } from "../useAsync";
import { markData, markPainted } from "../marks";

/// The filter expression that selects the traces through a node or an edge.
export function nodeFilter(s: Service): string {
  const name = JSON.stringify(s.Name ?? "");
  if (s.Type === "client") return "";
  return s.Type ? `service(id(name: ${name}, type: ${JSON.stringify(s.Type)}))` : `service(${name})`;
}

/// A node's name and type, as the map's URL names it.
export function nodeKey(s: Service): string {
  return `${s.Name ?? ""}|${s.Type ?? ""}`;
}

export function edgeFilter(a: Service, b: Service): string {
  const id = (s: Service) =>
    s.Type && s.Type !== "client" ? `id(name: ${JSON.stringify(s.Name ?? "")}, type: ${JSON.stringify(s.Type)})` : JSON.stringify(s.Name ?? "");
  if (a.Type === "client") return nodeFilter(b);
  return `edge(${id(a)}, ${id(b)})`;
}

export function withResponseTime(filter: string, range: [number, number] | null, edge: boolean): string {
  if (!range) return filter;
  const [lo, hi] = range.map((v) => Number(v.toFixed(3)));
  const cond = `responsetime >= ${lo} AND responsetime <= ${hi}`;
  if (!filter) return cond;
  return edge ? `${filter} { ${cond} }` : `${filter} { ${cond} }`;
}

export function MapView() {
  const { params } = useLocation();
  const range = params.get("range") ?? "1h";
  const group = params.get("group") ?? "";
  const refresh = params.get("refresh");
  const sel = params.get("sel");
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ms = refreshMillis(refresh);
    if (!ms) return;
    const t = setInterval(() => setTick((x) => x + 1), ms);
    return () => clearInterval(t);
  }, [refresh]);
  const { start, end } = useMemo(() => parseRange(range), [range, tick]);
  const graph = useAsync<ServiceGraphResult>(
    (signal) =>
      serviceGraph(start, end, group || undefined, signal).then((g) => {
        markData("map");
        return g;
      }),
    [start, end, group],
  );
  const groups = useAsync<{ Groups?: Group[] }>(() => getGroups(), []);
  const services = graph.data?.Services ?? [];
  const minutes = (end - start) / 60;
  // The selection is kept by name and type (ReferenceIds are per answer), so a shared
  // link still points at the same node after new services appear.
  const selection: Selection = useMemo(() => {
    const ref = new Map(services.map((s) => [nodeKey(s), s.ReferenceId]));
    const m = /^n:(.*)$/.exec(sel ?? "");
    if (m && ref.has(m[1])) return { kind: "node", id: ref.get(m[1])! };
    const e = /^e:(.*)>(.*)$/.exec(sel ?? "");
    if (e && ref.has(e[1]) && ref.has(e[2])) return { kind: "edge", from: ref.get(e[1])!, to: ref.get(e[2])! };
    return null;
  }, [sel, services]);
  const byRef = new Map(services.map((s) => [s.ReferenceId, s]));
  const keyOf = (id: number) => nodeKey(byRef.get(id) ?? {});
  useEffect(() => {
    if (services.length) markPainted("map");
  }, [services]);
  return (
    <div className="view">
      <div className="toolbar">
        <h2>Service map</h2>
        <label>
          Group{" "}
          <select data-testid="group" value={group} onChange={(e) => setParams({ group: e.target.value, sel: null })}>
            <option value="">all traces</option>
            {(groups.data?.Groups ?? [])
              .filter((g) => g.GroupName !== "Default")
              .map((g) => (
                <option key={g.GroupName} value={g.GroupName}>
                  {g.GroupName}
                </option>
              ))}
          </select>
        </label>
        <TimeRangePicker range={range} refresh={refresh} />
        <button onClick={graph.reload}>Refresh</button>
      </div>
      {graph.error ? (
        <ErrorBox error={graph.error} retry={graph.reload} />
      ) : !graph.data ? (
        <Loading what="the service map" />
      ) : services.length === 0 ? (
        <FirstTrace what="services" />
      ) : (
        <div className="split">
          <ServiceMap
            services={services}
            minutes={minutes}
            selected={selection}
            onSelect={(s) => setParams({ sel: s === null ? null : s.kind === "node" ? `n:${keyOf(s.id)}` : `e:${keyOf(s.from)}>${keyOf(s.to)}` })}
          />
          {selection && <MapPanel services={services} selection={selection} minutes={minutes} range={range} />}
        </div>
      )}
    </div>
  );
}

function MapPanel({ services, selection, minutes, range }: { services: Service[]; selection: Selection; minutes: number; range: string }) {
  const byId = new Map(services.map((s) => [s.ReferenceId, s]));
  const [brush, setBrush] = useState<[number, number] | null>(null);
  useEffect(() => setBrush(null), [JSON.stringify(selection)]);
  if (!selection) return null;
  let title = "";
  let stats;
  let hist;
  let filter = "";
  let edge = false;
  if (selection.kind === "node") {
    const s = byId.get(selection.id);
    if (!s) return null;
    title = `${s.Name}${s.Type ? ` (${s.Type})` : ""}`;
    stats = s.SummaryStatistics;
    hist = s.ResponseTimeHistogram ?? [];
    filter = nodeFilter(s);
  } else {
    const a = byId.get(selection.from);
    const b = byId.get(selection.to);
    if (!a || !b) return null;
    const e = (a.Edges ?? []).find((x) => x.ReferenceId === selection.to);
    title = `${a.Name} → ${b.Name}`;
    stats = e?.SummaryStatistics;
    hist = e?.ResponseTimeHistogram ?? [];
    filter = edgeFilter(a, b);
    edge = true;
  }
  const traces = link("/traces", { range, filter: withResponseTime(filter, brush, edge) });
  return (
    <aside className="panel" data-testid="map-panel">
      <div className="panel-head">
        <h3>{title}</h3>
        <button className="link" onClick={() => setParams({ sel: null })} aria-label="close">
          ✕
        </button>
      </div>
      <Histogram bins={binEntries(hist)} selection={brush} onSelect={setBrush} />
      {brush && <p className="hint">Selected response times {brush.map((v) => v.toFixed(3)).join(" – ")} s</p>}
      <StatsTable stats={stats} minutes={minutes} />
      <a href={traces} onClick={(e) => onLink(e, traces)} className="button" data-testid="view-traces">
        View traces
      </a>
    </aside>
  );
}
