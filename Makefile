# shipml — two commands set everything up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export OMP_WAIT_POLICY := PASSIVE

.PHONY: demo test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,serve,text,recommend,answer,images]"
	touch $(STAMP)

demo: $(STAMP)
	bash examples/demo.sh

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks tools
	$(BIN)/ruff check --fix src tests benchmarks tools

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/tabular.py
	$(BIN)/python benchmarks/cli_and_predict.py

.PHONY: bench-serving
bench-serving: $(STAMP)  # needs wrk (apt-get install -y wrk); makes benchmarks/.venv-mlflow once
	$(BIN)/python benchmarks/serving.py

clean:
	rm -rf $(VENV) .shipml-demo build *.egg-info src/*.egg-info

.PHONY: bench-text
bench-text: $(STAMP)  # about 60 min: banking77 with a 15 min fine-tune, financial_phrasebank, sst2
	$(BIN)/python benchmarks/text.py --datasets banking77,financial_phrasebank,sst2
	$(BIN)/python benchmarks/text_runtime.py
