# nyanops: the commands people type. `make demo` and `make test` are the README's quick start.
# Four virtualenvs keep the heavy parts apart: .venv (serverless code + tests, no torch),
# .venv-ml (torch + the local pipeline), .venv-sam (aws-sam-cli, which pins boto3 exactly),
# .venv-checkov (checkov, which pins boto3 and networkx).

PYTHON ?= python3
VENV := .venv
VENV_ML := .venv-ml
VENV_SAM := .venv-sam
VENV_CHECKOV := .venv-checkov
CHECKOV_PIN := checkov==3.3.30
# The SAM CLI the project is tested with (sam build, sam validate, sam local invoke with events/env.json).
SAM_PIN := aws-sam-cli==1.170.0
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# pip with one progress line per phase (resolving, downloading n/N, installing) and its full log in the venv.
PIP_PROGRESS = $(PYTHON) scripts/pip_progress.py

.PHONY: demo test lint static test-core test-ml mutation bench build deploy clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

demo: $(VENV_ML)/.done  ## run the whole pipeline locally on the sample cats (no AWS, no Docker)
	$(VENV_ML)/bin/nyanops demo

test: lint static test-core test-ml  ## every check: ruff, template/ASL linters, sam build, all tests

lint: $(VENV)/.done  ## ruff
	$(VENV)/bin/ruff check .

static: $(VENV)/.done $(VENV_SAM)/.done $(VENV_CHECKOV)/.done node_modules/.done  ## sam validate --lint, cfn-lint, checkov, asl-validator, sam build
	$(VENV)/bin/python scripts/static_checks.py --sam $(VENV_SAM)/bin/sam --cfn-lint $(VENV)/bin/cfn-lint \
		--checkov $(VENV_CHECKOV)/bin/checkov

test-core: $(VENV)/.done  ## serverless + core + local executor tests (no torch)
	$(VENV)/bin/pytest -m "not ml and not e2e" -q

test-ml: $(VENV_ML)/.done  ## training / evaluation / local end-to-end tests (torch, CPU)
	$(VENV_ML)/bin/pytest -m "ml or e2e" -q tests

# The modules that decide outcomes, one mutmut run each (mutmut's settings and test selection: pyproject.toml).
MUTATION_MODULES := nyanops.core.manifest nyanops.core.dataset nyanops.core.start_pipeline nyanops.core.rejection \
	nyanops.core.best_model nyanops.core.record_results nyanops.core.evaluation_source \
	nyanops.core.evaluation_report nyanops.aws.experiment_lock nyanops.aws.sagemaker_experiments \
	nyanops.local.experiment_store
MUTATION_JOBS ?= 2

mutation: $(VENV)/.done  ## mutation testing of the deciding modules (slow, CPU-heavy; not part of `make test`)
	for module in $(MUTATION_MODULES); do \
		$(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) "$$module.*" || exit 1; \
	done
	$(VENV)/bin/python scripts/mutation_scores.py

bench: $(VENV_ML)/.done $(VENV)/.done $(VENV_SAM)/.done  ## benchmarks; figures go to docs/benchmarks.md
	$(VENV_ML)/bin/python bench/cv_bench.py --data $${NYANOPS_SAMPLE_DATA:-../shared/datasets/cats-dev}
	$(VENV_ML)/bin/python bench/ml_bench.py --data $${NYANOPS_SAMPLE_DATA:-../shared/datasets/cats-dev} --seeds 0 1 2
	$(VENV_ML)/bin/python bench/progress_gap.py --data $${NYANOPS_SAMPLE_DATA:-../shared/datasets/cats-dev}
	$(VENV_ML)/bin/python bench/local_bench.py --data $${NYANOPS_SAMPLE_DATA:-../shared/datasets/cats-dev} --demo
	$(VENV)/bin/python bench/lambda_bench.py --sam $(VENV_SAM)/bin/sam

build: $(VENV_SAM)/.done  ## sam build (no Docker needed)
	$(VENV_SAM)/bin/sam build

deploy: build  ## sam deploy --guided, then push ml_code to the stack's bucket
	$(VENV_SAM)/bin/sam deploy --guided
	@echo "Now push the training code: $(VENV_ML)/bin/nyanops code push --bucket <BucketName output>"

clean:  ## remove build outputs and the local pipeline root (keeps the virtualenvs)
	rm -rf .aws-sam .nyanops .pytest_cache .ruff_cache mutants

$(VENV)/.done: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP_PROGRESS) --label $(VENV) --log $(VENV)/pip-install.log -- $(VENV)/bin/pip install -e '.[dev]'
	touch $@

$(VENV_ML)/.done: pyproject.toml ml_code/requirements.txt
	$(PYTHON) -m venv $(VENV_ML)
	@echo "$(VENV_ML): installing PyTorch (CPU) and the pipeline, first time only (about 3 minutes, ~1 GB download)"
	$(PIP_PROGRESS) --label $(VENV_ML) --log $(VENV_ML)/pip-install.log -- $(VENV_ML)/bin/pip install \
		$(TORCH_PINS) -r ml_code/requirements.txt scikit-learn matplotlib pillow pytest pytest-socket pyyaml
	$(PIP_PROGRESS) --label $(VENV_ML) --log $(VENV_ML)/pip-install-nyanops.log -- $(VENV_ML)/bin/pip install -e .
	touch $@

$(VENV_SAM)/.done:
	$(PYTHON) -m venv $(VENV_SAM)
	$(PIP_PROGRESS) --label $(VENV_SAM) --log $(VENV_SAM)/pip-install.log -- $(VENV_SAM)/bin/pip install $(SAM_PIN)
	touch $@

$(VENV_CHECKOV)/.done:
	$(PYTHON) -m venv $(VENV_CHECKOV)
	$(PIP_PROGRESS) --label $(VENV_CHECKOV) --log $(VENV_CHECKOV)/pip-install.log -- $(VENV_CHECKOV)/bin/pip install \
		$(CHECKOV_PIN)
	touch $@

node_modules/.done: package.json
	npm install --no-audit --no-fund --silent
	touch $@
