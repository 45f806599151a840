#!/bin/sh
# Check the prerequisites a fresh machine must have before `make` can install the rest:
# Python 3.11, Java 17 or newer, Maven. Prints what is missing and how to get it.
py="${1:-python3.11}"
fail=0
if ! command -v "$py" >/dev/null 2>&1; then
  echo "missing: $py (Python 3.11) — install it (e.g. apt-get install python3.11 python3.11-venv) or run make PYTHON=/path/to/python3.11" >&2
  fail=1
elif ! "$py" -c 'import sys, venv; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
  echo "wrong Python: $py is $("$py" --version 2>&1), EnviroStream needs 3.11 with the venv module" >&2
  fail=1
fi
if ! command -v java >/dev/null 2>&1; then
  echo "missing: java — install OpenJDK 17 or newer (apt-get install openjdk-17-jre-headless); Kafka runs on it" >&2
  fail=1
else
  major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
  if [ -z "$major" ] || [ "$major" -lt 17 ]; then
    echo "Java 17 or newer needed for Kafka 4.x, found: $(java -version 2>&1 | head -n 1)" >&2
    fail=1
  fi
fi
if ! command -v mvn >/dev/null 2>&1; then
  echo "missing: mvn — install Maven (apt-get install maven); it fetches Kafka's jars from Maven Central" >&2
  fail=1
fi
exit $fail
