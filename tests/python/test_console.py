"""The web console (issue 7) in real headless Chromium, against the real binary, with
traces sent by the real X-Ray SDK for Python: the map shows the expected nodes and
edges, a filter narrows the table to the expected rows, a bad filter shows the API's
error, a trace opens with all its segments, and a group and a sampling rule round-trip
through the UI (checked with boto3)."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError

from console_lib import CHROMIUM, launch, screenshot
from test_sdk_roundtrip import emit_checkout_trace, emit_simple_trace
from xray_testlib import (
    PollTimeout,
    all_summaries,
    assert_aws_error,
    batch_get,
    http_call,
    poll,
    utc,
    wait_for_segments,
    walk_entities,
)

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def playwright():
    assert os.path.exists(CHROMIUM), (
        f"{CHROMIUM} is missing: scripts/test installs Debian's chromium (apt-get install chromium)"
    )
    with playwright_api.sync_playwright() as p:
        yield p


@pytest.fixture
def page(playwright, tmp_path):
    ctx = launch(playwright, tmp_path / "chromium-profile")
    ctx.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # A Content-Security-Policy violation is reported on the console, not thrown.
    page.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    try:
        yield page
    finally:
        ctx.close()
    assert not errors, f"the console threw in the browser: {errors}"


@pytest.fixture
def checkout(server, xray):
    t = emit_checkout_trace(server.udp_addr)
    wait_for_segments(xray, t["trace_id"], [t["ids"]["web"], t["ids"]["orders"], t["ids"]["payments"]])
    return t


def wait_graph(xray, names: set[str]) -> list[dict]:
    """Poll GetServiceGraph (the last hour) until every name in `names` is a node."""

    def check():
        now = time.time()
        g = xray.get_service_graph(StartTime=utc(now - 3600), EndTime=utc(now + 60))
        got = {s.get("Name") for s in g["Services"]}
        return g["Services"] if names <= got else None

    return poll(check, f"service graph nodes {sorted(names)}", timeout=15)


def wait_summaries(xray, since: float, ids: set[str], **kw) -> list[dict]:
    def check():
        got, _ = all_summaries(xray, since, **kw)
        return got if ids <= {s["Id"] for s in got} else None

    return poll(check, f"summaries of {sorted(ids)}", timeout=15)


# ------------------------------------------------------------------ serving


def test_console_is_served_without_shadowing_the_api(server):
    res = http_call(server.http_url, "GET", "/")
    assert res.status == 200
    assert res.headers["content-type"].startswith("text/html")
    html = res.body.decode()
    scripts = re.findall(r'src="(/assets/[^"]+\.js)"', html)
    assert scripts, (
        "GET / is not the built console (was ui/dist built before cargo? scripts/test does it):\n"
        + html[:500]
    )
    asset = http_call(server.http_url, "GET", scripts[0])
    assert asset.status == 200
    assert "javascript" in asset.headers["content-type"]
    assert "immutable" in asset.headers["cache-control"]
    assert res.headers["cache-control"] == "no-cache"
    assert "frame-ancestors 'none'" in res.headers["content-security-policy"]
    # Deep links get the app's shell, so a shared link opens its view.
    deep = http_call(server.http_url, "GET", "/traces/1-5f000000-000000000000000000000000?range=1h")
    assert deep.status == 200 and deep.body == res.body
    assert http_call(server.http_url, "GET", "/assets/no-such-file.js").status == 404
    # API routes and unknown paths are untouched.
    assert_aws_error(http_call(server.http_url, "POST", "/", "{}"), {404}, {"UnknownOperationException"})
    assert_aws_error(http_call(server.http_url, "GET", "/nope"), {404}, {"UnknownOperationException"})
    assert http_call(server.http_url, "GET", "/healthz").status == 200


# ------------------------------------------------------------------ service map


def test_map_shows_the_services_and_calls_of_the_traces(server, xray, checkout, page, tmp_path):
    services = wait_graph(xray, {"web", "orders", "payments"})
    by_ref = {s["ReferenceId"]: s["Name"] for s in services}
    want_nodes = {s["Name"] for s in services}
    want_edges = {(s["Name"], by_ref[e["ReferenceId"]]) for s in services for e in s.get("Edges", [])}
    # The checkout trace's own calls are among them.
    assert {("client", "web"), ("web", "orders"), ("orders", "payments")} <= want_edges

    page.goto(server.http_url + "/")
    nodes = page.get_by_test_id("map-node")
    expect(nodes).to_have_count(len(want_nodes))
    got_nodes = {n.get_attribute("data-name") for n in nodes.all()}
    assert got_nodes == want_nodes
    edges = page.get_by_test_id("map-edge")
    expect(edges).to_have_count(len(want_edges))
    got_edges = {(e.get_attribute("data-source"), e.get_attribute("data-target")) for e in edges.all()}
    assert got_edges == want_edges
    # Left to right: each edge's target is drawn right of its source.
    boxes = {n.get_attribute("data-name"): n.bounding_box() for n in nodes.all()}
    for a, b in want_edges:
        assert boxes[a]["x"] < boxes[b]["x"], f"{a} -> {b} is not left to right"
    # The root is red-ringed: payments faulted.
    assert page.locator('[data-testid=map-node][data-name="payments"] [data-share=fault]').count() == 1
    screenshot(page, "service-map", tmp_path)

    # Clicking a node opens its panel with statistics and a link to its traces.
    page.locator('[data-testid=map-node][data-name="payments"]').click()
    panel = page.get_by_test_id("map-panel")
    expect(panel).to_contain_text("payments")
    expect(panel.get_by_test_id("stats")).to_contain_text("fault (5xx)1")
    assert "sel=n" in page.url  # the selection is in the URL
    screenshot(page, "service-map-panel", tmp_path)
    panel.get_by_test_id("view-traces").click()
    expect(page).to_have_url(re.compile(r"/traces\?"))
    expect(page.get_by_test_id("filter")).to_have_value('service("payments")')
    expect(page.get_by_test_id("trace-row")).to_have_count(1)
    assert page.get_by_test_id("trace-row").get_attribute("data-id") == checkout["trace_id"]
    # Back to the map with its selection, by the browser's back button.
    page.go_back()
    expect(page.get_by_test_id("map-panel")).to_contain_text("payments")


def test_empty_map_says_how_to_send_a_first_trace(server, page):
    page.goto(server.http_url + "/map")
    expect(page.get_by_test_id("empty")).to_contain_text("send a first trace")


# ------------------------------------------------------------------ traces


def test_filter_narrows_the_table_and_a_bad_filter_shows_its_error(server, xray, page, tmp_path):
    since = time.time()
    gold = {emit_simple_trace(server.udp_addr, "shop", 200, tier="gold") for _ in range(3)}
    silver = {emit_simple_trace(server.udp_addr, "shop", 200, tier="silver") for _ in range(2)}
    broken = {emit_simple_trace(server.udp_addr, "billing", 500, tier="gold")}
    wait_summaries(xray, since, gold | silver | broken)

    page.goto(server.http_url + "/traces")
    rows = page.get_by_test_id("trace-row")
    expect(rows).to_have_count(6)

    # Typed into the filter bar: the table narrows to what the API matches.
    box = page.get_by_test_id("filter")
    box.fill('annotation.tier = "gold"')
    box.press("Enter")
    expect(rows).to_have_count(4)
    assert {r.get_attribute("data-id") for r in rows.all()} == gold | broken
    assert "filter=annotation.tier" in page.url

    box.fill('annotation.tier = "gold" AND service("shop")')
    page.get_by_test_id("filter-apply").click()
    expect(rows).to_have_count(3)
    assert {r.get_attribute("data-id") for r in rows.all()} == gold
    screenshot(page, "traces", tmp_path)

    # The API's parse error, in place, word for word.
    bad = 'service("shop") AND AND'
    with pytest.raises(ClientError) as info:
        xray.get_trace_summaries(StartTime=utc(since - 60), EndTime=utc(time.time() + 60), FilterExpression=bad)
    message = info.value.response["Error"]["Message"]
    box.fill(bad)
    box.press("Enter")
    expect(page.get_by_test_id("filter-error")).to_have_text(message)
    screenshot(page, "traces-bad-filter", tmp_path)

    # Back: the previous filter and its rows again.
    page.go_back()
    expect(page.get_by_test_id("filter-error")).to_have_count(0)
    expect(rows).to_have_count(3)

    # Grouping by an annotation counts each value.
    page.goto(server.http_url + "/traces?group=annotation.tier")
    groups = page.get_by_test_id("group-row")
    expect(groups).to_have_count(2)
    texts = sorted(g.inner_text() for g in groups.all())
    assert texts[0].startswith("gold\t4") and texts[1].startswith("silver\t2"), texts

    # Sorting by status puts the fault first when descending.
    page.goto(server.http_url + "/traces?sort=-status")
    expect(rows).to_have_count(6)
    assert rows.first.get_attribute("data-id") in broken


def test_completion_offers_services_and_annotation_keys(server, xray, page):
    since = time.time()
    ids = {emit_simple_trace(server.udp_addr, "inventory", 200, warehouse="w1")}
    wait_summaries(xray, since, ids)
    wait_graph(xray, {"inventory"})
    page.goto(server.http_url + "/traces")
    expect(page.get_by_test_id("trace-row")).to_have_count(1)
    box = page.get_by_test_id("filter")
    box.press_sequentially("service(\"inv")
    expect(page.get_by_test_id("completions")).to_contain_text('"inventory"')
    box.press("Tab")
    expect(box).to_have_value('service("inventory"')
    box.fill("")
    box.press_sequentially("annotation.wa")
    expect(page.get_by_test_id("completions")).to_contain_text("annotation.warehouse")
    box.fill("")
    box.press_sequentially("respon")
    expect(page.get_by_test_id("completions")).to_contain_text("responsetime")


# ------------------------------------------------------------------ trace detail


def test_trace_opens_with_all_its_segments(server, xray, checkout, page, tmp_path):
    trace_id = checkout["trace_id"]
    traces, _ = batch_get(xray, [trace_id])
    docs = [json.loads(s["Document"]) for s in traces[trace_id]]
    entities = [e for d in docs for e in walk_entities(d)]
    names = {e["name"] for e in entities}

    page.goto(f"{server.http_url}/traces/{trace_id}")
    count = page.get_by_test_id("segment-count")
    expect(count).to_have_attribute("data-segments", str(len(docs)))
    expect(count).to_have_attribute("data-subsegments", str(len(entities) - len(docs)))
    rows = page.get_by_test_id("wf-row")
    expect(rows).to_have_count(len(entities))  # small enough that every row is drawn
    assert {r.get_attribute("data-name") for r in rows.all()} == names
    # Markers for fault, error and throttle.
    for flag in ("fault", "error", "throttle"):
        assert page.get_by_test_id(f"marker-{flag}").count() >= 1, flag
    # The trace's own map.
    expect(page.get_by_test_id("trace-map").get_by_test_id("map-node").first).to_be_visible()
    screenshot(page, "trace", tmp_path)

    # The failing subsegment's exception with its stack frames.
    page.locator('[data-testid=wf-row][data-name="charge-card"]').click()
    page.get_by_test_id("tab-exceptions").click()
    exc = page.get_by_test_id("exceptions")
    expect(exc).to_contain_text("PaymentDeclined")
    expect(exc).to_contain_text("card declined: insufficient funds")
    assert exc.locator(".stack li").count() >= 1
    screenshot(page, "trace-exception", tmp_path)
    # SQL of the database call, and the raw document.
    page.locator('[data-testid=wf-row][data-name="payments-db@db.internal"]').click()
    page.get_by_test_id("tab-sql").click()
    expect(page.get_by_test_id("tab-body")).to_contain_text("SELECT balance FROM accounts")

    # Collapse hides the subtree, expand brings it back.
    web_row = page.locator('[data-testid=wf-row][data-name="web"]')
    web_row.locator("button.twisty").click()
    expect(rows).to_have_count(1)
    web_row.locator("button.twisty").click()
    expect(rows).to_have_count(len(entities))
    # Search.
    page.get_by_test_id("waterfall-search").fill("pay")
    expect(page.get_by_test_id("search-count")).to_contain_text(
        f"{sum('pay' in e['name'] for e in entities)} matches"
    )
    # The dark theme.
    page.get_by_test_id("waterfall-search").fill("")
    page.locator('[data-testid=wf-row][data-name="DynamoDB"]').click()
    page.get_by_test_id("tab-aws").click()
    page.get_by_test_id("theme").click()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    expect(page.get_by_test_id("tab-body")).to_contain_text("PutItem")
    screenshot(page, "trace-dark", tmp_path)


def test_unknown_trace_says_so(server, page):
    page.goto(f"{server.http_url}/traces/1-5f000000-000000000000000000000000")
    expect(page.get_by_test_id("empty")).to_contain_text("not in the store")


# ------------------------------------------------------------------ groups and rules


def test_group_round_trips_through_the_console(server, xray, page, tmp_path):
    page.goto(server.http_url + "/groups")
    expect(page.get_by_test_id("empty")).to_be_visible()
    page.get_by_test_id("new-group").click()
    page.get_by_test_id("group-name").fill("checkout-faults")
    # A bad filter is refused by the API and its error shown.
    page.get_by_test_id("group-filter-input").fill('service("checkout") AND AND')
    page.get_by_test_id("group-save").click()
    expect(page.get_by_test_id("group-form").get_by_test_id("error")).to_contain_text("InvalidRequestException")
    with pytest.raises(ClientError):
        xray.get_group(GroupName="checkout-faults")
    page.get_by_test_id("group-filter-input").fill('service("checkout") { fault }')
    page.get_by_test_id("group-save").click()
    row = page.locator('[data-testid=group-row][data-name="checkout-faults"]')
    expect(row.get_by_test_id("group-filter")).to_have_text('service("checkout") { fault }')
    assert xray.get_group(GroupName="checkout-faults")["Group"]["FilterExpression"] == 'service("checkout") { fault }'
    screenshot(page, "groups", tmp_path)

    # Edit.
    row.get_by_test_id("edit-group").click()
    page.get_by_test_id("group-filter-input").fill('service("checkout") { error }')
    page.get_by_test_id("group-save").click()
    expect(row.get_by_test_id("group-filter")).to_have_text('service("checkout") { error }')
    assert xray.get_group(GroupName="checkout-faults")["Group"]["FilterExpression"] == 'service("checkout") { error }'

    # The map offers it.
    page.goto(server.http_url + "/map")
    expect(page.get_by_test_id("group").locator("option", has_text="checkout-faults")).to_have_count(1)

    # Delete.
    page.goto(server.http_url + "/groups")
    page.once("dialog", lambda d: d.accept())
    page.locator('[data-testid=group-row][data-name="checkout-faults"]').get_by_test_id("delete-group").click()
    expect(page.get_by_test_id("empty")).to_be_visible()
    with pytest.raises(ClientError):
        xray.get_group(GroupName="checkout-faults")


def test_sampling_rule_round_trips_through_the_console(server, xray, page, tmp_path):
    page.goto(server.http_url + "/sampling")
    expect(page.locator('[data-testid=rule-row][data-name="Default"]')).to_be_visible()
    page.get_by_test_id("new-rule").click()
    page.get_by_test_id("rule-RuleName").fill("checkout-slow")
    page.get_by_test_id("rule-Priority").fill("10")
    page.get_by_test_id("rule-FixedRate").fill("1.5")  # out of range: the API says so
    page.get_by_test_id("rule-ServiceName").fill("checkout")
    page.get_by_test_id("rule-URLPath").fill("/api/orders/*")
    page.get_by_test_id("rule-save").click()
    expect(page.get_by_test_id("rule-form").get_by_test_id("error")).to_be_visible()
    names = {r["SamplingRule"]["RuleName"] for r in xray.get_sampling_rules()["SamplingRuleRecords"]}
    assert "checkout-slow" not in names
    page.get_by_test_id("rule-FixedRate").fill("0.1")
    page.get_by_test_id("rule-save").click()
    row = page.locator('[data-testid=rule-row][data-name="checkout-slow"]')
    expect(row.get_by_test_id("rule-rate")).to_have_text("10.0 %")
    rules = {r["SamplingRule"]["RuleName"]: r["SamplingRule"] for r in xray.get_sampling_rules()["SamplingRuleRecords"]}
    got = rules["checkout-slow"]
    assert (got["Priority"], got["FixedRate"], got["ServiceName"], got["URLPath"]) == (10, 0.1, "checkout", "/api/orders/*")
    screenshot(page, "sampling", tmp_path)

    row.get_by_test_id("edit-rule").click()
    page.get_by_test_id("rule-FixedRate").fill("0.25")
    page.get_by_test_id("rule-save").click()
    expect(row.get_by_test_id("rule-rate")).to_have_text("25.0 %")
    rules = {r["SamplingRule"]["RuleName"]: r["SamplingRule"] for r in xray.get_sampling_rules()["SamplingRuleRecords"]}
    assert rules["checkout-slow"]["FixedRate"] == 0.25

    page.once("dialog", lambda d: d.accept())
    row.get_by_test_id("delete-rule").click()
    expect(row).to_have_count(0)
    names = {r["SamplingRule"]["RuleName"] for r in xray.get_sampling_rules()["SamplingRuleRecords"]}
    assert names == {"Default"}


# ------------------------------------------------------------------ analytics, themes


def test_analytics_compares_two_filters(server, xray, page, tmp_path):
    since = time.time()
    ok = {emit_simple_trace(server.udp_addr, "api", 200) for _ in range(4)}
    bad = {emit_simple_trace(server.udp_addr, "api", 500) for _ in range(2)}
    wait_summaries(xray, since, ok | bad)
    page.goto(server.http_url + "/analytics?a=ok&b=fault")
    summaries = page.get_by_test_id("analytics-summary")
    expect(summaries.nth(0)).to_contain_text("4 traces")
    expect(summaries.nth(1)).to_contain_text("2 traces")
    expect(page.get_by_test_id("analytics-histogram")).to_be_visible()
    expect(page.get_by_test_id("timeseries").locator("polyline")).to_have_count(2)
    screenshot(page, "analytics", tmp_path)


def test_theme_toggle_is_remembered(server, page):
    theme = "document.documentElement.dataset.theme"
    page.goto(server.http_url + "/map")
    # The theme is set before the console first renders, not after.
    before = page.evaluate(theme)
    assert before in ("light", "dark")
    page.get_by_test_id("theme").click()
    after = "dark" if before == "light" else "light"
    page.wait_for_function(f"{theme} === {after!r}")
    page.reload()
    assert page.evaluate(theme) == after


# ------------------------------------------------------------------ brush, keyboard, scale


def emit_timed_trace(udp_addr, service: str, seconds: float) -> str:
    """One SDK trace of `service` whose response time is `seconds`."""
    from xray_testlib import make_recorder

    rec = make_recorder(service, udp_addr)
    seg = rec.begin_segment(service)
    seg.start_time = time.time() - 5.0
    seg.put_http_meta("method", "GET")
    seg.put_http_meta("url", f"http://{service}.internal/")
    seg.put_http_meta("status", 200)
    rec.end_segment(seg.start_time + seconds)
    return seg.trace_id


def test_histogram_range_selects_the_traces_in_it(server, xray, page):
    since = time.time()
    times = {emit_timed_trace(server.udp_addr, "timed", s): s for s in (0.1, 0.2, 0.3, 1.2, 1.6, 2.0)}
    wait_summaries(xray, since, set(times))
    wait_graph(xray, {"timed"})
    page.goto(server.http_url + "/map")
    page.locator('[data-testid=map-node][data-name="timed"]').click()
    hist = page.get_by_test_id("map-panel").get_by_test_id("histogram")
    box = hist.bounding_box()
    # Drag across the right half of the chart.
    y = box["y"] + box["height"] * 0.5
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, y, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.99, y, steps=5)
    page.mouse.up()
    expect(hist.get_by_test_id("brush")).to_have_count(1)
    page.get_by_test_id("view-traces").click()
    box_value = page.get_by_test_id("filter")
    expect(box_value).to_have_value(re.compile(r"responsetime >= "))
    m = re.fullmatch(
        r'service\("timed"\) \{ responsetime >= ([\d.]+) AND responsetime <= ([\d.]+) \}',
        box_value.input_value(),
    )
    assert m, box_value.input_value()
    lo, hi = float(m.group(1)), float(m.group(2))
    want = {t for t, s in times.items() if lo <= s <= hi}
    assert want and want != set(times), (lo, hi)
    rows = page.get_by_test_id("trace-row")
    expect(rows).to_have_count(len(want))
    assert {r.get_attribute("data-id") for r in rows.all()} == want


def test_keyboard_opens_a_trace_from_the_table(server, xray, page):
    since = time.time()
    ids = {emit_simple_trace(server.udp_addr, "kb", 200) for _ in range(3)}
    wait_summaries(xray, since, ids)
    page.goto(server.http_url + "/traces?sort=id")
    rows = page.get_by_test_id("trace-row")
    expect(rows).to_have_count(3)
    rows.first.click()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/traces/" + re.escape(sorted(ids)[2])))
    expect(page.get_by_test_id("segment-count")).to_have_attribute("data-segments", "1")
    page.go_back()
    expect(rows).to_have_count(3)


def test_keyboard_moves_through_groups_and_rules_and_opens_one(server, xray, page):
    """The groups and sampling-rule lists take the same keys as the traces table:
    ArrowDown/j, ArrowUp/k, Enter opens the row's editor."""
    for name in ["alpha", "beta", "gamma"]:
        xray.create_group(GroupName=name, FilterExpression="fault")
    page.goto(server.http_url + "/groups")
    rows = page.get_by_test_id("group-row")
    expect(rows).to_have_count(3)
    rows.first.locator("td").first.click()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/groups\?.*edit=beta"))
    for name, priority in [("r-one", 10), ("r-two", 20)]:
        xray.create_sampling_rule(SamplingRule={
            "RuleName": name, "ResourceARN": "*", "Priority": priority, "FixedRate": 0.1,
            "ReservoirSize": 1, "ServiceName": "*", "ServiceType": "*", "Host": "*",
            "HTTPMethod": "*", "URLPath": "*", "Version": 1,
        })
    page.goto(server.http_url + "/sampling")
    rules = page.get_by_test_id("rule-row")
    expect(rules).to_have_count(3)  # and Default
    rules.first.locator("td").first.click()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/sampling\?.*edit=r-two"))


