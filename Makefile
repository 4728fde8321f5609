# novavms-watcher: `make run` and `make test` are the two commands a newcomer needs.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
CONFIG  ?= config/watcher.toml
STATE   ?= $(CURDIR)/.state

.PHONY: run demo test lint services fuzz bench bench-all bench-readme bench-daemon bench-journal bench-snapshot bench-docker bench-docker-ssh bench-notify bench-state bench-cli bench-metrics install install-system clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# The daemon on the documented config, with its SQLite store under ./.state. Its run file
# tells the CLI in another terminal where it is: no variables to export there.
run: install
	WATCHER_STATE_DIR=$(STATE) $(BIN)/watcher run --config $(CONFIG)

# A whole incident in about a minute on generated logs: no config, no Docker, no SSH.
demo: install
	$(BIN)/watcher demo

# The system install (root): the package in its own venv (not editable, no test extras), the
# service user, /etc/novavms-watcher, /var/lib/novavms-watcher, the unit. systemd/install.sh
# says what each variable does (PREFIX, PYTHON, DOCKER_ACCESS, ROOT).
install-system:
	bash systemd/install.sh

lint: install
	$(BIN)/ruff check watcher tests bench
	$(BIN)/ruff format --check watcher tests bench
	$(BIN)/mypy

# Installs and starts what the tests need (Debian packages, journald, ...), then the whole suite.
services:
	bash tests/services.sh

# The suite includes the fuzz targets (tests/fuzz), bounded to about a minute in all.
test: install services lint
	$(BIN)/pytest --cov

# The fuzz targets alone, FUZZ_SCALE times longer (a soak: make fuzz FUZZ_SCALE=50).
FUZZ_SCALE ?= 10
fuzz: install
	FUZZ_SCALE=$(FUZZ_SCALE) $(BIN)/pytest -m fuzz tests/fuzz

bench: install
	$(BIN)/python bench/classify_bench.py

# Every benchmark at a reduced size (about ten minutes): one table of figure, ours, peer, ratio,
# goal, met? with grep, mtail and `docker logs -t` measured in the same run (bench/out/all.json).
bench-all: install services
	$(BIN)/python bench/all.py

# The README's performance table, from the last bench-all's bench/out/all.json.
bench-readme:
	$(BIN)/python bench/all.py --readme

# Latency, throughput and memory of `watcher run` next to mtail (SOAK=600 for the 10-minute run).
SOAK ?= 60
bench-daemon: install
	$(BIN)/python bench/daemon_bench.py --soak $(SOAK)

# Journal sources: CPU/RSS for 10..200 gateways at 10 entries/s each, and catch-up after an outage (root).
OUTAGE ?= 60
bench-journal: install
	$(BIN)/python -m bench.journal_bench --outage $(OUTAGE)

# Evidence snapshot of 10 containers x 100,000 lines + 20 gateways x 10,000 journal entries, and 1/10th.
bench-snapshot: install services
	$(BIN)/python bench/snapshot_bench.py

# Docker source: 500,000-line read vs `docker logs -t`, and follow latency of 20 containers x 100 lines/s.
bench-docker: install services
	$(BIN)/python bench/docker_bench.py

# The same read over ssh:// (a real sshd on loopback) against `docker -H ssh://`, and a link cut.
bench-docker-ssh: install services
	$(BIN)/python bench/docker_ssh_bench.py

# Start-up time of the CLI commands that talk to the daemon, against `python -c pass`.
OLD_WATCHER ?=
bench-cli: install
	$(BIN)/python bench/cli_startup.py --repeat 30 --installed $(if $(OLD_WATCHER),--watcher $(OLD_WATCHER))

# Announcement latency to a local webhook, and 1,000 messages drained after a NOTIFY_OUTAGE-second outage.
NOTIFY_OUTAGE ?= 600
bench-notify: install
	$(BIN)/python bench/notify_bench.py --outage $(NOTIFY_OUTAGE)

# /metrics of a watcher with 1,000 sources and 50 open incidents: size, series, render and scrape time.
bench-metrics: install
	$(BIN)/python bench/metrics_bench.py

# Bytes the daemon writes in 10 s while 10 incidents hold a 1 MB error line (the state commit's cost).
bench-state: install
	$(BIN)/python -m bench.state_bench

clean:
	rm -rf $(VENV) .state bench/out .mypy_cache .ruff_cache .pytest_cache .hypothesis
