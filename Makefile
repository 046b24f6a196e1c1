# Genba — two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.genba-installed
TORCH_PIN := torch==2.13.0

.PHONY: demo test lint bench clean venv fonts nginx wheelhouse usb-kit test-tools reliability gui-app gui-app-smoke

venv: $(STAMP)

# torch goes first (the CPU wheel); an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP) nginx
	$(BIN)/genba demo

lint: $(STAMP)
	$(BIN)/ruff check genba export edge_agent server gui tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

# Japanese in the operator app needs a CJK font (Debian's fonts-noto-cjk); installed when root may.
fonts:
	@packaging/ensure-cjk-font.sh

# The SuperLink's mutual-TLS front is nginx (Debian's nginx-light); installed when root may.
nginx:
	@packaging/ensure-nginx.sh

# What the tests need from the operating system besides Python (strace); installed when root may.
test-tools:
	@packaging/ensure-test-tools.sh

test: lint fonts nginx test-tools
	$(BIN)/python -m pytest

# The long reliability run: a soak of 30 minutes, fuzzing budgets, the fault tests three times; one
# JSON summary (docs/bench/reliability.json). make test runs its short version (tests/bench).
reliability: $(STAMP) nginx test-tools
	$(BIN)/python bench/reliability.py --out bench-out/reliability

bench: $(STAMP) nginx
	$(BIN)/python bench/export_infer.py
	$(BIN)/python bench/agent_api.py
	$(BIN)/python bench/serving_under_polling.py
	$(BIN)/python bench/few_labels.py
	$(BIN)/python bench/head_fit_threads.py --out bench-out/head_fit_threads.json
	$(BIN)/python bench/federated.py --before docs/bench/federated.json   # the committed figures as 'before'
	$(BIN)/python bench/drift.py
	$(BIN)/python bench/rollout_safety.py
	$(BIN)/python bench/auto_choice.py
	$(BIN)/python bench/gui_responsiveness.py
	$(BIN)/python bench/gui_app.py --build   # builds the desktop app (make gui-app) first
	$(BIN)/python bench/gpu_serving.py --provider cpu --out bench-out/gpu   # the GPU part: on the device (docs/bench/gpu_serving.json)

# The operator app as a desktop program (dist/genba-gui/), built in its own environment holding the
# gui role and PyInstaller only; check_app.py fails the build if torch & co. got in. Not in `make test`.
GUI_VENV := .venv-gui-build
GUI_STAMP := $(GUI_VENV)/.genba-installed

$(GUI_STAMP): pyproject.toml
	test -x $(GUI_VENV)/bin/python || $(PYTHON) -m venv $(GUI_VENV)
	$(GUI_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(GUI_VENV)/bin/python -m pip install --quiet '.[gui-build]'
	touch $(GUI_STAMP)

gui-app: $(GUI_STAMP)
	rm -rf dist/genba-gui
	$(GUI_VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build/gui-app packaging/gui/genba-gui.spec
	$(GUI_VENV)/bin/python packaging/gui/check_app.py dist/genba-gui

# CI's smoke check of the desktop program: built as above, then started offscreen with --check
# against a real agent serving the default bundle (bench/gui_app.py --smoke).
gui-app-smoke: gui-app $(STAMP)
	$(BIN)/python bench/gui_app.py --smoke

# The offline kit (docs/INSTALL.md): a role's wheels pinned by sha256, for Linux x86_64 and CPython
# 3.11 and 3.12; needs the package index. Roles with torch take its CPU build from TORCH_SOURCE.
ROLE ?= site
OUT ?= dist/wheelhouse-$(ROLE)
TORCH_SOURCE ?= https://download.pytorch.org/whl/cpu
wheelhouse: $(STAMP)
	$(BIN)/genba package wheelhouse --role $(ROLE) --out $(OUT) --torch-source $(TORCH_SOURCE)

# A site's USB kit: make usb-kit WHEELHOUSE=dist/wheelhouse-site SITE_KIT=it-kit/sites/press-1 BUNDLE=b.tar OUT=usb
WHEELHOUSE ?= dist/wheelhouse-$(ROLE)
usb-kit: $(STAMP)
	$(BIN)/genba package usb-kit --wheelhouse $(WHEELHOUSE) --out $(OUT) \
		$(if $(SITE_KIT),--site-kit $(SITE_KIT)) $(foreach b,$(BUNDLE),--bundle $(b)) $(foreach k,$(TRUST),--trust $(k))

clean:
	rm -rf demo-out .pytest_cache .mypy_cache .ruff_cache
