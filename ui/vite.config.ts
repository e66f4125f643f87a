import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The console is served by `roentgen serve` at `/`; hashed files go under /assets/,
// which the server caches as immutable. `npm run dev` proxies the API to a local server.
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false, chunkSizeWarningLimit: 1024 },
  server: {
    proxy: Object.fromEntries(
      [
        "/TraceSummaries", "/Traces", "/ServiceGraph", "/TraceGraph", "/TimeSeriesServiceStatistics",
        "/CreateGroup", "/GetGroup", "/Groups", "/UpdateGroup", "/DeleteGroup",
        "/CreateSamplingRule", "/UpdateSamplingRule", "/DeleteSamplingRule", "/GetSamplingRules",
      ].map((p) => [p, "http://127.0.0.1:2772"]),
    ),
  },
});
