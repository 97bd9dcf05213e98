# CPython image: Debian trixie's python3, pinned by exact version, and a venv with the
# hash-pinned packages of python/requirements.lock plus rpb_native, the PyO3 extension built
# here from rust/pyext. The static runner comes from RUNNER_IMAGE.
# Stages: runner (from RUNNER_IMAGE), native (Rust toolchain: the rpb_native wheel and the
# ffi_pipe binary), build (the venv), final. Only native and build see the extra CA bundle.
ARG BASE_IMAGE=rpb-base:trixie
ARG RUNNER_IMAGE

FROM ${RUNNER_IMAGE} AS runner

# rpb_native and ffi_pipe: Debian's rustc/cargo from trixie-backports (the same pinned version
# as the rust image), maturin from build-requirements.lock. Release profile of rust/Cargo.toml,
# default x86-64 target level (no target-cpu=native): portable, like the rust image's rs-* build.
FROM ${BASE_IMAGE} AS native
ARG PYTHON_VERSION
ARG RUSTC_VERSION
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3=${PYTHON_VERSION} python3-venv=${PYTHON_VERSION} \
 && apt-get install -y --no-install-recommends -t trixie-backports \
      rustc=${RUSTC_VERSION} cargo=${RUSTC_VERSION} \
 && rm -rf /var/lib/apt/lists/*
# Proxies that intercept TLS: cargo and pip trust the system bundle plus the one handed to the
# build.
COPY extra-ca.pem /tmp/extra-ca.pem
RUN cat /etc/ssl/certs/ca-certificates.crt /tmp/extra-ca.pem > /tmp/ca-bundle.pem
ENV CARGO_HTTP_CAINFO=/tmp/ca-bundle.pem PIP_CERT=/tmp/ca-bundle.pem \
    CARGO_HOME=/cargo CARGO_TERM_COLOR=never
COPY python/build-requirements.lock /tmp/build-requirements.lock
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip install --no-cache-dir --disable-pip-version-check \
      --require-hashes --only-binary=:all: -r /tmp/build-requirements.lock
WORKDIR /src
COPY rust/ /src/
RUN cargo fetch --locked
RUN cd pyext \
 && /opt/build/bin/maturin build --release --locked --offline \
      --interpreter /usr/bin/python3 --target x86_64-unknown-linux-gnu --out /out/wheels \
 && cd /src \
 && cargo build --release --locked --offline --target x86_64-unknown-linux-gnu -p rpb-bench --bin ffi_pipe \
 && cp target/x86_64-unknown-linux-gnu/release/ffi_pipe /out/ffi_pipe \
 && { echo "{"; \
      echo "  \"rustc\": \"$(rustc -V)\","; \
      echo "  \"cargo\": \"$(cargo -V)\","; \
      echo "  \"maturin\": \"$(/opt/build/bin/maturin --version)\","; \
      echo "  \"target\": \"x86_64-unknown-linux-gnu\","; \
      echo "  \"target_features\": \"$(rustc --print cfg | grep target_feature | sed 's/target_feature=//; s/\"//g' | tr '\n' ' ')\","; \
      echo "  \"profile\": \"release, lto=fat, codegen-units=1\","; \
      echo "  \"wheel\": \"$(cd /out/wheels && ls rpb_native-*.whl)\""; \
      echo "}"; } > /out/rpb-native-build.json

FROM ${BASE_IMAGE} AS build
ARG PYTHON_VERSION
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3=${PYTHON_VERSION} python3-venv=${PYTHON_VERSION} \
 && rm -rf /var/lib/apt/lists/*
# Proxies that intercept TLS: pip trusts the system bundle plus the one handed to the build.
COPY extra-ca.pem /tmp/extra-ca.pem
RUN cat /etc/ssl/certs/ca-certificates.crt /tmp/extra-ca.pem > /tmp/ca-bundle.pem
COPY python/requirements.lock /tmp/requirements.lock
RUN python3 -m venv /opt/venv \
 && PIP_CERT=/tmp/ca-bundle.pem /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
      --require-hashes --only-binary=:all: -r /tmp/requirements.lock
# The extension: its only dependency (numpy) is already in the venv from the lock.
COPY --from=native /out/wheels/ /tmp/wheels/
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-index --no-deps \
      /tmp/wheels/rpb_native-*.whl

FROM ${BASE_IMAGE}
ARG PYTHON_VERSION
ARG HYPERFINE_VERSION
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3=${PYTHON_VERSION} hyperfine=${HYPERFINE_VERSION} \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
COPY --from=runner /runner /opt/rpb/bin/runner
# The Rust side of ffi's py-rs-subprocess implementation.
COPY --from=native /out/ffi_pipe /opt/rpb/bin/ffi_pipe
COPY --from=native /out/rpb-native-build.json /opt/rpb/rpb-native-build.json
COPY python/bench /opt/rpb/python
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Byte-compile the benchmark scripts now: the root file system is read-only at run time.
# versions.json: the interpreter, every installed distribution, and how rpb_native was built.
RUN python3 -m compileall -q /opt/rpb/python \
 && python3 -c "import json, platform, sys, importlib.metadata as m; json.dump({'python': sys.version.replace(chr(10), ' '), 'implementation': platform.python_implementation(), 'packages': {d.metadata['Name']: d.version for d in m.distributions()}, 'rpb_native_build': json.load(open('/opt/rpb/rpb-native-build.json'))}, open('/opt/rpb/versions.json', 'w'), indent=2)" \
 && rm /opt/rpb/rpb-native-build.json \
 && python3 -c "import rpb_native, numpy; assert rpb_native.sum_squares(numpy.arange(4, dtype=numpy.int64)) == 14"
