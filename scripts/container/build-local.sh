#!/usr/bin/env bash
# Build the Continuity image without a registry and run `continuity demo` inside it (Debian/Ubuntu, as root).
#   1. a Debian bookworm rootfs with mmdebstrap, from this machine's own apt sources;
#   2. `podman import` makes it the base image;
#   3. `podman build --isolation=chroot --build-arg BASE=...` builds the Dockerfile on it;
#   4. `buildah run --isolation chroot` runs, in a container of the image: `continuity doctor`; the watchdog in the
#      foreground for 12 s (its log and the worker's on stdout, the image's health check, a clean exit on SIGTERM);
#      then `continuity demo` (simulator, QR, messages, kill -9 and recovery), whose exit code is the script's.
# Chroot isolation because `podman run` needs cgroups some sandboxes lack; the docker format keeps HEALTHCHECK (OCI
# has none). Not part of the test suite (it takes minutes).
# Environment: IMAGE (default localhost/continuity:local), WORK (default build/container), KEEP_ROOTFS=1 to reuse
# the rootfs tarball of an earlier run.
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE=${IMAGE:-localhost/continuity:local}
BASE_IMAGE=${BASE_IMAGE:-localhost/continuity-base:bookworm}
WORK=${WORK:-build/container}
SOURCES=${SOURCES:-/etc/apt/sources.list.d/debian.sources}
mkdir -p "$WORK"
say() { printf '\n==> %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

missing=()
for tool in mmdebstrap podman buildah; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

rootfs="$WORK/rootfs.tar"
if [ "${KEEP_ROOTFS:-0}" = 1 ] && [ -s "$rootfs" ]; then
    say "reusing $rootfs"
else
    say "mmdebstrap: bookworm minbase rootfs from $SOURCES"
    started=$SECONDS
    mmdebstrap --quiet --variant=minbase bookworm "$rootfs" - < "$SOURCES"
    echo "rootfs: $(du -h "$rootfs" | cut -f1) in $((SECONDS - started)) s"
fi

say "podman import $rootfs as $BASE_IMAGE"
podman import --quiet "$rootfs" "$BASE_IMAGE" >/dev/null

# A machine whose HTTPS goes through a proxy with its own CA (pip's `cert` setting) lends that CA bundle to pip
# inside the build, by bind mounts that never enter the image.
mounts=()
cert=${PIP_CERT:-$(python3 -m pip config list 2>/dev/null | sed -n "s/^global\.cert='\(.*\)'$/\1/p" | head -n 1)}
if [ -n "$cert" ] && [ -f "$cert" ]; then
    printf '[global]\ncert = /run/host-ca.pem\n' > "$WORK/pip.conf"
    mounts=(--volume "$(realpath "$cert"):/run/host-ca.pem:ro" --volume "$(realpath "$WORK/pip.conf"):/etc/pip.conf:ro")
    echo "pip inside the build uses this machine's CA bundle $cert"
fi

say "podman build --isolation=chroot --build-arg BASE=$BASE_IMAGE -t $IMAGE"
started=$SECONDS
podman build --quiet --format docker --isolation=chroot --network=host "${mounts[@]}" \
    --build-arg "BASE=$BASE_IMAGE" -t "$IMAGE" -f Dockerfile . >/dev/null
echo "built in $((SECONDS - started)) s"
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$IMAGE"
podman image inspect --format 'user={{.Config.User}} stopsignal={{.Config.StopSignal}} entrypoint={{.Config.Entrypoint}} cmd={{.Config.Cmd}} volumes={{.Config.Volumes}}' "$IMAGE"

say "buildah from $IMAGE: version and doctor"
container=$(buildah from --quiet "$IMAGE")
trap 'buildah rm "$container" >/dev/null 2>&1 || true' EXIT
buildah run --isolation chroot "$container" -- continuity --version
buildah run --isolation chroot "$container" -- continuity doctor || true  # informative: no home volume here

say "buildah run: the default command's watchdog in the foreground (logs on stdout), its health check, SIGTERM"
# shellcheck disable=SC2016 # expanded by the container's shell
buildah run --isolation chroot "$container" -- sh -c '
    home=/tmp/smoke && mkdir -p "$home"
    printf "[whatsapp]\nenabled = false\n[worker]\nheartbeat_interval = 1\n" > "$home/continuity.toml"
    continuity --home "$home" start > /tmp/smoke.out 2>&1 &
    pid=$!
    sleep 12
    printf "healthcheck: "; python3 /opt/continuity/healthcheck.py; health=$?
    kill -TERM "$pid"; wait "$pid"; code=$?
    echo "stdout of the watchdog (first lines):"; head -n 6 /tmp/smoke.out
    grep -m 1 -A 20 "Traceback" /tmp/smoke.out
    echo "worker lines on stdout: $(grep -c "^worker: " /tmp/smoke.out); health check exit $health; exit after SIGTERM $code"
    [ "$health" = 0 ] && [ "$code" = 0 ] && grep -q "^worker: " /tmp/smoke.out && ! grep -q "Traceback" /tmp/smoke.out'

say "buildah run --isolation chroot: continuity demo inside the image"
set +e
buildah run --isolation chroot "$container" -- continuity demo
code=$?
set -e
say "continuity demo inside the image exited $code"
exit "$code"
