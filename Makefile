# The two commands of the README: `make demo` (set up + run the main job) and `make test`.
# Needs only Python 3.11+ and make: uv is bootstrapped into .tools/ from PyPI, then installs
# the locked dependencies into .venv/.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv

.PHONY: demo test setup lint clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

setup: $(UV)
	$(UV) sync --frozen --all-extras --group dev --python $(PYTHON)

demo: setup
	.venv/bin/renewal demo

test: setup
	scripts/ensure-browser.sh
	.venv/bin/ruff check .
	# Two workers, one per core; a test file stays on one worker, so its module fixtures
	# (a trained model, a live server, the Spark session) are built once.
	.venv/bin/pytest -n 2 --dist loadfile

lint: setup
	.venv/bin/ruff check .

clean:
	rm -rf .tools .venv data
