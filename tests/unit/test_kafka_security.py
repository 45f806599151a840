"""Kafka transport security: settings that stop at start, one client-config builder, secrets
that never print, the local broker's secured listener and its generated TLS material."""

from __future__ import annotations

import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from core.errors import ConfigurationError
from core.settings import load_settings, settings_environ
from infra import kafka
from infra.kafka_security import generate_tls, secure_listener_properties
from streams.app import broker_credentials
from topics.kafka_config import aiokafka_kwargs, describe_security, librdkafka_config

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Sup3r-s3cret-kafka-pw"
SASL = {
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_username": "app",
    "kafka_sasl_password": PASSWORD,
}


def _error(**values: object) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({}, **values)
    return caught.value


@pytest.mark.parametrize(
    ("values", "setting", "words"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "SASL_USERNAME", "is required"),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "u"},
            "SASL_PASSWORD",
            "exactly one",
        ),
        ({**SASL, "kafka_sasl_password_file": "/x"}, "SASL_PASSWORD", "both are set"),
        ({"kafka_sasl_username": "u"}, "SASL_USERNAME", "SECURITY_PROTOCOL is PLAINTEXT"),
        ({"kafka_ssl_ca_file": "/ca.pem"}, "SSL_CA_FILE", "no TLS"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_key_file": "/k.pem"},
            "SSL_KEY_FILE",
            "without ENVIROSTREAM_KAFKA_SSL_CERT_FILE",
        ),
        ({"kafka_security_protocol": "TLS"}, "SECURITY_PROTOCOL", "'SASL_SSL'"),
        ({**SASL, "kafka_sasl_mechanism": "GSSAPI"}, "SASL_MECHANISM", "'SCRAM-SHA-512'"),
    ],
)
def test_invalid_combinations_name_the_setting(
    values: dict[str, object], setting: str, words: str
) -> None:
    error = _error(**values)
    assert error.setting == f"ENVIROSTREAM_KAFKA_{setting}"
    assert words in str(error)


def test_the_password_never_prints() -> None:
    settings = load_settings({}, **SASL)
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert PASSWORD not in text
    # A check across settings fails while the password is set: no trace of it either.
    error = _error(**SASL, kafka_ssl_key_file="/k.pem")
    chain = [error, error.__cause__, error.__context__]
    assert all(PASSWORD not in str(e) for e in chain if e is not None)
    assert error.__cause__ is None
    assert PASSWORD not in describe_security(settings)
    assert describe_security(settings) == "SASL_SSL (SCRAM-SHA-512, user 'app')"


def test_a_child_process_gets_the_real_password() -> None:
    settings = load_settings({}, **SASL)
    env = settings_environ(settings, {})
    assert env["ENVIROSTREAM_KAFKA_SASL_PASSWORD"] == PASSWORD
    assert load_settings(env) == settings