def test_waterfall_draws_only_visible_rows_of_a_large_trace(server, xray, page):
    """2,000 subsegments over 20 documents (a document is at most 64 KiB): every one is
    counted, only a screenful is in the DOM, and scrolling reaches the last."""
    from xray_testlib import new_id, new_trace_id

    tid = new_trace_id()
    t0 = time.time() - 10
    docs, parent = [], None
    for s in range(20):
        start = t0 + s * 0.01
        subs = [
            {"id": new_id(), "name": f"step-{s}-{k}", "start_time": start + k * 1e-4, "end_time": start + k * 1e-4 + 5e-5}
            for k in range(100)
        ]
        seg = {"trace_id": tid, "id": new_id(), "name": f"worker-{s % 4}", "start_time": start, "end_time": start + 0.2, "subsegments": subs}
        if parent:
            seg["parent_id"] = parent
        parent = subs[-1]["id"]
        docs.append(seg)
    for i in range(0, len(docs), 5):
        r = xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs[i : i + 5]])
        assert not r.get("UnprocessedTraceSegments"), r
    wait_for_segments(xray, tid, [d["id"] for d in docs])

    page.goto(f"{server.http_url}/traces/{tid}")
    count = page.get_by_test_id("segment-count")
    expect(count).to_have_attribute("data-segments", "20")
    expect(count).to_have_attribute("data-subsegments", "2000")
    drawn = page.get_by_test_id("wf-row").count()
    assert 0 < drawn < 200, f"{drawn} rows in the DOM for 2,020"
    page.get_by_test_id("waterfall-scroll").evaluate("el => el.scrollTop = el.scrollHeight")
    expect(page.locator('[data-testid=wf-row][data-name="step-19-99"]')).to_have_count(1)


