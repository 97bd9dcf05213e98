# PyPy image: Debian trixie's pypy3, pinned by exact version, for the pure-Python
# implementations (no NumPy or other C-extension packages: the "try PyPy first" route).
# The static runner comes from RUNNER_IMAGE.
ARG BASE_IMAGE=rpb-base:trixie
ARG RUNNER_IMAGE

FROM ${RUNNER_IMAGE} AS runner

FROM ${BASE_IMAGE}
ARG PYPY_VERSION
ARG HYPERFINE_VERSION
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      pypy3=${PYPY_VERSION} pypy3-lib=${PYPY_VERSION} hyperfine=${HYPERFINE_VERSION} \
 && rm -rf /var/lib/apt/lists/*
COPY --from=runner /runner /opt/rpb/bin/runner
COPY python/bench /opt/rpb/python
# Byte-compile the benchmark scripts now (for pypy3's cache tag): the root file system is
# read-only at run time.
RUN pypy3 -m compileall -q /opt/rpb/python \
 && pypy3 -c "import json, platform, sys; json.dump({'python': sys.version.replace(chr(10), ' '), 'implementation': platform.python_implementation(), 'pypy': '.'.join(map(str, sys.pypy_version_info[:3])), 'packages': {}}, open('/opt/rpb/versions.json', 'w'), indent=2)"
