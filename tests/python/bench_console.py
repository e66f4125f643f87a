"""Benchmark of the web console (run by scripts/bench-console; not a test).

Seeds a fresh `roentgen serve` through PutTraceSegments with
  - traces over 50 services (5 layers of 10, each service calling one or two of its two
    callees in the next layer: about 90 edges), and
  - one trace of 50 segments x 100 subsegments = 5,000 subsegments (a document may not
    exceed 64 KiB, so the subsegments are spread over segments, as SDKs do),
then loads each view in headless Chromium several times, on a fresh profile each time,
and prints the median of the marks the console leaves (ui/src/marks.ts):
  map:   navigation start -> service map painted (and -> GetServiceGraph answer in),
  trace: navigation start -> waterfall painted, and GetTraceGraph/BatchGetTraces answer
         in -> painted (the browser's own work on 5,000 subsegments).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import REPO_ROOT, Roentgen  # noqa: E402
from console_lib import launch  # noqa: E402
from xray_testlib import new_id, new_trace_id, xray_client  # noqa: E402

LAYERS, WIDTH = 5, 10


def binary() -> Path:
    if os.environ.get("ROENTGEN_BIN"):
        return Path(os.environ["ROENTGEN_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")
    for profile in ("release", "debug"):
        if (target / profile / "roentgen").exists():
            return target / profile / "roentgen"
    raise SystemExit("no roentgen binary: cargo build --release -p roentgen")


def put(xray, docs: list[dict]) -> None:
    for i in range(0, len(docs), 50):
        r = xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs[i : i + 50]])
        assert not r.get("UnprocessedTraceSegments"), r


def seed_services(xray, traces: int = 300, dense: bool = False) -> int:
    """Traces through a layered graph of LAYERS x WIDTH services."""
    rng = random.Random(7)
    # Each service has two callees in the next layer (the same index, so every service
    # is reached, and a random other): ~90 edges, a service map's usual density.
    callees = [[[i, (i + 1 + rng.randrange(WIDTH - 1)) % WIDTH] for i in range(WIDTH)] for _ in range(LAYERS)]
    now = time.time()
    docs = []
    for n in range(traces):
        tid = new_trace_id(now - 60)
        t = now - 30 - random.random() * 20

        def call(layer: int, i: int, parent: str | None, start: float) -> None:
            seg = {
                "trace_id": tid, "id": new_id(), "name": f"svc-{layer}-{i}",
                "start_time": start, "end_time": start + 0.05 * (LAYERS - layer),
                "http": {"request": {"method": "GET", "url": f"http://svc-{layer}-{i}/"},
                         "response": {"status": 500 if random.random() < 0.03 else 200}},
            }
            if parent:
                seg["parent_id"] = parent
            if seg["http"]["response"]["status"] == 500:
                seg["fault"] = True
            subs = []
            if layer + 1 < LAYERS:
                pick = 1 + (rng.random() < 0.4)
                for j in rng.sample(range(WIDTH), pick) if dense else callees[layer][i][:pick]:
                    sub = {"id": new_id(), "name": f"svc-{layer + 1}-{j}", "namespace": "remote",
                           "start_time": start + 0.001, "end_time": start + 0.04 * (LAYERS - layer)}
                    subs.append(sub)
                    call(layer + 1, j, sub["id"], start + 0.002)
            if subs:
                seg["subsegments"] = subs
            docs.append(seg)

        call(0, n % WIDTH, None, t)
    put(xray, docs)
    return len(docs)


def seed_big_trace(xray, segments: int = 50, per_segment: int = 100) -> str:
    tid = new_trace_id()
    t0 = time.time() - 20
    docs = []
    parent = None
    for s in range(segments):
        start = t0 + s * 0.01
        subs = [
            {"id": new_id(), "name": f"work-{s}-{k}", "start_time": start + k * 0.0001,
             "end_time": start + k * 0.0001 + 0.00008, **({"error": True} if k % 97 == 0 else {})}
            for k in range(per_segment)
        ]
        seg = {"trace_id": tid, "id": new_id(), "name": f"worker-{s % 10}", "start_time": start,
               "end_time": start + 0.5, "subsegments": subs}
        if parent:
            seg["parent_id"] = parent
        parent = subs[0]["id"]
        docs.append(seg)
    put(xray, docs)
    return tid


def measure(playwright, url: str, flag: str, names: list[str], tmp: Path, run: int) -> dict[str, float]:
    ctx = launch(playwright, tmp / f"profile-{flag}-{run}")
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    page.goto(url)
    page.wait_for_function(f"() => document.body.dataset.{flag} === '1'", timeout=60_000)
    shots = os.environ.get("ROENTGEN_SCREENSHOTS_DIR")
    if shots and run == 0:
        page.screenshot(path=str(Path(shots) / f"bench-{flag.removesuffix('Painted')}.png"))
    out = {}
    for n in names:
        out[n] = page.evaluate(
            f"(e => e.entryType === 'measure' ? e.duration : e.startTime)(performance.getEntriesByName('{n}')[0])"
        )
    ctx.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--dense", action="store_true",
                    help="any service may call any of the next layer (~300 edges, not ~90)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        srv = Roentgen(binary(), tmp / "roentgen", udp=False, tcp=False)
        srv.start()
        try:
            xray = xray_client(srv.http_url)
            seeded = seed_services(xray, dense=args.dense)
            tid = seed_big_trace(xray)
            # Wait until the indexer has caught up: all 50 services on the map.
            for _ in range(200):
                g = xray.get_service_graph(StartTime=time.time() - 3600, EndTime=time.time() + 60)
                if len([s for s in g["Services"] if s["Name"].startswith("svc-")]) >= LAYERS * WIDTH:
                    break
                time.sleep(0.1)
            n_services = len(g["Services"])
            others = sorted(s["Name"] for s in g["Services"] if not s["Name"].startswith("svc-"))
            n_edges = sum(len(s.get("Edges", [])) for s in g["Services"])
            print(f"binary: {srv.binary}")
            print(f"seeded {seeded} segment documents over {LAYERS * WIDTH} services and a trace of "
                  f"50 segments x 100 subsegments; the map has {n_services} nodes "
                  f"(the 50, and {', '.join(others)}) and {n_edges} edges")
            with sync_playwright() as p:
                maps = [measure(p, srv.http_url + "/map", "mapPainted", ["map-data", "map-painted", "map-layout"], tmp, r)
                        for r in range(args.runs)]
                traces = [measure(p, f"{srv.http_url}/traces/{tid}", "tracePainted",
                                  ["trace-data", "trace-painted"], tmp, r) for r in range(args.runs)]
        finally:
            srv.stop()

    def med(xs):
        return statistics.median(xs)

    print(f"service map, {n_services} nodes ({args.runs} loads, median):")
    print(f"  navigation start -> map painted:        {med([m['map-painted'] for m in maps]):7.0f} ms  (target < 1000)")
    print(f"  GetServiceGraph answer -> map painted:  {med([m['map-painted'] - m['map-data'] for m in maps]):7.0f} ms")
    print(f"    of which the dagre layout:            {med([m['map-layout'] for m in maps]):7.0f} ms")
    print(f"  navigation start -> GetServiceGraph in: {med([m['map-data'] for m in maps]):7.0f} ms")
    print(f"trace of 5,000 subsegments ({args.runs} loads, median):")
    print(f"  BatchGetTraces answer -> painted:       {med([t['trace-painted'] - t['trace-data'] for t in traces]):7.0f} ms  (target < 500)")
    print(f"  navigation start -> painted:            {med([t['trace-painted'] for t in traces]):7.0f} ms")
    print(f"  navigation start -> BatchGetTraces in:  {med([t['trace-data'] for t in traces]):7.0f} ms")


if __name__ == "__main__":
    main()