def test_time_range_is_in_the_url_and_narrows_the_table(server, xray, page):
    import datetime as dt

    from xray_testlib import new_id, new_trace_id

    since = time.time()
    recent = emit_simple_trace(server.udp_addr, "clock", 200)
    old_start = time.time() - 7200
    old = new_trace_id(old_start)
    doc = {"trace_id": old, "id": new_id(), "name": "clock", "start_time": old_start, "end_time": old_start + 0.1}
    assert not xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(doc)]).get("UnprocessedTraceSegments")
    wait_summaries(xray, since, {recent})
    wait_summaries(xray, old_start, {old})

    page.goto(server.http_url + "/traces")
    rows = page.get_by_test_id("trace-row")
    expect(rows).to_have_count(1)
    page.get_by_test_id("range").select_option("3h")
    expect(page).to_have_url(re.compile(r"range=3h"))
    expect(rows).to_have_count(2)

    local = lambda t: dt.datetime.fromtimestamp(t).strftime("%Y-%m-%dT%H:%M:%S")  # noqa: E731
    page.get_by_test_id("range").select_option("custom")
    page.get_by_test_id("range-from").fill(local(old_start - 60))
    page.get_by_test_id("range-to").fill(local(old_start + 60))
    page.get_by_test_id("range-apply").click()
    expect(page).to_have_url(re.compile(r"range=\d+-\d+"))
    expect(rows).to_have_count(1)
    assert rows.first.get_attribute("data-id") == old
    page.go_back()
    expect(rows).to_have_count(2)


