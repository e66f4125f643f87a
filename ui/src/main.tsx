import { StrictMode, useCallback, useEffect, useState, type FormEvent } from "react";
import { getSession, signIn, signOut, SIGN_IN_NEEDED, type SessionInfo } from "./api";
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

/// The remembered theme, else the system's; set on the page before the first render
/// (React applies effects after painting), so the page never shows in the other theme.
const INITIAL_THEME =
  localStorage.getItem("roentgen-theme") ?? (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
document.documentElement.dataset.theme = INITIAL_THEME;

function useTheme(): [string, () => void] {
  const [theme, setTheme] = useState(INITIAL_THEME);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem("roentgen-theme", theme);
  }, [theme]);
  return [theme, () => setTheme((t) => (t === "dark" ? "light" : "dark"))];
}

/// The session under `serve --auth`: undefined until the server has answered.
function useSession(): [SessionInfo | undefined, (s: SessionInfo) => void, () => void] {
  const [session, setSession] = useState<SessionInfo>();
  const refresh = useCallback(() => {
    getSession().then(setSession, () => setSession({ AuthRequired: false, SignedIn: false }));
  }, []);
  useEffect(() => {
    refresh();
    window.addEventListener(SIGN_IN_NEEDED, refresh);
    return () => window.removeEventListener(SIGN_IN_NEEDED, refresh);
  }, [refresh]);
  return [session, setSession, refresh];
}

function SignIn({ onSignedIn }: { onSignedIn: (s: SessionInfo) => void }) {
  const [keyId, setKeyId] = useState("");
  const [secret, setSecret] = useState("");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    signIn(keyId.trim(), secret).then(
      (s) => {
        setSecret("");
        onSignedIn(s);
      },
      (err: Error) => {
        setBusy(false);
        setError(err.message);
      },
    );
  };
  return (
    <form className="signin" data-testid="signin-form" onSubmit={submit}>
      <h1>Sign in to Roentgen</h1>
      <p>This server takes access keys (<code>--auth</code>). Sign in with one of yours; the console then sees what its tenant and role allow.</p>
      <label>
        Access key id
        <input data-testid="signin-key" autoComplete="username" value={keyId} onChange={(e) => setKeyId(e.target.value)} required autoFocus />
      </label>
      <label>
        Secret access key
        <input data-testid="signin-secret" type="password" autoComplete="current-password" value={secret} onChange={(e) => setSecret(e.target.value)} required />
      </label>
      {error && (
        <div className="state error" role="alert" data-testid="signin-error">
          {error}
        </div>
      )}
      <button type="submit" data-testid="signin-submit" disabled={busy}>
        {busy ? "Signing in…" : "Sign in"}
      </button>
    </form>
  );
}

function App() {
  const { path, params } = useLocation();
  const [theme, toggle] = useTheme();
  const [session, setSession, refreshSession] = useSession();
  if (!session) return null;
  const mustSignIn = session.AuthRequired && !session.SignedIn;
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
        {session.SignedIn && (
          <span className="whoami" data-testid="whoami" title={`role ${session.Role}`}>
            {session.AccessKeyId} · {session.Tenant}
            <button className="link" data-testid="signout" onClick={() => signOut().finally(refreshSession)}>
              Sign out
            </button>
          </span>
        )}
        <button className="theme" data-testid="theme" onClick={toggle} aria-label="toggle theme">
          {theme === "dark" ? "☀ light" : "☾ dark"}
        </button>
      </header>
      <main>
        {mustSignIn ? (
          <SignIn onSignedIn={setSession} />
        ) : trace ? (
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
