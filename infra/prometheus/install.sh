#!/bin/sh
# Install Prometheus and Alertmanager from Debian's packages when any of their binaries is
# missing (prometheus, promtool, prometheus-alertmanager, amtool). Run by `make bootstrap`.
# The packages may register system services; the project never uses them: tests and
# `infra/prometheus_local.py` run their own processes with their own configs and ports.
set -eu
exec sh "$(dirname "$0")/../apt_install.sh" "Prometheus and Alertmanager" \
    "prometheus promtool prometheus-alertmanager amtool" \
    "prometheus prometheus-alertmanager" \
    "install Prometheus (>= 2.37, with promtool) and Alertmanager (with amtool) so that these commands are on PATH"
