# Rust toolchain image: Debian's rustc/cargo from trixie-backports, pinned by exact version.
# Stages: runner (from RUNNER_IMAGE: the static measuring runner), build (toolchain +
# sources; the only stage that sees the extra CA bundle), final.
ARG BASE_IMAGE=rpb-base:trixie
ARG RUNNER_IMAGE

FROM ${RUNNER_IMAGE} AS runner

FROM ${BASE_IMAGE} AS build
ARG RUSTC_VERSION
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends -t trixie-backports \
      rustc=${RUSTC_VERSION} cargo=${RUSTC_VERSION} \
 && rm -rf /var/lib/apt/lists/*
# Proxies that intercept TLS: cargo trusts the system bundle plus the one handed to the build.
COPY extra-ca.pem /tmp/extra-ca.pem
RUN cat /etc/ssl/certs/ca-certificates.crt /tmp/extra-ca.pem > /tmp/ca-bundle.pem
ENV CARGO_HTTP_CAINFO=/tmp/ca-bundle.pem CARGO_HOME=/cargo CARGO_TERM_COLOR=never
WORKDIR /src
COPY rust/ /src/
RUN cargo fetch --locked
# Portable build (the default x86-64 target level), and sum_squares tuned for
# the build host's CPU (rs-native: not portable across hosts; only that task has a native
# implementation, so only it is built twice). Every binary target of rpb-bench is copied, as
# cargo itself reports them (its JSON messages: one "compiler-artifact" line per
# target, with "executable" set for binaries), so a new src/bin/<task>.rs needs no edit here.
RUN bins() { grep '"reason":"compiler-artifact"' "$1" | grep '"kind":\["bin"\]' \
      | grep -o '"executable":"[^"]*"' | cut -d'"' -f4; } \
 && cargo build --release --locked --offline -p rpb-bench --bins \
      --message-format=json-render-diagnostics > /tmp/portable.jsonl \
 && RUSTFLAGS="-C target-cpu=native" \
      cargo build --release --locked --offline --target-dir /src/target-native -p rpb-bench \
      --bin sum_squares \
      --message-format=json-render-diagnostics > /tmp/native.jsonl \
 && mkdir -p /out/native \
 && bins /tmp/portable.jsonl > /tmp/portable.bins && bins /tmp/native.jsonl > /tmp/native.bins \
 && test -s /tmp/portable.bins && test -s /tmp/native.bins \
 && xargs -a /tmp/portable.bins cp -v -t /out/ \
 && xargs -a /tmp/native.bins cp -v -t /out/native/ \
 && { echo "{"; \
      echo "  \"rustc\": \"$(rustc -V)\","; \
      echo "  \"cargo\": \"$(cargo -V)\","; \
      echo "  \"target\": \"x86_64-unknown-linux-gnu\","; \
      echo "  \"target_features_portable\": \"$(rustc --print cfg | grep target_feature | sed 's/target_feature=//; s/\"//g' | tr '\n' ' ')\","; \
      echo "  \"target_features_native\": \"$(rustc -C target-cpu=native --print cfg | grep target_feature | sed 's/target_feature=//; s/\"//g' | tr '\n' ' ')\","; \
      echo "  \"profile\": \"release, lto=fat, codegen-units=1\""; \
      echo "}"; } > /out/versions-rust.json

FROM ${BASE_IMAGE}
ARG HYPERFINE_VERSION
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends hyperfine=${HYPERFINE_VERSION} \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /opt/rpb/bin/
COPY --from=runner /runner /opt/rpb/bin/runner
RUN mkdir -p /opt/rpb && mv /opt/rpb/bin/versions-rust.json /opt/rpb/versions.json
