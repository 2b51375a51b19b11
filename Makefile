# fwtriage: `make demo` unpacks and triages the bundled samples, `make test` runs the test suite.
# Both install what they need on a fresh Debian machine (apt packages included).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .make
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_OUT ?= demo-out

APT_PACKAGES := binwalk squashfs-tools mtd-utils android-sdk-libsparse-utils mkbootimg u-boot-tools \
	gcc-arm-linux-gnueabihf libc6-dev-armhf-cross gcc-mipsel-linux-gnu libc6-dev-mipsel-cross \
	yara bubblewrap p7zip-full cpio e2fsprogs brotli liblzo2-dev lz4 zstd xz-utils dosfstools mtools \
	erofs-utils libarchive13 libmagic1 aapt libsmali-java default-jre-headless gcc python3-dev device-tree-compiler \
	libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core chromium docker-compose

.PHONY: setup system venv samples demo test lint bench fuzz clean

setup: venv

system: $(STAMPS)/system
$(STAMPS)/system:
	$(SUDO) dpkg --add-architecture armhf
	$(SUDO) dpkg --add-architecture mipsel
	$(SUDO) apt-get update -qq || true  # a mirror mid-sync must not stop us; install fails if truly missing
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PACKAGES)
	mkdir -p $(STAMPS) && touch $@

venv: $(STAMPS)/venv
$(STAMPS)/venv: $(STAMPS)/system pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python scripts/link_binwalk.py
	mkdir -p $(STAMPS) && touch $@

samples: $(STAMPS)/venv
	$(BIN)/python -m samples.build

demo: samples
	@$(BIN)/python -m samples.demo manifest $(DEMO_OUT)/manifest.csv
	@echo "== triaging every bundled sample as one batch (manifest: $(DEMO_OUT)/manifest.csv)"
	@$(BIN)/fwtriage scan $(DEMO_OUT)/manifest.csv --out $(DEMO_OUT)/reports
	@$(BIN)/python -m samples.demo check $(DEMO_OUT)/reports/summary.csv

test: samples
	bash scripts/ensure_services.sh
	$(BIN)/pytest -q

lint: $(STAMPS)/venv
	$(BIN)/ruff check .

bench: samples
	$(BIN)/python bench/unpack.py
	$(BIN)/python bench/analyze.py
	$(BIN)/python bench/scan.py
	$(BIN)/python bench/fleet.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/isolation.py
	$(BIN)/python bench/store.py
	$(BIN)/python bench/carve.py

FUZZ_SECONDS ?= 60
fuzz: samples  # every parser of ours under atheris for FUZZ_SECONDS each; crashes saved in fuzz/crashes/
	$(BIN)/pip install -q atheris
	$(BIN)/python -m fuzz.run --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) $(STAMPS) samples/out fwtriage-data $(DEMO_OUT) bench/out