def test_edge_panel_links_to_the_traces_through_that_edge(server, xray, checkout, page):
    other = emit_simple_trace(server.udp_addr, "web", 200)
    wait_summaries(xray, checkout["t0"], {checkout["trace_id"], other})
    wait_graph(xray, {"web", "orders"})
    page.goto(server.http_url + "/map")
    page.locator('[data-testid=map-edge][data-source="web"][data-target="orders"] .edge-label').click()
    panel = page.get_by_test_id("map-panel")
    expect(panel).to_contain_text("web → orders")
    expect(panel.get_by_test_id("stats")).to_contain_text("requests1")
    assert "sel=e" in page.url
    panel.get_by_test_id("view-traces").click()
    expect(page.get_by_test_id("filter")).to_have_value('edge("web", "orders")')
    rows = page.get_by_test_id("trace-row")
    expect(rows).to_have_count(1)
    assert rows.first.get_attribute("data-id") == checkout["trace_id"]


def test_completion_lists_services_after_service_paren(server, xray, page):
    since = time.time()
    ids = {emit_simple_trace(server.udp_addr, "alpha", 200), emit_simple_trace(server.udp_addr, "beta", 200)}
    wait_summaries(xray, since, ids)
    wait_graph(xray, {"alpha", "beta"})
    page.goto(server.http_url + "/traces")
    expect(page.get_by_test_id("trace-row")).to_have_count(2)
    box = page.get_by_test_id("filter")
    box.press_sequentially("service(")
    completions = page.get_by_test_id("completions")
    expect(completions).to_contain_text('"alpha"')
    expect(completions).to_contain_text('"beta"')
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    box.press_sequentially(")")
    box.press("Enter")
    rows = page.get_by_test_id("trace-row")
    expect(rows).to_have_count(1)
    expect(box).to_have_value(re.compile(r'service\("(alpha|beta)"\)'))
    name = re.search(r'"(\w+)"', box.input_value()).group(1)
    assert rows.first.get_attribute("data-id") in ids
    assert find_name(xray, rows.first.get_attribute("data-id")) == name


