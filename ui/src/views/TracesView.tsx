import { useEffect, useMemo, useRef, useState, type KeyboardEvent } from "react";
import { annotationText, serviceGraph, summaries, type TraceSummary } from "../api";
import { ErrorBox, FirstTrace, Histogram, Loading, TimeRangePicker, binEntries } from "../components";
import { link, navigate, onLink, setParams, useLocation } from "../route";
import { fmtSecs, fmtTime, parseRange } from "../time";
import { useAsync } from "../useAsync";

/// Most summaries the table loads (pages of 100).
const MAX_ROWS = 1000;

export const KEYWORDS = [
  "ok", "error", "fault", "throttle", "partial", "inferred", "first", "last", "remote", "root",
  "responsetime", "duration", "http.status", "http.url", "http.method", "http.useragent", "http.clientip",
  "user", "name", "type", "message", "availabilityzone", "instance.id", "resource.arn", "index", "coverage",
  "service(", "edge(", "id(name: ", "annotation.", "group.name", "group.arn",
  "rootcause.fault.service", "rootcause.fault.entity", "rootcause.fault.exception",
  "rootcause.error.service", "rootcause.error.entity", "rootcause.error.exception",
  "rootcause.responsetime.service", "rootcause.responsetime.entity", "rootcause.json",
  "AND", "OR", "NOT", "CONTAINS", "BEGINSWITH", "ENDSWITH",
];

type Col = { key: string; title: string; value: (t: TraceSummary) => string | number | undefined };
const COLUMNS: Col[] = [
  { key: "time", title: "Time", value: (t) => t.StartTime },
  { key: "id", title: "Trace id", value: (t) => t.Id },
  { key: "method", title: "Method", value: (t) => t.Http?.HttpMethod },
  { key: "url", title: "URL", value: (t) => t.Http?.HttpURL },
  { key: "status", title: "Status", value: (t) => t.Http?.HttpStatus },
  { key: "rt", title: "Response time", value: (t) => t.ResponseTime },
  { key: "duration", title: "Duration", value: (t) => t.Duration },
  { key: "annotations", title: "Annotations", value: (t) => annotations(t) },
];

function annotations(t: TraceSummary): string {
  return Object.entries(t.Annotations ?? {})
    .map(([k, vs]) => `${k}=${vs.map((v) => annotationText(v.AnnotationValue)).join("|")}`)
    .join(" ");
}

function groupValue(t: TraceSummary, by: string): string {
  if (by === "url") return t.Http?.HttpURL ?? "(no URL)";
  if (by === "status") return t.Http?.HttpStatus !== undefined ? String(t.Http.HttpStatus) : "(no status)";
  if (by === "user") return (t.Users ?? []).map((u) => u.UserName).join(", ") || "(no user)";
  if (by.startsWith("annotation.")) {
    const vs = t.Annotations?.[by.slice(11)];
    return vs ? vs.map((v) => annotationText(v.AnnotationValue)).join("|") : "(not set)";
  }
  return "";
}

function groupFilter(by: string, value: string): string | null {
  if (value.startsWith("(")) return null;
  if (by === "url") return `http.url = ${JSON.stringify(value)}`;
  if (by === "status") return `http.status = ${value}`;
  if (by === "user") return value.includes(",") ? null : `user = ${JSON.stringify(value)}`;
  if (by.startsWith("annotation.")) {
    const n = Number(value);
    const lit = value === "true" || value === "false" || (!Number.isNaN(n) && value.trim() !== "") ? value : JSON.stringify(value);
    return `${by} = ${lit}`;
  }
  return null;
}

function and(a: string, b: string) {
  return a.trim() ? `(${a}) AND ${b}` : b;
}

export function statusClass(t: TraceSummary) {
  return t.HasFault ? "fault" : t.HasThrottle ? "throttle" : t.HasError ? "error" : "ok";
}

