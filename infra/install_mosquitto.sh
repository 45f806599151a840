#!/bin/sh
# Install Mosquitto (the MQTT gateway's local broker, infra/mosquitto.py) from Debian's
# packages when mosquitto or mosquitto_passwd is missing. Run by `make bootstrap`.
# The package may register a system service on port 1883; the project never uses it:
# `infra up` runs its own broker on loopback with its own config, port and passwords.
set -eu
exec sh "$(dirname "$0")/apt_install.sh" "Mosquitto" "mosquitto mosquitto_passwd" \
    "mosquitto mosquitto-clients" \
    "install Mosquitto 2.x (with mosquitto_passwd) so that these commands are on PATH, or point ENVIROSTREAM_MQTT_URL at an MQTT broker"
