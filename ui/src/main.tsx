import { StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { onLink, useLocation } from "./route";
import { MapView } from "./views/MapView";
import { TracesView } from "./views/TracesView";
import { TraceView } from "./views/TraceView";
import { AnalyticsView } from "./views/AnalyticsView";
import { GroupsView } from "./views/GroupsView";
import { SamplingView } from "./views/SamplingView";
import "./styles.css";

const NAV: [string, string][] = [
  ["/map", "Service map"],
  ["/traces", "Traces"],
  ["/analytics", "Analytics"],
  ["/groups", "Groups"],
  ["/sampling", "Sampling"],
];

function useTheme(): [string, () => void] {
  const [theme, setTheme] = useState(
    () => localStorage.getItem("roentgen-theme") ?? (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"),
  );
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem("roentgen-theme", theme);
  }, [theme]);
  return [theme, () => setTheme((t) => (t === "dark" ? "light" : "dark"))];
}

function App() {
  const { path, params } = useLocation();
  const [theme, toggle] = useTheme();
  const trace = /^\/traces\/([^/]+)$/.exec(path);
  const view = path === "/" || path === "/index.html" ? "/map" : path;
  const keep = params.get("range") ? `?range=${encodeURIComponent(params.get("range")!)}` : "";
  return (
    <>
      <header>
        <strong className="brand">Roentgen</strong>
        <nav>
          {NAV.map(([p, label]) => (
            <a key={p} href={p + keep} className={view.startsWith(p) ? "active" : ""} onClick={(e) => onLink(e, p + keep)}>
              {label}
            </a>
          ))}
        </nav>
        <button className="theme" data-testid="theme" onClick={toggle} aria-label="toggle theme">
          {theme === "dark" ? "☀ light" : "☾ dark"}
        </button>
      </header>
      <main>
        {trace ? (
          <TraceView id={decodeURIComponent(trace[1])} />
        ) : view.startsWith("/traces") ? (
          <TracesView />
        ) : view.startsWith("/analytics") ? (
          <AnalyticsView />
        ) : view.startsWith("/groups") ? (
          <GroupsView />
        ) : view.startsWith("/sampling") ? (
          <SamplingView />
        ) : (
          <MapView />
        )}
      </main>
    </>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
