#!/bin/sh
# Install Prometheus and Alertmanager from Debian's packages when any of their binaries is
# missing (prometheus, promtool, prometheus-alertmanager, amtool). Run by `make bootstrap`.
# The packages may register system services; the project never uses them: tests and
# `infra/prometheus_local.py` run their own processes with their own configs and ports.
set -eu
missing=""
for bin in prometheus promtool prometheus-alertmanager amtool; do
    command -v "$bin" >/dev/null 2>&1 || missing="$missing $bin"
done
[ -z "$missing" ] && exit 0

echo "installing Prometheus and Alertmanager from Debian (missing:$missing)"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing$missing and apt-get is not available on this machine;" >&2
    echo "  install Prometheus (>= 2.37, with promtool) and Alertmanager (with amtool)" >&2
    echo "  so that these commands are on PATH, then run make again" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "error: missing$missing; installing needs root and sudo is not available:" >&2
    echo "  as root: apt-get update && apt-get install -y prometheus prometheus-alertmanager" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager
for bin in prometheus promtool prometheus-alertmanager amtool; do
    if ! command -v "$bin" >/dev/null 2>&1; then
        echo "error: apt-get installed the packages but $bin is still not on PATH" >&2
        exit 1
    fi
done