def find_name(xray, trace_id: str) -> str:
    traces, _ = batch_get(xray, [trace_id])
    return json.loads(traces[trace_id][0]["Document"])["name"]


def test_raw_tab_shows_the_stored_document(server, xray, checkout, page):
    trace_id = checkout["trace_id"]
    page.goto(f"{server.http_url}/traces/{trace_id}")
    page.locator('[data-testid=wf-row].segment[data-name="payments"]').click()
    page.get_by_test_id("tab-raw").click()
    shown = json.loads(page.get_by_test_id("raw").inner_text())
    assert shown == checkout["docs"]["payments"]


def test_group_selector_draws_the_map_of_the_group(server, xray, checkout, page):
    other = emit_simple_trace(server.udp_addr, "standalone", 200)
    wait_summaries(xray, checkout["t0"], {checkout["trace_id"], other})
    wait_graph(xray, {"web", "standalone"})
    xray.create_group(GroupName="payments-path", FilterExpression='service("payments")')
    page.goto(server.http_url + "/map")
    nodes = page.get_by_test_id("map-node")
    expect(page.locator('[data-testid=map-node][data-name="standalone"]')).to_have_count(1)
    page.get_by_test_id("group").select_option("payments-path")
    expect(page).to_have_url(re.compile(r"group=payments-path"))
    expect(page.locator('[data-testid=map-node][data-name="standalone"]')).to_have_count(0)
    now = time.time()
    g = xray.get_service_graph(StartTime=utc(now - 3600), EndTime=utc(now + 60), GroupName="payments-path")
    want = {s["Name"] for s in g["Services"]}
    assert "payments" in want and "standalone" not in want
    expect(nodes).to_have_count(len(want))
    assert {n.get_attribute("data-name") for n in nodes.all()} == want


