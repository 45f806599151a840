#!/bin/sh
# Install Debian packages when any of the commands they provide is missing; shared by the
# project's installers (infra/prometheus/install.sh, infra/install_mosquitto.sh), run by
# `make bootstrap`. Usage: apt_install.sh "WHAT" "COMMANDS" "PACKAGES" "HINT"
#   WHAT      what is installed, for messages ("Mosquitto")
#   COMMANDS  the commands that must be found (on PATH or in /usr/sbin)
#   PACKAGES  the Debian packages that provide them
#   HINT      what to do instead when apt-get is not available
set -eu
what=$1 commands=$2 packages=$3 hint=$4

found() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

missing=""
for bin in $commands; do
    found "$bin" || missing="$missing $bin"
done
[ -z "$missing" ] && exit 0

echo "installing $what from Debian (missing:$missing)"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing$missing and apt-get is not available on this machine;" >&2
    echo "  $hint, then run make again" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "error: missing$missing; installing needs root and sudo is not available:" >&2
    echo "  as root: apt-get update && apt-get install -y $packages" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086  # one word per package
$SUDO apt-get install -y -qq --no-install-recommends $packages
for bin in $commands; do
    if ! found "$bin"; then
        echo "error: apt-get installed $packages but $bin is still not found" >&2
        exit 1
    fi
done
