# testimony-vault: the two commands a new machine needs are `make run` and `make test`.
PY ?= python3
VENV := .venv
SRC := vault ingest search keys policies tests bench
BIN := $(VENV)/bin
TVAULT_HOME ?= ./vault-data
export TVAULT_HOME

.PHONY: install install-test run test lint tools bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

# Playwright's Python package only; its own browser builds are never fetched (tests/e2e/browser.py).
install-test: export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

## run: install, create a vault in $(TVAULT_HOME) if there is none, serve on 127.0.0.1:8000
run: install
	@if [ ! -e "$(TVAULT_HOME)/tvault.toml" ]; then $(BIN)/tvault init --admin admin; fi
	$(BIN)/tvault serve

## tools: the Debian tools the tests use (the stock `age` tool, ssh-keygen; Tesseract with its
## Spanish, English and orientation models, and the DejaVu fonts the OCR tests render pages in;
## Chromium, which the browser tests drive through Playwright: never a browser download)
OCR_PACKAGES := tesseract-ocr tesseract-ocr-spa tesseract-ocr-eng tesseract-ocr-osd fonts-dejavu-core
tools:
	@if ! command -v age >/dev/null || ! command -v age-keygen >/dev/null || ! command -v ssh-keygen >/dev/null \
		|| ! command -v tesseract >/dev/null || ! dpkg -s $(OCR_PACKAGES) >/dev/null 2>&1 \
		|| ! command -v chromium >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq age openssh-client chromium $(OCR_PACKAGES) >/dev/null; \
	fi

## lint: ruff, mypy --strict, import-linter (the layer contract)
lint: install-test
	$(BIN)/ruff format --check $(SRC)
	$(BIN)/ruff check $(SRC)
	$(BIN)/mypy
	$(BIN)/lint-imports

## test: install everything the tests need, then run lint and the whole suite (the unit tests
## on every core, then the rest of the tree in one process: tests/README.md)
test: export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
test: tools install-test lint
	$(BIN)/pytest tests/unit; unit=$$?; $(BIN)/pytest --ignore=tests/unit; rest=$$?; \
	test $$unit -eq 0 && test $$rest -eq 0

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
