# ha-pbx add-on image. Built with BuildKit (`docker buildx build`) and no build argument:
# the target architecture is the build's platform (BuildKit's TARGETARCH: amd64 or arm64),
# the base image is named here. Who builds it:
#   - .github/workflows/release.yaml on a version tag (home-assistant/builder's build-image,
#     one native runner per architecture), published as ghcr.io/<owner>/ha-pbx;
#   - the Supervisor, for a local build (config.yaml without `image:`): since 2025.07 it runs
#     `docker buildx build --platform linux/amd64|linux/arm64 --pull` with the build arguments
#     BUILD_ARCH and BUILD_VERSION, and BUILD_FROM from build.yaml's build_from (2026.04 and
#     later pass BUILD_FROM only when a build.yaml exists);
#   - a developer: `docker buildx build --platform linux/arm64 -t ha-pbx .` (README.md).
# The base: Home Assistant's Alpine base (s6-overlay v3, bashio, curl), one multi-arch image,
# pinned to a release build; build.yaml's build_from names the same image
# (tests/integration/test_addon_lint.py checks that they agree).
ARG BUILD_FROM=ghcr.io/home-assistant/base:3.24-2026.10.0

# ---- builder: one static musl binary (scripts/build-static.sh) ----------------
# Runs on the build machine's own platform ($BUILDPLATFORM, which BuildKit sets) and
# compiles for the target platform: natively with musl-tools when the two match, and aarch64
# from amd64 by cross-compiling with zig (PyPI's ziglang, through scripts/zig-cc/) rather than
# running the whole Rust build under QEMU emulation. Nothing in the final stage RUNs, so a
# cross build of the image needs no emulator at all.
# tests/integration/test_addon_static.py runs the same script both ways.
FROM --platform=$BUILDPLATFORM rust:1.95-slim-bookworm AS builder
# Set by BuildKit from --platform (or the builder's own platform without it).
ARG TARGETARCH
# Passed by the Supervisor and by build-image (Home Assistant's names: amd64, aarch64); only
# checked against the target platform: an aarch64 label on an amd64 image is refused.
ARG BUILD_ARCH=""
# musl-gcc for the C inside (bundled SQLite, mimalloc, ring, aws-lc); cmake for libopus
# (opusic-c); file to check the result; python3-venv for ziglang when cross-compiling
RUN case "${TARGETARCH}" in \
        amd64) arch=x86_64 hass_arch=amd64 ;; \
        arm64) arch=aarch64 hass_arch=aarch64 ;; \
        "") echo "ha-pbx: TARGETARCH is not set: build with BuildKit (docker buildx build)" >&2; exit 1 ;; \
        *) echo "ha-pbx: unsupported target platform linux/${TARGETARCH} (amd64 and arm64 are)" >&2; exit 1 ;; \
    esac \
    && if [ -n "${BUILD_ARCH}" ] && [ "${BUILD_ARCH}" != "${hass_arch}" ]; then \
           echo "ha-pbx: BUILD_ARCH=${BUILD_ARCH} but the target platform is linux/${TARGETARCH}:" \
                "build with --platform linux/$([ "${BUILD_ARCH}" = aarch64 ] && echo arm64 || echo "${BUILD_ARCH}")" >&2; \
           exit 1; \
       fi \
    && echo "${arch}-unknown-linux-musl" > /rust-target \
    && pkgs="musl-tools cmake file binutils" \
    && if [ "${arch}" != "$(uname -m)" ]; then pkgs="${pkgs} python3-venv"; fi \
    && apt-get update \
    && apt-get install -y --no-install-recommends ${pkgs} \
    && rm -rf /var/lib/apt/lists/* \
    && if [ "${arch}" != "$(uname -m)" ]; then \
           python3 -m venv /opt/zig \
           && /opt/zig/bin/pip install --no-cache-dir ziglang==0.13.0; \
       fi
# what scripts/zig-cc/zig runs (when /opt/zig exists, i.e. for a cross build)
ENV ZIG="/opt/zig/bin/python -m ziglang"
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
# rsipstack, str0m-rust-crypto and dimpl, patched (Cargo.toml [patch.crates-io]; vendor/*/HA-PBX-PATCH.md)
COPY vendor vendor
COPY migrations migrations
COPY src src
# the standalone panel's page, built into the binary (src/http/panel: include_str!)
COPY web web
COPY scripts/build-static.sh scripts/build-static.sh
COPY scripts/zig-cc scripts/zig-cc
# strip: Debian's binutils for a native build, `zig objcopy` (scripts/zig-cc) for a cross one;
# a cross-built binary cannot run here, so only a native one is asked for --version
RUN target="$(cat /rust-target)" \
    && arch="${target%%-*}" \
    && bin="$(bash scripts/build-static.sh "${target}" | tail -n 1)" \
    && if [ "${arch}" = "$(uname -m)" ]; then \
           strip --strip-debug -o /ha-pbx "${bin}" && /ha-pbx --version; \
       else \
           "scripts/zig-cc/${arch}-linux-musl-strip" --strip-debug -o /ha-pbx "${bin}"; \
       fi

# ---- the add-on: HA base image (s6-overlay v3, bashio, curl) + the binary ------
# The base is multi-arch: BuildKit takes the variant of the target platform.
FROM ${BUILD_FROM}
COPY --from=builder /ha-pbx /usr/bin/ha-pbx
COPY rootfs /

# /health on a Unix socket inside the container (ha-pbx serves it in add-on mode when this is
# set): the ingress port is chosen by the Supervisor at start and answers only its proxy, so
# the check does not go through it. Unhealthy (3 failures in a row, after a minute's grace
# for the start) makes the Supervisor's watchdog restart the add-on (DOCS.md).
ENV HA_PBX_HEALTH_SOCKET=/run/ha-pbx/health.sock
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD curl --fail --silent --show-error --max-time 5 --unix-socket "${HA_PBX_HEALTH_SOCKET}" http://localhost/health

# io.hass.arch and io.hass.version are set by whoever builds (the Supervisor, build-image).
LABEL \
    io.hass.name="ha-pbx" \
    io.hass.description="SIP PBX for Home Assistant" \
    io.hass.type="addon" \
    org.opencontainers.image.title="ha-pbx" \
    org.opencontainers.image.description="SIP PBX for Home Assistant"
