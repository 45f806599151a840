#!/bin/sh
# Install kcat (the Kafka command-line client of docs/devices.md's worked examples, run by
# tests/integration/test_devices_doc.py) from Debian's packages when it is missing. Run by
# `make bootstrap`.
set -eu
exec sh "$(dirname "$0")/apt_install.sh" "kcat" "kcat" "kcat" \
    "install kcat (formerly kafkacat, built with librdkafka) so that it is on PATH"
