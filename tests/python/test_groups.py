"""Groups through boto3: create, get, list, update, delete, persisted across a restart,
and used by `group.name` in filter expressions."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from test_sdk_roundtrip import emit_simple_trace
from xray_testlib import all_summaries, wait_for_summary, xray_client


def invalid(call, **kwargs) -> str:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    err = info.value.response
    assert err["Error"]["Code"] == "InvalidRequestException", err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400, err
    return err["Error"]["Message"]


def test_group_lifecycle_and_restart(server, xray):
    created = xray.create_group(
        GroupName="slow", FilterExpression="responsetime > 0.5",
        InsightsConfiguration={"InsightsEnabled": False, "NotificationsEnabled": False},
        Tags=[{"Key": "team", "Value": "payments"}],
    )["Group"]
    arn = created["GroupARN"]
    assert created["GroupName"] == "slow" and created["FilterExpression"] == "responsetime > 0.5"
    assert arn.startswith("arn:aws:xray:") and ":group/slow/" in arn
    assert xray.get_group(GroupName="slow")["Group"] == created
    assert xray.get_group(GroupARN=arn)["Group"] == created

    names = [g["GroupName"] for g in xray.get_groups()["Groups"]]
    assert names == ["Default", "slow"]

    assert "already exists" in invalid(xray.create_group, GroupName="slow")
    message = invalid(xray.create_group, GroupName="broken", FilterExpression="responsetime >")
    assert "column" in message, message
    invalid(xray.get_group, GroupName="nope")
    invalid(xray.delete_group, GroupName="Default")

    updated = xray.update_group(GroupName="slow", FilterExpression="fault")["Group"]
    assert updated["FilterExpression"] == "fault" and updated["GroupARN"] == arn

    server.restart()
    xray = xray_client(server.http_url)
    assert xray.get_group(GroupName="slow")["Group"]["FilterExpression"] == "fault"

    xray.delete_group(GroupName="slow")
    invalid(xray.get_group, GroupName="slow")
    assert [g["GroupName"] for g in xray.get_groups()["Groups"]] == ["Default"]


def test_group_name_in_filter_expressions(server, xray):
    since = time.time() - 5
    failing = emit_simple_trace(server.udp_addr, "checkout", status=503)
    fine = emit_simple_trace(server.udp_addr, "checkout", status=200)
    wait_for_summary(xray, since, failing)
    wait_for_summary(xray, since, fine)
    xray.create_group(GroupName="broken-checkout", FilterExpression='service("checkout") AND fault')

    found, _ = all_summaries(xray, since, FilterExpression='group.name = "broken-checkout"')
    assert {s["Id"] for s in found} == {failing}
    found, _ = all_summaries(xray, since, FilterExpression='group.name = "Default"')
    assert {failing, fine} <= {s["Id"] for s in found}
    found, _ = all_summaries(xray, since, FilterExpression='group.name = "no-such-group"')
    assert found == []


def test_service_graph_of_a_group(server, xray):
    """GetServiceGraph with GroupName counts only the traces the group's filter matches."""
    from test_sdk_roundtrip import emit_checkout_trace

    t = emit_checkout_trace(server.udp_addr)
    plain = emit_simple_trace(server.udp_addr, "inventory", status=200)
    wait_for_summary(xray, t["t0"], t["trace_id"])
    wait_for_summary(xray, t["t0"], plain)
    xray.create_group(GroupName="faults", FilterExpression="fault")
    window = {"StartTime": t["t0"] - 120, "EndTime": time.time() + 60}

    def graph(**kw):
        services = xray.get_service_graph(**window, **kw)["Services"]
        by_id = {s["ReferenceId"]: s["Name"] for s in services}
        edges = {
            (s["Name"], by_id[e["ReferenceId"]]): e["SummaryStatistics"]["TotalCount"]
            for s in services for e in s["Edges"]
        }
        return {s["Name"] for s in services}, edges

    all_nodes, all_edges = graph()
    assert "inventory" in all_nodes and ("client", "inventory") in all_edges
    nodes, edges = graph(GroupName="faults")
    assert "inventory" not in nodes and ("client", "inventory") not in edges
    # The group's graph of the checkout equals the checkout's part of the whole graph.
    assert edges == {k: v for k, v in all_edges.items() if k != ("client", "inventory")}
    assert graph(GroupName="Default") == (all_nodes, all_edges)
    invalid(xray.get_service_graph, **window, GroupName="no-such-group")