def test_auto_refresh_draws_new_services_without_a_reload(server, xray, page):
    page.goto(server.http_url + "/map?refresh=10s")
    expect(page.get_by_test_id("empty")).to_be_visible()
    page.evaluate("window.__sameDocument = true")
    since = time.time()
    tid = emit_simple_trace(server.udp_addr, "latecomer", 200)
    wait_summaries(xray, since, {tid})
    wait_graph(xray, {"latecomer"})
    expect(page.locator('[data-testid=map-node][data-name="latecomer"]')).to_have_count(1, timeout=25_000)
    assert page.evaluate("window.__sameDocument") is True  # no reload happened


@pytest.fixture
def secured(make_server, tmp_path):
    from test_auth import KEY_FILE

    path = tmp_path / "keys.toml"
    path.write_text(KEY_FILE)
    return make_server(extra_args=["--auth", str(path)])


def session_call(srv, path: str, token: str | None, console_header: bool = True):
    headers = {"Cookie": f"roentgen_session={token}"} if token else {}
    if console_header:
        headers["X-Roentgen-Console"] = "1"
    t = int(time.time())
    body = json.dumps({"StartTime": t - 3600, "EndTime": t + 60})
    return http_call(srv.http_url, "POST", path, body, headers)


def test_console_signs_in_sees_only_its_tenant_and_signs_out(secured, page, tmp_path):
    """Under --auth the console asks for an access key, then shows what that key's
    tenant holds and nothing else. Its cookie is HttpOnly and SameSite=Strict, is
    refused without the console's header (CSRF), and stops working on sign-out."""
    from test_auth import KEYS, put
    from xray_testlib import segment_doc

    mine, theirs = segment_doc(name="team-b-shop"), segment_doc(name="default-shop")
    put(secured.http_url, KEYS["b_writer"], mine)
    put(secured.http_url, KEYS["writer"], theirs)

    # Without a session the API refuses the console's calls, as any unsigned call.
    assert_aws_error(session_call(secured, "/TraceSummaries", None), [403], ["MissingAuthenticationTokenException"])

    page.goto(secured.http_url + "/traces")
    form = page.get_by_test_id("signin-form")
    expect(form).to_be_visible()
    assert page.get_by_test_id("trace-row").count() == 0
    screenshot(page, "sign-in", tmp_path)

    # A wrong secret is refused, and says so without telling whether the id exists.
    page.get_by_test_id("signin-key").fill(KEYS["b_reader"][0])
    page.get_by_test_id("signin-secret").fill("not-the-secret")
    page.get_by_test_id("signin-submit").click()
    expect(page.get_by_test_id("signin-error")).to_contain_text("is wrong")
    expect(form).to_be_visible()

    page.get_by_test_id("signin-secret").fill(KEYS["b_reader"][1])
    page.get_by_test_id("signin-submit").click()
    expect(form).to_have_count(0)
    expect(page.get_by_test_id("whoami")).to_contain_text("AKIDBREADER · team-b")
    rows = page.get_by_test_id("trace-row")
    expect(rows).to_have_count(1)
    assert rows.first.get_attribute("data-id") == mine["trace_id"]

    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["roentgen_session"]
    assert session["httpOnly"] is True and session["sameSite"] == "Strict", session
    assert page.evaluate("document.cookie") == "", "a script can read the session cookie"
    token = session["value"]

    # The cookie works for the API only with the console's header (a forged cross-site
    # form or fetch cannot add it), and only for its own tenant and role.
    refused = session_call(secured, "/TraceSummaries", token, console_header=False)
    assert_aws_error(refused, [403], ["AccessDeniedException"])
    ok = session_call(secured, "/TraceSummaries", token)
    assert ok.status == 200, ok.body
    assert {s["Id"] for s in json.loads(ok.body)["TraceSummaries"]} == {mine["trace_id"]}
    assert_aws_error(session_call(secured, "/CreateGroup", token), [403], ["AccessDeniedException"])

    page.get_by_test_id("signout").click()
    expect(form).to_be_visible()
    assert "roentgen_session" not in {c["name"] for c in page.context.cookies()}
    # The token is dead on the server too, not only forgotten by the browser.
    assert_aws_error(session_call(secured, "/TraceSummaries", token), [403], ["ExpiredTokenException"])
    page.reload()
    expect(form).to_be_visible()


def test_console_without_auth_needs_no_sign_in(server, page):
    info = http_call(server.http_url, "GET", "/console/session")
    assert info.status == 200 and json.loads(info.body) == {"AuthRequired": False, "SignedIn": False}
    page.goto(server.http_url + "/map")
    expect(page.get_by_test_id("empty")).to_be_visible()
    assert page.get_by_test_id("signin-form").count() == 0
    assert page.get_by_test_id("signout").count() == 0
