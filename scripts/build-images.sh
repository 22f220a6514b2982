#!/usr/bin/env bash
# Builds the example app's image with no registry access:
#  1. localhost/outpost-node-base:<node version>: a root file system holding the
#     host's own node binary and the shared libraries ldd lists, via podman import;
#  2. localhost/sensor-stats:0.1: the example app on top of that base.
# With OUTPOST_REGISTRY=host:port it also pushes $OUTPOST_REGISTRY/sensor-stats:0.1.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
engine=${OUTPOST_ENGINE_CLI:-podman}
node_bin=$(readlink -f "$(command -v node)")
node_ver=$("$node_bin" --version | tr -d v)
base="localhost/outpost-node-base:$node_ver"
app="localhost/sensor-stats:0.1"

if ! "$engine" image exists "$base" 2>/dev/null; then
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/usr/bin" "$root/app" "$root/tmp" "$root/etc"
  chmod 1777 "$root/tmp"
  cp "$node_bin" "$root/usr/bin/node"
  # the loader and every library node links against, at the same paths
  for lib in $(ldd "$node_bin" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  printf 'root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  tar -C "$root" -c . | "$engine" import \
    --change 'ENV PATH=/usr/bin' --change 'WORKDIR /app' \
    - "$base" >/dev/null
  echo "built $base"
fi

ctx=$(mktemp -d)
cp "$here/examples/sensor-stats/server.mjs" "$here/examples/sensor-stats/stats.mjs" "$ctx/"
cat > "$ctx/Containerfile" <<CF
FROM $base
COPY server.mjs stats.mjs /app/
ENV PORT=5000
EXPOSE 5000
USER 65534
LABEL org.opencontainers.image.title=sensor-stats org.opencontainers.image.version=0.1
CMD ["/usr/bin/node", "/app/server.mjs"]
CF
"$engine" build --pull=never -q -t "$app" -f "$ctx/Containerfile" "$ctx" >/dev/null
rm -rf "$ctx"
echo "built $app"

if [ -n "${OUTPOST_REGISTRY:-}" ]; then
  "$engine" tag "$app" "$OUTPOST_REGISTRY/sensor-stats:0.1"
  "$engine" push --tls-verify=false "$OUTPOST_REGISTRY/sensor-stats:0.1" >/dev/null
  echo "pushed $OUTPOST_REGISTRY/sensor-stats:0.1"
fi
