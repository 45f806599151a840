"""Avro schemas of the pipeline's records and the codec that reads and writes them."""

from schemas.codec import (
    SCHEMA_NAMES,
    AvroCodec,
    CorruptRecordError,
    DecodeError,
    EncodeError,
    NotAvroError,
    UnknownSchemaError,
    canonical_form,
    fingerprint,
    load_schema,
)

__all__ = [
    "SCHEMA_NAMES",
    "AvroCodec",
    "CorruptRecordError",
    "DecodeError",
    "EncodeError",
    "NotAvroError",
    "UnknownSchemaError",
    "canonical_form",
    "fingerprint",
    "load_schema",
]
