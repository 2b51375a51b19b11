# The fwtriage image: one image for every worker queue (unpack, analyze, report) and for the command line.
#
# Debian's own python3 runs it, in a venv: Debian's binwalk is a Python module for that interpreter (binwalk
# on PyPI is an empty placeholder), so using the same python3 avoids a second interpreter in the image.
# The build stage compiles what has no wheel (python-lzo); the runtime stage has no compiler.

FROM debian:bookworm-slim AS build

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# python3-dev, gcc, libc6-dev and liblzo2-dev: python-lzo is published as source only.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev gcc libc6-dev liblzo2-dev \
 && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/fwtriage/venv
ENV PATH=/opt/fwtriage/venv/bin:$PATH
WORKDIR /src

# The dependencies first, from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

COPY pipeline ./pipeline
RUN pip install .


FROM debian:bookworm-slim

ENV DEBIAN_FRONTEND=noninteractive

# What the workers use at run time, and nothing else (no compilers, no sample-building toolchains):
#   binwalk                         carving signatures (the Python module, linked into the venv below)
#   squashfs-tools, erofs-utils     unsquashfs and fsck.erofs, run by the squashfs and erofs formats
#   bubblewrap                      the extractors' sandbox, when the kernel and seccomp profile allow it
#   libmagic1, libarchive13         loaded by python-magic and libarchive-c
#   liblzo2-2                       linked by python-lzo
#   libpango-1.0-0, libpangoft2-1.0-0, fonts-dejavu-core   WeasyPrint, for report.pdf
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        python3 \
        binwalk squashfs-tools erofs-utils bubblewrap \
        libmagic1 libarchive13 liblzo2-2 \
        libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

COPY --from=build /opt/fwtriage/venv /opt/fwtriage/venv
# The rules are data beside the package, not in it: FWTRIAGE_RULES_DIR points the workers at them.
COPY rules /opt/fwtriage/rules

ENV PATH=/opt/fwtriage/venv/bin:$PATH \
    FWTRIAGE_HOME=/var/lib/fwtriage \
    FWTRIAGE_RULES_DIR=/opt/fwtriage/rules \
    XDG_CACHE_HOME=/tmp/cache \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# Only the binwalk package and its egg-info enter the venv, exactly as `make venv` does on a workstation.
COPY scripts/link_binwalk.py /opt/fwtriage/scripts/link_binwalk.py
RUN python /opt/fwtriage/scripts/link_binwalk.py

# A fixed numeric id, so the store volume's ownership means the same thing in every container.
RUN useradd --system --uid 10001 --user-group --home-dir /home/fwtriage --create-home \
        --shell /usr/sbin/nologin fwtriage \
 && install -d -o fwtriage -g fwtriage -m 0750 /var/lib/fwtriage
USER 10001:10001
WORKDIR /var/lib/fwtriage

# Fail the build, not the first submission, when a library or tool the workers load is missing.
RUN python -c "import binwalk, magic, libarchive, lzo, yara, lief, weasyprint, pipeline.cli, pipeline.tasks" \
 && for tool in unsquashfs fsck.erofs bwrap celery fwtriage; do command -v "$tool" > /dev/null || exit 1; done \
 && fwtriage --version

CMD ["fwtriage", "--help"]
