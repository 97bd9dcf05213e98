# The kit's measuring runner (rust/runner, a crate with its own lock file), built fully static
# by Debian's rustc/cargo from trixie-backports (pinned), in an image holding only /runner.
# Every other image copies it from here (build argument RUNNER_IMAGE), so a change to a
# benchmark never rebuilds the runner. Only the build stage sees the extra CA bundle.
ARG BASE_IMAGE=rpb-base:trixie

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
COPY rust/runner/ /src/
RUN RUSTFLAGS="-C target-feature=+crt-static" \
      cargo build --release --locked --target x86_64-unknown-linux-gnu \
 && cp target/x86_64-unknown-linux-gnu/release/runner /runner \
 && /runner --version

FROM scratch
COPY --from=build /runner /runner