def test_librdkafka_config_of_a_secured_cluster(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    settings = load_settings(
        {}, **SASL, kafka_bootstrap="k1:9093,k2:9093", kafka_ssl_ca_file=str(ca)
    )
    assert librdkafka_config(settings) == {
        "bootstrap.servers": "k1:9093,k2:9093",
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "app",
        "sasl.password": PASSWORD,
        "ssl.ca.location": str(ca),
    }
    plain = load_settings({}, kafka_bootstrap="k1:9092")
    assert librdkafka_config(plain) == {"bootstrap.servers": "k1:9092"}


def test_missing_files_stop_naming_their_setting(tmp_path: Path) -> None:
    settings = load_settings(
        {}, **SASL, kafka_bootstrap="k:9093", kafka_ssl_ca_file=str(tmp_path / "no.pem")
    )
    with pytest.raises(ConfigurationError) as caught:
        librdkafka_config(settings)
    assert caught.value.setting == "ENVIROSTREAM_KAFKA_SSL_CA_FILE"
    with pytest.raises(ConfigurationError) as again:
        aiokafka_kwargs(settings)
    assert again.value.setting == "ENVIROSTREAM_KAFKA_SSL_CA_FILE"


def test_the_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "kafka.password"
    secret.write_text(PASSWORD + "\n")
    values = {k: v for k, v in SASL.items() if k != "kafka_sasl_password"}
    settings = load_settings(
        {}, **values, kafka_bootstrap="k:9093", kafka_sasl_password_file=secret
    )
    assert librdkafka_config(settings)["sasl.password"] == PASSWORD
    assert aiokafka_kwargs(settings)["sasl_plain_password"] == PASSWORD
    secret.write_text(PASSWORD + "\nsecond line\n")
    with pytest.raises(ConfigurationError) as caught:
        librdkafka_config(settings)
    assert caught.value.setting == "ENVIROSTREAM_KAFKA_SASL_PASSWORD_FILE"
    assert PASSWORD not in str(caught.value) and "one line" in str(caught.value)
    secret.unlink()
    with pytest.raises(ConfigurationError, match="cannot read"):
        librdkafka_config(settings)


def test_the_local_broker_defaults_to_its_generated_tls(tmp_path: Path) -> None:
    settings = load_settings({}, **SASL, data_dir=tmp_path, kafka_secure_port=29999)
    assert settings.bootstrap_servers == "127.0.0.1:29999"
    tls = generate_tls(tmp_path / "kafka" / "tls")
    conf = librdkafka_config(settings)
    assert conf["ssl.ca.location"] == str(tls.ca)
    assert "ssl.certificate.location" not in conf  # SASL authenticates, not a certificate
    kwargs = aiokafka_kwargs(settings)
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"

    mutual = load_settings({}, kafka_security_protocol="SSL", data_dir=tmp_path)
    conf = librdkafka_config(mutual)
    assert conf["ssl.certificate.location"] == str(tls.client_cert)
    assert conf["ssl.key.location"] == str(tls.client_key)
    assert describe_security(mutual) == "SSL (client certificate)"


def test_faust_gets_the_same_credentials(tmp_path: Path) -> None:
    assert broker_credentials(load_settings({})) is None
    generate_tls(tmp_path / "kafka" / "tls")
    creds = broker_credentials(load_settings({}, **SASL, data_dir=tmp_path))
    assert type(creds).__name__ == "SASLCredentials"
    assert creds.protocol.value == "SASL_SSL"  # type: ignore[union-attr]
    assert creds.mechanism.value == "SCRAM-SHA-512"  # type: ignore[union-attr]
    assert PASSWORD not in repr(creds)
    ssl_only = broker_credentials(
        load_settings({}, kafka_security_protocol="SSL", data_dir=tmp_path)
    )
    assert type(ssl_only).__name__ == "SSLCredentials"


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


def test_the_default_broker_stays_plaintext(tmp_path: Path) -> None:
    props = _properties(kafka.render_server_properties(load_settings({}, data_dir=tmp_path)))
    assert props["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    assert not any(key.startswith("listener.name.client") for key in props)
    assert not (tmp_path / "kafka" / "tls").exists()


def test_a_sasl_ssl_broker_adds_a_secured_listener(tmp_path: Path) -> None:
    settings = load_settings(
        {}, **SASL, data_dir=tmp_path, kafka_port=29001, kafka_controller_port=29002,
        kafka_secure_port=29003,
    )  # fmt: skip
    text = kafka.render_server_properties(settings)
    props = _properties(text)
    assert props["listeners"] == (
        "PLAINTEXT://127.0.0.1:29001,CONTROLLER://127.0.0.1:29002,CLIENT://127.0.0.1:29003"
    )
    assert props["advertised.listeners"].endswith(",CLIENT://127.0.0.1:29003")
    assert props["listener.security.protocol.map"].endswith(",CLIENT:SASL_SSL")
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["listener.name.client.scram-sha-512.sasl.jaas.config"].startswith(
        "org.apache.kafka.common.security.scram.ScramLoginModule required"
    )
    assert props["listener.name.client.ssl.keystore.type"] == "PEM"
    assert Path(props["listener.name.client.ssl.keystore.location"]).is_file()
    assert PASSWORD not in text  # SCRAM users are upserted, never written to the file


def test_a_plain_password_is_escaped_for_the_properties_file(tmp_path: Path) -> None:
    values = {**SASL, "kafka_sasl_mechanism": "PLAIN", "kafka_sasl_password": 'a"b\\cé'}
    settings = load_settings({}, **values, data_dir=tmp_path)
    empty = dict.fromkeys(
        ("listeners", "advertised.listeners", "listener.security.protocol.map"), ""
    )
    plain = secure_listener_properties(settings, empty)
    line = plain["listener.name.client.plain.sasl.jaas.config"]
    # Java reads \\ as \ and \u00e9 as é; JAAS then reads \" as " and \\ as \.
    assert line.endswith('user_app="a\\\\"b\\\\\\\\c\\u00e9";')


def test_a_plain_user_name_must_fit_a_jaas_option(tmp_path: Path) -> None:
    values = {**SASL, "kafka_sasl_mechanism": "PLAIN", "kafka_sasl_username": "a b=c"}
    settings = load_settings({}, **values, data_dir=tmp_path)
    with pytest.raises(ConfigurationError) as caught:
        kafka.render_server_properties(settings)
    assert caught.value.setting == "ENVIROSTREAM_KAFKA_SASL_USERNAME"
    assert "'a b=c'" in str(caught.value)


def test_generated_tls_material(tmp_path: Path) -> None:
    files = generate_tls(tmp_path / "tls", ["kafka", "127.0.0.1"])
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    chain = x509.load_pem_x509_certificates(files.broker_keystore.read_bytes())
    broker = chain[0]
    assert broker.issuer == ca.subject and chain[-1] == ca
    broker.verify_directly_issued_by(ca)
    names = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["kafka"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    x509.load_pem_x509_certificate(files.client_cert.read_bytes()).verify_directly_issued_by(ca)
    assert b"PRIVATE KEY" in files.broker_keystore.read_bytes()
    for key in (files.broker_keystore, files.client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_the_cli_stops_at_start_naming_a_missing_ca(tmp_path: Path) -> None:
    env = settings_environ(load_settings({}, data_dir=tmp_path), {"PATH": "/usr/bin:/bin"})
    env |= {
        "ENVIROSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "ENVIROSTREAM_KAFKA_SASL_USERNAME": "app",
        "ENVIROSTREAM_KAFKA_SASL_PASSWORD": PASSWORD,
        "ENVIROSTREAM_KAFKA_SSL_CA_FILE": str(tmp_path / "missing-ca.pem"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "envirostream", "topics", "describe"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2  # invalid configuration
    assert "invalid configuration: ENVIROSTREAM_KAFKA_SSL_CA_FILE: " in done.stderr
    assert "missing-ca.pem is not a readable file" in done.stderr
    assert PASSWORD not in done.stdout + done.stderr