export function TracesView() {
  const { params } = useLocation();
  const range = params.get("range") ?? "1h";
  const filter = params.get("filter") ?? "";
  const sort = params.get("sort") ?? "-time";
  const by = params.get("group") ?? "";
  const [nonce, setNonce] = useState(0);
  const { start, end } = useMemo(() => parseRange(range), [range, nonce]);
  const res = useAsync((signal) => summaries(start, end, filter, MAX_ROWS, signal), [start, end, filter]);
  const graph = useAsync((signal) => serviceGraph(start, end, undefined, signal), [start, end]);
  const rows = res.data?.items ?? [];
  const services = useMemo(() => (graph.data?.Services ?? []).map((s) => s.Name ?? "").filter((n) => n && n !== "client"), [graph.data]);
  const annotationKeys = useMemo(() => [...new Set(rows.flatMap((t) => Object.keys(t.Annotations ?? {})))].sort(), [rows]);
  const sorted = useMemo(() => {
    const desc = sort.startsWith("-");
    const col = COLUMNS.find((c) => c.key === sort.replace(/^-/, "")) ?? COLUMNS[0];
    return [...rows].sort((a, b) => {
      const x = col.value(a);
      const y = col.value(b);
      const c = x === y ? 0 : x === undefined ? 1 : y === undefined ? -1 : x < y ? -1 : 1;
      return desc ? -c : c;
    });
  }, [rows, sort]);
  const [brush, setBrush] = useState<[number, number] | null>(null);
  return (
    <div className="view">
      <div className="toolbar">
        <h2>Traces</h2>
        <TimeRangePicker range={range} />
        <button onClick={() => setNonce((n) => n + 1)}>Refresh</button>
      </div>
      <FilterBar value={filter} error={res.error} services={services} annotationKeys={annotationKeys} onApply={(f) => setParams({ filter: f })} />
      {res.error ? (
        (res.error as { type?: string }).type === "InvalidRequestException" ? null : <ErrorBox error={res.error} retry={res.reload} />
      ) : !res.data ? (
        <Loading what="traces" />
      ) : rows.length === 0 ? (
        filter ? (
          <div className="state empty" data-testid="empty">
            No trace in this time range matches <code>{filter}</code>. Widen the time range or change the filter.
          </div>
        ) : (
          <FirstTrace what="traces" />
        )
      ) : (
        <>
          <div className="chart-row">
            <Histogram
              bins={binEntries(rows.map((t) => ({ Value: t.ResponseTime ?? 0, Count: 1 })), 40)}
              selection={brush}
              onSelect={(r) => {
                setBrush(null);
                if (r) setParams({ filter: and(filter, `responsetime >= ${r[0].toFixed(3)} AND responsetime <= ${r[1].toFixed(3)}`) });
              }}
              testid="traces-histogram"
            />
          </div>
          <div className="toolbar">
            <span data-testid="trace-count">
              {rows.length}
              {res.data.more ? "+" : ""} traces
            </span>
            <label>
              Group by{" "}
              <select data-testid="group-by" value={by} onChange={(e) => setParams({ group: e.target.value })}>
                <option value="">nothing</option>
                <option value="url">URL</option>
                <option value="status">status</option>
                <option value="user">user</option>
                {annotationKeys.map((k) => (
                  <option key={k} value={`annotation.${k}`}>
                    annotation {k}
                  </option>
                ))}
              </select>
            </label>
          </div>
          {by && <Groups rows={rows} by={by} filter={filter} />}
          <TraceTable rows={sorted} sort={sort} range={range} />
        </>
      )}
    </div>
  );
}

