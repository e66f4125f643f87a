"""An application instrumented with the AWS X-Ray SDK for Python and its default,
centralized sampler: it polls sampling rules and targets from the daemon address's TCP
port as any SDK does, and serves RATE requests per second for SERVICE (one segment
each, begun through the sampler) until STOP_FILE exists or SECONDS pass. Each traced
segment carries the annotation `worker`. At the end it prints one JSON line:

    {"started": epoch, "ended": epoch, "requests": n, "traced": [[start_time, trace_id, rule], ...]}

Run by test_sampling.py, one process per SDK instance (each has its own ClientID).
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", required=True, help="daemon address, host:port (UDP and TCP)")
    ap.add_argument("--service", required=True)
    ap.add_argument("--rate", type=float, default=20.0, help="requests per second")
    ap.add_argument("--seconds", type=float, default=60.0, help="longest run")
    ap.add_argument("--stop-file", default=None, help="stop once this file exists")
    ap.add_argument("--worker", type=int, default=0)
    args = ap.parse_args()

    from aws_xray_sdk.core import AWSXRayRecorder

    recorder = AWSXRayRecorder()
    recorder.configure(
        service=args.service,
        daemon_address=args.address,
        sampling=True,
        context_missing="LOG_ERROR",
        plugins=(),
    )
    assert type(recorder.sampler).__name__ == "DefaultSampler", recorder.sampler

    traced: list[list] = []
    requests = 0
    started = time.time()
    deadline = started + args.seconds
    step = 1.0 / args.rate
    next_at = started
    while time.time() < deadline:
        if args.stop_file and os.path.exists(args.stop_file):
            break
        segment = recorder.begin_segment(args.service)
        requests += 1
        if segment.sampled:
            segment.put_annotation("worker", args.worker)
            rule = segment.aws.get("xray", {}).get("sampling_rule_name")
            traced.append([segment.start_time, segment.trace_id, rule])
        recorder.end_segment()
        next_at += step
        pause = next_at - time.time()
        if pause > 0:
            time.sleep(pause)
    print(
        json.dumps(
            {"started": started, "ended": time.time(), "requests": requests, "traced": traced}
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
