# Load-generator image of the serving_api task: oha (built from crates.io at a pinned version)
# and the `loadgen` driver that runs it, in /opt/rpb/bin. A loadgen container joins the server
# container's network namespace and runs `loadgen <phase> ...` once per phase.
# Stages: oha (toolchain + cargo install; the only stages that see the extra CA bundle),
# build (the driver from rust/), final.
ARG BASE_IMAGE=rpb-base:trixie
ARG RUNNER_IMAGE

FROM ${RUNNER_IMAGE} AS runner

FROM ${BASE_IMAGE} AS toolchain
ARG RUSTC_VERSION
ENV DEBIAN_FRONTEND=noninteractive
# make: oha's jemalloc is built with it; gcc (pulled in by rustc) builds its bundled SQLite.
RUN apt-get update \
 && apt-get install -y --no-install-recommends -t trixie-backports \
      rustc=${RUSTC_VERSION} cargo=${RUSTC_VERSION} \
 && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
# Proxies that intercept TLS: cargo trusts the system bundle plus the one handed to the build.
COPY extra-ca.pem /tmp/extra-ca.pem
RUN cat /etc/ssl/certs/ca-certificates.crt /tmp/extra-ca.pem > /tmp/ca-bundle.pem
ENV CARGO_HTTP_CAINFO=/tmp/ca-bundle.pem CARGO_HOME=/cargo CARGO_TERM_COLOR=never

FROM toolchain AS oha
ARG OHA_VERSION
# Its own stage before the sources are copied, so editing the driver does not rebuild oha.
# --locked: oha's own Cargo.lock. Default features (rustls on aws-lc, built by the cc crate
# with gcc: no cmake); oha does not build without a TLS feature, although the load here is
# plain HTTP on the server container's loopback.
# Without fat LTO and with parallel codegen units: the build takes a fraction of the time, and
# the load generator is checked not to be the bottleneck at every rate it drives (its CPU share
# is recorded with every phase).
RUN CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
      cargo install --locked --root /opt/oha "oha@${OHA_VERSION}" \
 && /opt/oha/bin/oha --version

FROM toolchain AS build
WORKDIR /src
COPY rust/ /src/
RUN cargo build --release --locked -p loadgen \
 && mkdir -p /out && cp target/release/loadgen /out/loadgen

FROM ${BASE_IMAGE}
ARG OHA_VERSION
COPY --from=runner /runner /opt/rpb/bin/runner
COPY --from=oha /opt/oha/bin/oha /opt/rpb/bin/oha
COPY --from=build /out/loadgen /opt/rpb/bin/loadgen
# Record what the image holds, from the binaries themselves.
RUN /opt/rpb/bin/loadgen --help >/dev/null \
 && { echo "{"; \
      echo "  \"oha\": \"$(/opt/rpb/bin/oha --version | awk '{print $2}')\","; \
      echo "  \"oha_requested\": \"${OHA_VERSION}\","; \
      echo "  \"oha_features\": \"default (rustls)\","; \
      echo "  \"loadgen\": \"$(/opt/rpb/bin/loadgen --version | awk '{print $2}')\""; \
      echo "}"; } > /opt/rpb/versions.json \
 && cat /opt/rpb/versions.json
ENV PATH=/opt/rpb/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
