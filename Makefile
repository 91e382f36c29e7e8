# Two commands on a fresh machine: `make run` and `make test`.
# Everything else here is what those two need, and a few tools for developers.

PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
KAFKA_BROKERS ?= 3
STACK := hack/stack
STACK_ENV = eval "$$($(STACK) env)"

.PHONY: help venv bench-venv stack-up stack-up-all stack-down crds argocd-config run test unit integration lint bench-kafka bench-elasticsearch bench-nifi image wheels deploy undeploy clean

help:
	@echo "make run          start the local real stack and the operator, apply samples/, show them"
	@echo "make test         the whole suite: lint, layering, unit and integration tests on the real stack"
	@echo "make unit         unit and property tests only (no servers)"
	@echo "make lint         ruff, mypy and the import-layering contract"
	@echo "make crds         regenerate crds/ from the pydantic models"
	@echo "make argocd-config regenerate config/argocd's argocd-cm and Helm values from the health scripts"
	@echo "make bench-kafka  the KafkaTopic benchmark (N=1000 by default; BENCH_ARGS='--topics 5000 --latency',"
	@echo "                  '--sizes 1000,5000,10000 --plot docs/kafka-scaling.png', '--profile'; see its --help)"
	@echo "make bench-elasticsearch  the ElasticsearchIndex benchmark (N=200 by default;"
	@echo "                  BENCH_ARGS='--indices 500 --server opensearch')"
	@echo "make bench-nifi   the NiFiFlow benchmark (N=50 by default; BENCH_ARGS=--flows 10)"
	@echo "make image        the operator image, localhost/infometis-operator:<version>, with buildah"
	@echo "make wheels       dist/wheels: what the Containerfile installs (for docker/podman build elsewhere)"
	@echo "make deploy       the operator in Pods on the stack's node (hack/stack up --node): load the image,"
	@echo "                  apply config/kustomize/overlays/local, wait until its Deployments are Available"
	@echo "make undeploy     remove those Pods (the CRDs and roles stay)"
	@echo "make stack-up-all start the local stack with its node and Flux, as the tests need (hack/stack up --node --flux)"
	@echo "make stack-down   stop the local stack and its node (hack/stack down)"

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@echo "[make] installing Python dependencies into $(VENV)"
	@test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	@$(VENV_PY) -m pip install --quiet --upgrade pip
	@PYTHONWARNINGS=ignore $(VENV_PY) -m pip install --quiet -e '.[test]'
	@touch $@

# The benchmarks' extras (a profiler, plotting), installed only by the bench targets.
bench-venv: $(VENV)/.bench-installed

$(VENV)/.bench-installed: $(VENV)/.installed
	@PYTHONWARNINGS=ignore $(VENV_PY) -m pip install --quiet -e '.[test,bench]'
	@touch $@

stack-up: venv
	@$(STACK) up --kafka-brokers $(KAFKA_BROKERS)

# The stack with its node (kubelet, containerd, kube-scheduler) for the tests that run Pods,
# and Flux for the GitOps tests. Started (and built, the first time) here, not inside a test.
stack-up-all: venv
	@$(STACK) up --kafka-brokers $(KAFKA_BROKERS) --node --flux

stack-down:
	@$(STACK) down

crds: venv
	@$(VENV_PY) -m controllers.crdgen --output crds

argocd-config: venv
	@$(VENV_PY) -m controllers.argocdgen

run: stack-up
	@$(STACK_ENV) && hack/run-operator.sh

lint: venv
	@$(VENV)/bin/ruff check controllers tests hack
	@$(VENV)/bin/mypy
	@$(VENV)/bin/lint-imports

unit: venv
	@$(VENV)/bin/pytest tests/unit

integration: stack-up-all
	@$(STACK_ENV) && $(VENV)/bin/pytest tests/integration

# Lint and the unit tests need no server, so they run while the stack starts; each one's output is shown
# whole when it ends. A failure in any of the three stops make test before the integration tests.
test: venv
	@$(MAKE) --no-print-directory --output-sync=target -j3 lint unit stack-up-all
	@$(STACK_ENV) && $(VENV)/bin/pytest tests/integration

bench-kafka: stack-up bench-venv
	@$(STACK_ENV) && $(VENV_PY) hack/bench/kafka_topics.py $(BENCH_ARGS)

bench-elasticsearch: stack-up
	@$(STACK_ENV) && $(VENV_PY) hack/bench/elasticsearch_indices.py $(BENCH_ARGS)

bench-nifi: stack-up
	@$(STACK_ENV) && $(VENV_PY) hack/bench/nifi_flows.py $(BENCH_ARGS)

image: venv
	@hack/image/build.sh

wheels: venv
	@hack/image/wheels.sh

deploy: venv
	@$(STACK) up --kafka-brokers $(KAFKA_BROKERS) --node
	@$(STACK_ENV) && hack/deploy/deploy.sh

undeploy:
	@$(STACK_ENV) && hack/deploy/undeploy.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache dist build
