# CPython image: Debian trixie's python3, pinned by exact version, and a venv with the
# hash-pinned packages of python/requirements.lock. The static runner comes from RUNNER_IMAGE.
ARG BASE_IMAGE=rpb-base:trixie
ARG RUNNER_IMAGE

FROM ${RUNNER_IMAGE} AS runner

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
COPY python/bench /opt/rpb/python
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Byte-compile the benchmark scripts now: the root file system is read-only at run time.
RUN python3 -m compileall -q /opt/rpb/python \
 && python3 -c "import json, platform, sys, importlib.metadata as m; json.dump({'python': sys.version.replace(chr(10), ' '), 'implementation': platform.python_implementation(), 'packages': {d.metadata['Name']: d.version for d in m.distributions()}}, open('/opt/rpb/versions.json', 'w'), indent=2)"
