"""`roentgen serve --tls-cert --tls-key`: the HTTP and OTLP/gRPC listeners speak TLS
(rustls), checked with boto3, the OpenTelemetry gRPC exporter and `roentgen daemon`
against a certificate authority made here; SIGHUP reads the files again."""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import json
import signal
import socket
import ssl
import time
import urllib.request

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from test_daemon_sigv4 import finish, start_daemon
from xray_testlib import poll, segment_doc, udp_datagram, window, xray_client


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class Pki:
    """A CA and server certificates for 127.0.0.1 that it signs."""

    def __init__(self, root):
        self.root = root
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        self.ca = (
            x509.CertificateBuilder()
            .subject_name(_name("roentgen test CA"))
            .issuer_name(_name("roentgen test CA"))
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_path = root / "ca.pem"
        self.ca_path.write_bytes(self.ca.public_bytes(serialization.Encoding.PEM))
        self.cert_path = root / "cert.pem"
        self.key_path = root / "key.pem"

    def issue(self) -> int:
        """Writes a fresh server certificate and key; returns its serial number."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("127.0.0.1"))
            .issuer_name(self.ca.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return serial


@pytest.fixture
def pki(tmp_path):
    p = Pki(tmp_path)
    p.issue()
    return p


@pytest.fixture
def tls_server(make_server, pki):
    srv = make_server(
        extra_args=["--tls-cert", str(pki.cert_path), "--tls-key", str(pki.key_path)],
        start=False,
    )
    srv.use_tls(pki.ca_path)
    srv.start()
    return srv


def served_serial(port: int, ca_path) -> int:
    ctx = ssl.create_default_context(cafile=str(ca_path))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            der = s.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).serial_number


def client(srv, pki):
    import boto3

    return boto3.client(
        "xray", endpoint_url=srv.http_url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test", verify=str(pki.ca_path),
    )


def test_boto3_over_tls(tls_server, pki):
    t0 = time.time()
    xray = client(tls_server, pki)
    doc = segment_doc(name="over-tls")
    assert xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(doc)])[
        "UnprocessedTraceSegments"] == []
    poll(lambda: doc["trace_id"] in {s["Id"] for s in xray.get_trace_summaries(
        **window(t0))["TraceSummaries"]}, what="read back over TLS")
    # A client that does not trust the CA refuses the server; plain HTTP gets no answer.
    untrusting = xray_client(tls_server.http_url)
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED|SSL"):
        untrusting.get_trace_summaries(**window(t0))
    plain = tls_server.http_url.replace("https://", "http://")
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(f"{plain}/healthz", timeout=5)


def test_otlp_grpc_over_tls(tls_server, pki):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    t0 = time.time()
    creds = grpc.ssl_channel_credentials(root_certificates=pki.ca_path.read_bytes())
    exporter = OTLPSpanExporter(
        endpoint=f"https://{tls_server.otlp_grpc_addr}", credentials=creds, timeout=10
    )
    provider = TracerProvider(
        resource=Resource.create({"service.name": "grpc-tls"}),
        id_generator=AwsXRayIdGenerator(),
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("op"):
        pass
    provider.shutdown()
    xray = client(tls_server, pki)
    poll(lambda: any(
        s.get("EntryPoint", {}).get("Name") == "grpc-tls"
        for s in xray.get_trace_summaries(**window(t0))["TraceSummaries"]
    ), what="span sent over gRPC+TLS stored")


@pytest.mark.allow_server_errors("SIGHUP: kept the current TLS certificate")
def test_sighup_reloads_the_certificate(tls_server, pki):
    port = tls_server.http_port
    first = served_serial(port, pki.ca_path)
    second = pki.issue()
    assert second != first
    tls_server.proc.send_signal(signal.SIGHUP)
    poll(lambda: served_serial(port, pki.ca_path) == second, what="new certificate served")
    # A broken pair is refused and the current one stays.
    pki.key_path.write_text("not a key\n")
    tls_server.proc.send_signal(signal.SIGHUP)
    poll(lambda: "kept the current TLS certificate" in tls_server.log_text(), what="reload refused")
    assert served_serial(port, pki.ca_path) == second
    assert tls_server.proc.poll() is None


def test_daemon_verifies_the_endpoint_certificate(tls_server, pki, roentgen_bin, tmp_path):
    """The daemon refuses a certificate it cannot verify (counted, nothing sent), trusts
    a private CA named by SSL_CERT_FILE, and skips the check when its config says
    NoVerifySSL, as the X-Ray daemon's does."""
    t0 = time.time()
    creds = {"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret"}
    xray = client(tls_server, pki)

    def stored(name):
        return any(s.get("EntryPoint", {}).get("Name") == name
                   for s in xray.get_trace_summaries(**window(t0))["TraceSummaries"])

    strict = tmp_path / "strict"
    strict.mkdir()
    proc, addr = start_daemon(roentgen_bin, strict, tls_server.http_url, creds, [])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(udp_datagram(segment_doc(name="strict-daemon")), addr)
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    log = (strict / "daemon.log").read_text()
    assert not stored("strict-daemon")
    assert "certificate" in log.lower(), log

    # A private CA is trusted the way the X-Ray daemon (Go) and OpenSSL trust one: named
    # by SSL_CERT_FILE, beside the built-in roots; the certificate is still checked.
    private = tmp_path / "private-ca"
    private.mkdir()
    proc, addr = start_daemon(roentgen_bin, private, tls_server.http_url,
                              {**creds, "SSL_CERT_FILE": str(pki.ca_path)}, [])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(udp_datagram(segment_doc(name="private-ca-daemon")), addr)
        poll(lambda: stored("private-ca-daemon"), what="SSL_CERT_FILE daemon delivers",
             timeout=20)
    finally:
        finish(proc, private)

    lax = tmp_path / "lax"
    lax.mkdir()
    cfg = lax / "cfg.yaml"
    cfg.write_text("Version: 2\nNoVerifySSL: true\n")
    proc, addr = start_daemon(roentgen_bin, lax, tls_server.http_url, creds, ["-c", str(cfg)])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(udp_datagram(segment_doc(name="lax-daemon")), addr)
        poll(lambda: stored("lax-daemon"), what="NoVerifySSL daemon delivers", timeout=20)
    finally:
        finish(proc, lax)