function Groups({ rows, by, filter }: { rows: TraceSummary[]; by: string; filter: string }) {
  const groups = new Map<string, TraceSummary[]>();
  for (const t of rows) {
    const v = groupValue(t, by);
    groups.set(v, [...(groups.get(v) ?? []), t]);
  }
  const list = [...groups.entries()].sort((a, b) => b[1].length - a[1].length);
  return (
    <table className="grid groups" data-testid="groups">
      <thead>
        <tr>
          <th>{by}</th>
          <th>Traces</th>
          <th>Mean response time</th>
          <th>Faults</th>
          <th>Errors</th>
        </tr>
      </thead>
      <tbody>
        {list.map(([v, ts]) => {
          const f = groupFilter(by, v);
          return (
            <tr key={v} data-testid="group-row">
              <td>
                {f ? (
                  <button className="link" onClick={() => setParams({ filter: and(filter, f), group: null })}>
                    {v}
                  </button>
                ) : (
                  v
                )}
              </td>
              <td>{ts.length}</td>
              <td>{fmtSecs(ts.reduce((a, t) => a + (t.ResponseTime ?? 0), 0) / ts.length)}</td>
              <td>{ts.filter((t) => t.HasFault).length}</td>
              <td>{ts.filter((t) => t.HasError).length}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function TraceTable({ rows, sort, range }: { rows: TraceSummary[]; sort: string; range: string }) {
  const [cursor, setCursor] = useState(0);
  const body = useRef<HTMLTableSectionElement>(null);
  const open = (t: TraceSummary) => navigate(link(`/traces/${t.Id}`, { range }));
  const onKey = (e: KeyboardEvent) => {
    if (e.key === "ArrowDown" || e.key === "j") setCursor((c) => Math.min(rows.length - 1, c + 1));
    else if (e.key === "ArrowUp" || e.key === "k") setCursor((c) => Math.max(0, c - 1));
    else if (e.key === "Enter" && rows[cursor]) open(rows[cursor]);
    else return;
    e.preventDefault();
  };
  useEffect(() => {
    const el = body.current?.children[cursor] as HTMLElement | undefined;
    if (el && body.current?.contains(document.activeElement)) el.focus();
    el?.scrollIntoView?.({ block: "nearest" });
  }, [cursor]);
  return (
    <table className="grid" data-testid="traces-table">
      <thead>
        <tr>
          {COLUMNS.map((c) => {
            const active = sort.replace(/^-/, "") === c.key;
            const desc = sort.startsWith("-");
            return (
              <th key={c.key} aria-sort={active ? (desc ? "descending" : "ascending") : undefined}>
                <button className="link" data-testid={`sort-${c.key}`} onClick={() => setParams({ sort: active && !desc ? `-${c.key}` : c.key })}>
                  {c.title} {active ? (desc ? "▼" : "▲") : ""}
                </button>
              </th>
            );
          })}
        </tr>
      </thead>
      <tbody ref={body} onKeyDown={onKey}>
        {rows.map((t, i) => {
          const href = link(`/traces/${t.Id}`, { range });
          return (
            <tr
              key={t.Id}
              tabIndex={i === cursor ? 0 : -1}
              className={`${statusClass(t)} ${i === cursor ? "cursor" : ""}`}
              data-testid="trace-row"
              data-id={t.Id}
              onClick={() => setCursor(i)}
              onDoubleClick={() => open(t)}
            >
              <td>{fmtTime(t.StartTime)}</td>
              <td className="mono">
                <a href={href} onClick={(e) => onLink(e, href)}>
                  {t.Id}
                </a>
              </td>
              <td>{t.Http?.HttpMethod}</td>
              <td className="url" title={t.Http?.HttpURL}>
                {t.Http?.HttpURL}
              </td>
              <td className={`status ${statusClass(t)}`}>{t.Http?.HttpStatus}</td>
              <td>{fmtSecs(t.ResponseTime)}</td>
              <td>{fmtSecs(t.Duration)}</td>
              <td className="annotations">{annotations(t)}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/// The filter bar: any expression, the API's parse error shown in place, and completion
/// of keywords, service names and annotation keys.
export function FilterBar({
  value,
  error,
  services,
  annotationKeys,
  onApply,
  testid = "filter",
  placeholder = 'filter expression, e.g. service("api") { fault } AND responsetime > 1',
}: {
  value: string;
  error?: unknown;
  services: string[];
  annotationKeys: string[];
  onApply: (f: string) => void;
  testid?: string;
  placeholder?: string;
}) {
  const [text, setText] = useState(value);
  const [caret, setCaret] = useState(0);
  const [open, setOpen] = useState(false);
  // -1: nothing chosen yet, so Enter applies the filter; Tab takes the first.
  const [active, setActive] = useState(-1);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => setText(value), [value]);
  const word = useMemo(() => {
    const before = text.slice(0, caret);
    const m = /("?[A-Za-z0-9_.\-:]*)$/.exec(before);
    return m ? m[1] : "";
  }, [text, caret]);
  const suggestions = useMemo(() => {
    const w = word.replace(/^"/, "").toLowerCase();
    if (!open) return [];
    // Right after `service(` or `edge(…, `: every service name.
    const before = text.slice(0, caret - word.length);
    if (w.length === 0 && /(service|edge)\(\s*$|edge\([^)]*,\s*$/i.test(before))
      return services.slice(0, 12).map((s) => ({ text: JSON.stringify(s), kind: "service" }));
    if (w.length === 0) return [];
    const all = [
      ...KEYWORDS.map((k) => ({ text: k, kind: "keyword" })),
      ...services.map((s) => ({ text: JSON.stringify(s), kind: "service" })),
      ...annotationKeys.map((k) => ({ text: `annotation.${k}`, kind: "annotation" })),
    ];
    return all.filter((s) => s.text.replace(/^"/, "").toLowerCase().startsWith(w) && s.text !== word).slice(0, 12);
  }, [open, word, text, caret, services, annotationKeys]);
  const accept = (s: string) => {
    const startAt = caret - word.length;
    const next = text.slice(0, startAt) + s + text.slice(caret);
    setText(next);
    setOpen(false);
    const pos = startAt + s.length;
    requestAnimationFrame(() => {
      input.current?.focus();
      input.current?.setSelectionRange(pos, pos);
      setCaret(pos);
    });
  };
  const err = error as { type?: string; message?: string } | undefined;
  const parseError = err?.type === "InvalidRequestException" ? err.message : undefined;
  return (
    <div className="filterbar">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setOpen(false);
          onApply(text.trim());
        }}
      >
        <input
          ref={input}
          data-testid={testid}
          className={parseError ? "invalid" : ""}
          value={text}
          placeholder={placeholder}
          spellCheck={false}
          autoComplete="off"
          aria-invalid={!!parseError}
          onChange={(e) => {
            setText(e.target.value);
            setCaret(e.target.selectionStart ?? e.target.value.length);
            setOpen(true);
            setActive(-1);
          }}
          onKeyUp={(e) => setCaret((e.target as HTMLInputElement).selectionStart ?? 0)}
          onBlur={() => setTimeout(() => setOpen(false), 150)}
          onKeyDown={(e) => {
            if (!suggestions.length) return;
            if (e.key === "ArrowDown") setActive((a) => (a + 1) % suggestions.length);
            else if (e.key === "ArrowUp") setActive((a) => (a - 1 + suggestions.length) % suggestions.length);
            else if (e.key === "Tab" || (e.key === "Enter" && active >= 0)) accept(suggestions[Math.max(active, 0)].text);
            else if (e.key === "Escape") setOpen(false);
            else return;
            e.preventDefault();
          }}
        />
        <button type="submit" data-testid={`${testid}-apply`}>
          Apply
        </button>
        {value && (
          <button type="button" onClick={() => onApply("")}>
            Clear
          </button>
        )}
      </form>
      {suggestions.length > 0 && (
        <ul className="completions" data-testid="completions" role="listbox">
          {suggestions.map((s, i) => (
            <li
              key={s.kind + s.text}
              role="option"
              aria-selected={i === active}
              className={i === active ? "active" : ""}
              onMouseDown={(e) => {
                e.preventDefault();
                accept(s.text);
              }}
            >
              {s.text} <small>{s.kind}</small>
            </li>
          ))}
        </ul>
      )}
      {parseError && (
        <div className="filter-error" data-testid="filter-error" role="alert">
          {parseError}
        </div>
      )}
    </div>
  );
}
