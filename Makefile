# agent-builder platform. `make synth` and `make test` set everything up from nothing
# (a Python 3.11+ and a Node 20+ are all they need) and are safe to re-run.

PYTHON ?= python3
VENV := .venv
CHECKOV_VENV := .venv-checkov
PARLIAMENT_VENV := .venv-parliament
PY := $(VENV)/bin/python
CDK := npx --no-install cdk

# Node 20 is past its end of life for jsii; silence the banner, keep everything offline.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# checkov would otherwise try to download guidelines from the internet.
export BC_SKIP_MAPPING := TRUE
export CHECKOV_BIN := $(CURDIR)/$(CHECKOV_VENV)/bin/checkov
export PARLIAMENT_PYTHON := $(CURDIR)/$(PARLIAMENT_VENV)/bin/python

.PHONY: help setup chromium synth test lint typecheck unit deploy destroy smoke teardown-plan resume-free-tier cost bench-synth bench-runtime bench-web clean

help:
	@echo "make synth          set up, then synthesize every stack and export dist/"
	@echo "make test           set up, then lint, type-check, all tests and quality gates"
	@echo "make deploy         cdk deploy --all (needs AWS credentials)"
	@echo "make destroy        cdk destroy --all (needs AWS credentials)"
	@echo "make bench-synth    whole-app synth time vs an empty one-stack app"
	@echo "make bench-runtime  API cold-import ratio and AWS calls per test launch"
	@echo "make bench-web      the console's first-load bytes (gzip) and click-to-first-answer time"
	@echo "make smoke          API=<url> TOKEN=<token>: the README journey against a deployment"
	@echo "make teardown-plan  dry run: everything of ours in the account and region, and what destroy would leave"
	@echo "make resume-free-tier  resume the free tier now after the budget's kill switch paused it"
	@echo "make cost           what the platform costs idle, per test, for 100 free users; a customer's idle cost"

# ---- set-up: stamps make each step run once per change of its pins ----------------

$(VENV)/.synth-deps: requirements.txt lambda_src/requirements.txt constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -r requirements.txt -r lambda_src/requirements.txt
	touch $@

$(VENV)/.dev-deps: $(VENV)/.synth-deps requirements-dev.txt
	$(PY) -m pip install --quiet -c constraints.txt -r requirements-dev.txt
	touch $@

$(CHECKOV_VENV)/.deps: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

$(PARLIAMENT_VENV)/.deps: requirements-parliament.txt
	test -x $(PARLIAMENT_VENV)/bin/python || $(PYTHON) -m venv $(PARLIAMENT_VENV)
	$(PARLIAMENT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PARLIAMENT_VENV)/bin/python -m pip install --quiet -r requirements-parliament.txt
	touch $@

node_modules/.deps: package.json package-lock.json
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || (echo "Node 20+ is required" && exit 1)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The browser tests (tests/web) drive Debian's Chromium through Playwright (Playwright's own
# browser download needs the internet). Installed here when missing if we are root, as in CI.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update && apt-get install -y --no-install-recommends chromium; \
	  else \
	    echo "The browser tests need Chromium at /usr/bin/chromium: install Debian's package"; \
	    echo "  sudo apt-get update && sudo apt-get install -y chromium"; \
	    echo "(or run make as root, which installs it)"; exit 1; \
	  fi; }

setup: $(VENV)/.dev-deps $(CHECKOV_VENV)/.deps $(PARLIAMENT_VENV)/.deps node_modules/.deps chromium

# ---- the main job -------------------------------------------------------------------

synth: $(VENV)/.synth-deps node_modules/.deps
	$(CDK) synth --quiet
	$(PY) scripts/export_templates.py
	$(PY) scripts/export_openapi.py
	@echo
	@echo "CloudFormation templates:"
	@ls -1 cdk.out/*.template.json | sed 's/^/  /'
	@echo "Exported for customers and clients:"
	@ls -1 dist/*.* dist/releases/* | sed 's/^/  /'

# ---- tests and quality gates ------------------------------------------------------------

lint: $(VENV)/.dev-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.dev-deps
	$(VENV)/bin/mypy app.py stacks constructs lambda_src agent_runner scripts local_mode

unit: $(VENV)/.dev-deps $(CHECKOV_VENV)/.deps $(PARLIAMENT_VENV)/.deps node_modules/.deps chromium
	$(VENV)/bin/pytest -n 2 --dist loadfile

test: synth lint typecheck unit

# ---- owner operations (need AWS credentials) -------------------------------------------

deploy: synth
	$(CDK) deploy --all --require-approval broadening

destroy: $(VENV)/.dev-deps node_modules/.deps
	$(CDK) destroy --all $(if $(FORCE),--force,)
	$(PY) scripts/teardown_plan.py --force

smoke: $(VENV)/.synth-deps
	@test -n "$(API)" -a -n "$(TOKEN)" || (echo "usage: make smoke API=<ApiUrl output> TOKEN=<Cognito token>" && exit 2)
	$(PY) scripts/smoke.py --api "$(API)" --token "$(TOKEN)"

teardown-plan: $(VENV)/.dev-deps
	$(PY) scripts/teardown_plan.py

resume-free-tier: $(VENV)/.dev-deps
	$(PY) scripts/resume_free_tier.py

cost: synth
	$(PY) scripts/cost.py

# ---- benchmarks -------------------------------------------------------------------------

bench-synth: $(VENV)/.synth-deps
	$(PY) scripts/bench_synth.py

bench-runtime: $(VENV)/.dev-deps
	$(PY) scripts/bench_runtime.py

bench-web: synth $(VENV)/.dev-deps chromium
	$(PY) scripts/bench_web.py

clean:
	rm -rf cdk.out build .bench .pytest_cache .mypy_cache .ruff_cache

# ---- local mode (local_mode/README.md, docs/local-mode.md) ------------------------------

.PHONY: local local-customer

# GitHub sign-in runs through the OIDC bridge and its GitHub stand-in (local_mode/README.md),
# and members' IAM Identity Center sessions are on (their KMS key is free in the emulator):
# one synth with these settings, into a scratch directory, instead of `make synth`'s default.
LOCAL_GITHUB = -c githubClientId=local-github-standin -c githubClientSecretName=agent-builder/local/github-oauth
LOCAL_SETTINGS = $(LOCAL_GITHUB) -c enterpriseSso=true
local: $(VENV)/.dev-deps node_modules/.deps
	$(PY) -m local_mode $(LOCAL_SETTINGS)

local-customer: $(VENV)/.dev-deps
	@test -n "$(ACCOUNT)" -a -n "$(LAUNCH_STACK_URL)" || (echo "usage: make local-customer ACCOUNT=111111111111 LAUNCH_STACK_URL='<launchStackUrl of POST /aws-account/onboarding>'" && exit 2)
	$(PY) -m local_mode.customer --account $(ACCOUNT) --launch-stack-url '$(LAUNCH_STACK_URL)'
