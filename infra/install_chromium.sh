#!/bin/sh
# Install Chromium and its WebDriver from Debian's packages when either is missing: the
# browser tests (tests/browser/) drive the operator's web view in headless Chromium through
# Selenium. Run by `make bootstrap`.
set -eu
exec sh "$(dirname "$0")/apt_install.sh" "Chromium (browser tests)" "chromium chromedriver" \
    "chromium chromium-driver" \
    "install Chromium and chromium-driver (chromedriver on PATH) for the browser tests"
