// Every view's state lives in the URL: the path names the view, the query string holds
// its state. Changes push history entries (so the back button works) unless they are
// "replace" changes such as typing.
import { useEffect, useState } from "react";

const listeners = new Set<() => void>();
window.addEventListener("popstate", () => listeners.forEach((l) => l()));

export function navigate(to: string, replace = false) {
  if (to === location.pathname + location.search) return;
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  listeners.forEach((l) => l());
}

export function useLocation(): { path: string; params: URLSearchParams } {
  const [, setTick] = useState(0);
  useEffect(() => {
    const l = () => setTick((t) => t + 1);
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return { path: location.pathname, params: new URLSearchParams(location.search) };
}

/// Set query parameters of the current view (empty string or null removes one).
export function setParams(changes: Record<string, string | null | undefined>, replace = false) {
  const params = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === "") params.delete(k);
    else params.set(k, v);
  }
  const q = params.toString();
  navigate(location.pathname + (q ? "?" + q : ""), replace);
}

export function link(path: string, params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return path + (s ? "?" + s : "");
}

/// A link that navigates inside the app (keeps the page, records history).
export function onLink(e: { preventDefault(): void; metaKey?: boolean; ctrlKey?: boolean; button?: number }, to: string) {
  if (e.metaKey || e.ctrlKey || (e.button ?? 0) !== 0) return;
  e.preventDefault();
  navigate(to);
}
