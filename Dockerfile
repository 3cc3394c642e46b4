# ha-pbx add-on image. The Home Assistant builder passes BUILD_FROM (build.yaml) and
# BUILD_ARCH (amd64 or aarch64) and builds with BuildKit (docker buildx).
ARG BUILD_FROM=ghcr.io/home-assistant/amd64-base:3.22

# ---- builder: one static musl binary (scripts/build-static.sh) ----------------
# Runs on the build machine's own platform ($BUILDPLATFORM, which BuildKit sets) and
# compiles for BUILD_ARCH: natively with musl-tools when the two match, and aarch64
# from amd64 by cross-compiling with zig (PyPI's ziglang, through scripts/zig-cc/)
# rather than running the whole Rust build under QEMU emulation.
# tests/integration/test_addon_static.py runs the same script both ways.
FROM --platform=$BUILDPLATFORM rust:1.95-slim-bookworm AS builder
ARG BUILD_ARCH=amd64
# musl-gcc for the C inside (bundled SQLite, mimalloc, ring, aws-lc); cmake for libopus
# (opusic-c); file to check the result; python3-venv for ziglang when cross-compiling
RUN case "${BUILD_ARCH}" in \
        amd64) arch=x86_64 ;; \
        aarch64) arch=aarch64 ;; \
        *) echo "ha-pbx: unsupported BUILD_ARCH '${BUILD_ARCH}'" >&2; exit 1 ;; \
    esac \
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
COPY migrations migrations
COPY src src
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

# ---- the add-on: HA base image (s6-overlay v3, bashio) + the binary ------------
FROM ${BUILD_FROM}
COPY --from=builder /ha-pbx /usr/bin/ha-pbx
COPY rootfs /

ARG BUILD_ARCH
ARG BUILD_VERSION
LABEL \
    io.hass.name="ha-pbx" \
    io.hass.description="SIP PBX for Home Assistant" \
    io.hass.arch="${BUILD_ARCH}" \
    io.hass.type="addon" \
    io.hass.version="${BUILD_VERSION}"
