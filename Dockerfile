# ha-pbx add-on image. The Home Assistant builder passes BUILD_FROM (build.yaml) and
# BUILD_ARCH and builds each architecture natively (QEMU for aarch64), so the
# builder stage below always compiles for the machine it runs on.
ARG BUILD_FROM=ghcr.io/home-assistant/amd64-base:3.22

# ---- builder: one static musl binary (scripts/build-static.sh) ----------------
FROM rust:1.95-slim-bookworm AS builder
# musl-gcc for the C inside (bundled SQLite, mimalloc, ring, libopus); cmake builds
# libopus (opusic-c); file to check the result
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools cmake file binutils \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY migrations migrations
COPY src src
COPY scripts/build-static.sh scripts/build-static.sh
RUN bin="$(bash scripts/build-static.sh | tail -n 1)" \
    && strip --strip-debug -o /ha-pbx "${bin}" \
    && /ha-pbx --version

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
