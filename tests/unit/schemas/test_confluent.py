"""Confluent wire format against a tiny in-test Schema Registry (the two endpoints), and
the registry's auth and TLS settings."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigurationError, ServiceUnavailableError
from core.secrets import SecretUrl
from core.settings import load_settings
from core.settings_registry import registry_client_config
from schemas import AvroCodec, SchemaRegistryClient, SchemaRegistryError, UnknownSchemaError
from tests.unit.schemas.samples import READING, SAMPLES

NAME = "UniversalSensorReading"


@dataclass
class FakeRegistry:
    url: str
    schemas: dict[int, str] = field(default_factory=dict)
    subjects: dict[str, list[int]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)  # each request's Authorization


def _handler(state: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # /subjects/{subject}/versions
            path = self.path.split("?", 1)[0]
            state.calls.append(f"POST {path}")
            state.auth.append(self.headers.get("Authorization"))
            parts = path.strip("/").split("/")
            if len(parts) != 3 or parts[0] != "subjects" or parts[2] != "versions":
                self._send(404, {"error_code": 404, "message": "HTTP 404 Not Found"})
                return
            text = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["schema"]
            sid = next((i for i, t in state.schemas.items() if t == text), None)
            if sid is None:
                sid = 100 + len(state.schemas)
                state.schemas[sid] = text
            state.subjects.setdefault(parts[1], []).append(sid)
            self._send(200, {"id": sid})

        def do_GET(self) -> None:  # /schemas/ids/{id}
            path = self.path.split("?", 1)[0]
            state.calls.append(f"GET {path}")
            state.auth.append(self.headers.get("Authorization"))
            sid = int(path.rsplit("/", 1)[1])
            if sid not in state.schemas:
                self._send(404, {"error_code": 40403, "message": "Schema not found"})
                return
            self._send(200, {"schema": state.schemas[sid]})

    return Handler


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    state = FakeRegistry(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("name", list(SAMPLES))
def test_confluent_round_trip_through_a_registry(registry: FakeRegistry, name: str) -> None:
    data = AvroCodec(registry_url=registry.url).encode(name, SAMPLES[name])
    assert data[0] == 0
    schema_id = int.from_bytes(data[1:5], "big")
    assert registry.subjects == {f"{name}-value": [schema_id]}
    # A separate reader fetches the writer schema by id.
    assert AvroCodec(registry_url=registry.url).decode(data, name) == SAMPLES[name]


def test_registry_calls_are_cached(registry: FakeRegistry) -> None:
    writer = AvroCodec(registry_url=registry.url)
    values = writer.encode_batch(NAME, [READING] * 50) + writer.encode_batch(NAME, [READING])
    reader = AvroCodec(registry_url=registry.url)
    assert reader.decode_batch(NAME, values) == [READING] * 51
    assert reader.decode_batch(NAME, values[:3]) == [READING] * 3
    sid = int.from_bytes(values[0][1:5], "big")
    assert registry.calls == [f"POST /subjects/{NAME}-value/versions", f"GET /schemas/ids/{sid}"]


def test_an_unknown_schema_id_is_an_error_in_place(registry: FakeRegistry) -> None:
    codec = AvroCodec(registry_url=registry.url)
    good = codec.encode(NAME, READING)
    unknown = b"\x00" + (999).to_bytes(4, "big") + good[5:]
    out = codec.decode_batch(NAME, [good, unknown, unknown, good])
    assert out[0] == out[3] == READING
    assert isinstance(out[1], UnknownSchemaError) and out[1].reason == "unknown_schema_id"
    assert registry.calls.count("GET /schemas/ids/999") == 1  # once per batch


def test_single_object_records_still_decode_with_a_registry(registry: FakeRegistry) -> None:
    data = AvroCodec().encode(NAME, READING)
    assert AvroCodec(registry_url=registry.url).decode(data, NAME) == READING


def test_a_schema_id_of_another_record_type_is_refused(registry: FakeRegistry) -> None:
    codec = AvroCodec(registry_url=registry.url)
    alert = codec.encode("Alert", SAMPLES["Alert"])
    with pytest.raises(UnknownSchemaError, match="written as Alert"):
        codec.decode(alert, NAME)


def test_an_unreachable_registry_is_raised_not_dead_lettered(registry: FakeRegistry) -> None:
    data = AvroCodec(registry_url=registry.url).encode(NAME, READING)
    down = AvroCodec(registry_url=_closed_port_url())
    with pytest.raises(ServiceUnavailableError, match="ENVIROSTREAM_SCHEMA_REGISTRY_URL"):
        down.encode(NAME, READING)
    with pytest.raises(ServiceUnavailableError, match="schema registry"):
        down.decode_batch(NAME, [data])


def test_a_registry_refusal_names_the_status(registry: FakeRegistry) -> None:
    codec = AvroCodec(registry_url=registry.url + "/nowhere")
    with pytest.raises(SchemaRegistryError, match="answered 404") as info:
        codec.encode(NAME, READING)
    assert info.value.status == 404


def _with_credentials(url: str, user: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{user}:{password}@{rest}"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_credentials_in_the_url_are_sent_and_never_printed(
    registry: FakeRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = _with_credentials(registry.url, "svc", "s3cr3tPW")
    settings = load_settings({"ENVIROSTREAM_SCHEMA_REGISTRY_URL": url})
    client = SchemaRegistryClient.from_settings(settings)
    assert client is not None
    AvroCodec(registry=client).encode(NAME, READING)
    assert registry.auth == [_basic("svc", "s3cr3tPW")]
    shown = [repr(settings), str(settings), str(settings.schema_registry_url), client.url]
    assert all("s3cr3tPW" not in text for text in shown), shown
    assert "svc:***@" in str(settings.schema_registry_url)
    assert "s3cr3tPW" not in caplog.text


def test_a_basic_auth_file_is_sent(registry: FakeRegistry, tmp_path: Path) -> None:
    secret = tmp_path / "registry.auth"
    secret.write_text("svc:fr0mF1le\n")
    env = {
        "ENVIROSTREAM_SCHEMA_REGISTRY_URL": registry.url,
        "ENVIROSTREAM_SCHEMA_REGISTRY_BASIC_AUTH_FILE": str(secret),
    }
    client = SchemaRegistryClient.from_settings(load_settings(env))
    assert client is not None
    data = AvroCodec(registry=client).encode(NAME, READING)
    assert AvroCodec(registry=client).decode(data, NAME) == READING
    assert registry.auth == [_basic("svc", "fr0mF1le")]  # decode used the cache


def test_a_registry_refusal_does_not_print_the_password(registry: FakeRegistry) -> None:
    url = _with_credentials(registry.url, "svc", "s3cr3tPW") + "/nowhere"
    codec = AvroCodec(registry_url=SecretUrl(url))
    with pytest.raises(SchemaRegistryError, match="answered 404") as info:
        codec.encode(NAME, READING)
    assert "s3cr3tPW" not in str(info.value) and "svc:***@" in str(info.value)


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"SCHEMA_REGISTRY_BASIC_AUTH_FILE": "{tmp}/missing"}, "_BASIC_AUTH_FILE"),
        ({"SCHEMA_REGISTRY_BASIC_AUTH_FILE": "{tmp}/nocolon"}, "_BASIC_AUTH_FILE"),
        ({"SCHEMA_REGISTRY_CA_FILE": "{tmp}/missing.pem"}, "_CA_FILE"),
        ({"SCHEMA_REGISTRY_CERT_FILE": "{tmp}/missing.pem"}, "_CERT_FILE"),
    ],
)
def test_bad_auth_or_tls_files_name_their_setting(
    env: dict[str, str], setting: str, tmp_path: Path
) -> None:
    (tmp_path / "nocolon").write_text("justapassword\n")
    values = {"ENVIROSTREAM_SCHEMA_REGISTRY_URL": "https://sr.example:8081"}
    values.update({f"ENVIROSTREAM_{k}": v.format(tmp=tmp_path) for k, v in env.items()})
    with pytest.raises(ConfigurationError, match=f"ENVIROSTREAM_SCHEMA_REGISTRY{setting}") as e:
        SchemaRegistryClient.from_settings(load_settings(values))
    assert "justapassword" not in str(e.value)


def test_tls_files_reach_the_client_config(tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("-----BEGIN CERTIFICATE-----\n")
    settings = load_settings(
        {
            "ENVIROSTREAM_SCHEMA_REGISTRY_URL": "https://sr.example:8081",
            "ENVIROSTREAM_SCHEMA_REGISTRY_CA_FILE": str(tmp_path / "ca.pem"),
            "ENVIROSTREAM_SCHEMA_REGISTRY_CERT_FILE": str(tmp_path / "cert.pem"),
            "ENVIROSTREAM_SCHEMA_REGISTRY_KEY_FILE": str(tmp_path / "key.pem"),
        }
    )
    assert registry_client_config(settings) == {
        "url": "https://sr.example:8081",
        "ssl.ca.location": str(tmp_path / "ca.pem"),
        "ssl.certificate.location": str(tmp_path / "cert.pem"),
        "ssl.key.location": str(tmp_path / "key.pem"),
    }


def test_a_key_without_a_cert_is_refused() -> None:
    env = {
        "ENVIROSTREAM_SCHEMA_REGISTRY_URL": "https://sr.example:8081",
        "ENVIROSTREAM_SCHEMA_REGISTRY_KEY_FILE": "/etc/key.pem",
    }
    with pytest.raises(ConfigurationError, match="SCHEMA_REGISTRY_KEY_FILE is set without"):
        load_settings(env)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test registry")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "registry.pem", directory / "registry.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_https_registry_is_trusted_through_the_ca_file(tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    state = FakeRegistry(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state.url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        untrusted = {"ENVIROSTREAM_SCHEMA_REGISTRY_URL": state.url}
        client = SchemaRegistryClient.from_settings(load_settings(untrusted))
        with pytest.raises(ServiceUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
            AvroCodec(registry=client).encode(NAME, READING)
        trusted = {**untrusted, "ENVIROSTREAM_SCHEMA_REGISTRY_CA_FILE": str(cert_file)}
        client = SchemaRegistryClient.from_settings(load_settings(trusted))
        data = AvroCodec(registry=client).encode(NAME, READING)
        assert AvroCodec(registry=client).decode(data, NAME) == READING
        assert state.calls == [f"POST /subjects/{NAME}-value/versions"]
    finally:
        server.shutdown()
        server.server_close()
