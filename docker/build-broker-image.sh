#!/usr/bin/env bash
# Build the reference broker image `mcp-harness-broker:test` without pulling anything:
# docker/rootfs.py assembles a minimal root filesystem from the current Python environment
# (interpreter, standard library, the broker's installed dependencies, the shared libraries
# ldd lists) and `docker import` turns it into an image whose command is `python -m broker`.
# The `--broker docker:` target test and CI use it; it builds in well under a minute.
#
# Usage: docker/build-broker-image.sh [TAG]     (default tag mcp-harness-broker:test)
# Environment: PYTHON (default: python3 on PATH, i.e. the active virtual environment).
set -euo pipefail
cd "$(dirname "$0")/.."

tag="${1:-mcp-harness-broker:test}"
python="${PYTHON:-python3}"
root="$(mktemp -d)/rootfs"
trap 'rm -rf "$(dirname "$root")"' EXIT

"$python" docker/rootfs.py "$root"

tar -C "$root" --numeric-owner -cf - . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change 'ENV PYTHONPATH=/app/site-packages' \
  --change 'ENV PYTHONUNBUFFERED=1' \
  --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
  --change 'WORKDIR /tmp' \
  --change 'CMD ["python", "-m", "broker"]' \
  --message "mcp-harness reference broker (docker/build-broker-image.sh)" \
  - "$tag" >/dev/null
# smoke test: the interpreter and the broker's imports work inside the image
docker run --rm --network none "$tag" python -m broker --help >/dev/null
echo "built $tag ($(du -sh "$root" | cut -f1) root filesystem)"
