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
