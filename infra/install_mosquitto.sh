#!/bin/sh
# Install Mosquitto (the MQTT gateway's local broker, infra/mosquitto.py) from Debian's
# packages when mosquitto or mosquitto_passwd is missing. Run by `make bootstrap`.
# The package may register a system service on port 1883; the project never uses it:
# `infra up` runs its own broker on loopback with its own config, port and passwords.
set -eu
missing=""
for bin in mosquitto mosquitto_passwd; do
    command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing="$missing $bin"
done
[ -z "$missing" ] && exit 0

echo "installing Mosquitto from Debian (missing:$missing)"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing$missing and apt-get is not available on this machine;" >&2
    echo "  install Mosquitto 2.x (with mosquitto_passwd) so that these commands are on PATH," >&2
    echo "  or point ENVIROSTREAM_MQTT_URL at an MQTT broker, then run make again" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "error: missing$missing; installing needs root and sudo is not available:" >&2
    echo "  as root: apt-get update && apt-get install -y mosquitto mosquitto-clients" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends mosquitto mosquitto-clients
for bin in mosquitto mosquitto_passwd; do
    if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
        echo "error: apt-get installed the packages but $bin is still not found" >&2
        exit 1
    fi
done
