"""Avro schemas of the pipeline's records and the codec that reads and writes them."""

from schemas._registry import SchemaRegistryClient
from schemas.codec import (
    SCHEMA_NAMES,
    AvroCodec,
    CorruptRecordError,
    DecodeError,
    EncodeError,
    NotAvroError,
    SchemaRegistryError,
    UnknownSchemaError,
    canonical_form,
    fingerprint,
    history_schemas,
    load_schema,
)
from schemas.measure import measure_codec

__all__ = [
    "SCHEMA_NAMES",
    "AvroCodec",
    "CorruptRecordError",
    "DecodeError",
    "EncodeError",
    "NotAvroError",
    "SchemaRegistryClient",
    "SchemaRegistryError",
    "UnknownSchemaError",
    "canonical_form",
    "fingerprint",
    "history_schemas",
    "load_schema",
    "measure_codec",
]
