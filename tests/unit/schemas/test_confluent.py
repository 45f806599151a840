"""Confluent wire format against a tiny in-test Schema Registry (the two endpoints)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.errors import ServiceUnavailableError
from schemas import AvroCodec, SchemaRegistryError, UnknownSchemaError
from tests.unit.schemas.samples import READING, SAMPLES

NAME = "UniversalSensorReading"


@dataclass
class FakeRegistry:
    url: str
    schemas: dict[int, str] = field(default_factory=dict)
    subjects: dict[str, list[int]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)


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
            state.calls.append(f"POST {self.path}")
            parts = self.path.strip("/").split("/")
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
            state.calls.append(f"GET {self.path}")
            sid = int(self.path.rsplit("/", 1)[1])
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
