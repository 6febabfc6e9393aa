# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint pytest clean lock plotly-js bench-customer bench-capacity bench-shards bench-starter bench-leaderboard bench-memory bench-flood bench-rehearsal bench-drift figures slides cheatsheet ready-model participant-kit settings-doc

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the declared dependencies change. The checkout gets every extra the
# suite uses (the game alone is `pip install .`, as the Dockerfile does; pyproject.toml).
$(STAMP): $(BIN)/python pyproject.toml participant_starter/requirements.txt constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,pg,notebooks,demo,accounts]' -r participant_starter/requirements.txt
	touch $(STAMP)

install: $(STAMP)

# A whole game with bot teams (docs/DEMO.md); e.g. make demo DEMO_ARGS="--duration 120".
demo: $(STAMP)
	$(BIN)/game-server demo $(DEMO_ARGS)

# Style, the direction of imports between the parts, and types (pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# pytest in one worker more than the cores (pytest-xdist): half the suite waits on games,
# servers and subprocesses (with one worker per core the cores were busy 47 % of the run);
# the `system` tests run one after another on one of them; CI's output ends with the 30
# slowest tests. The budget (README, Tests): `make test` under 15 minutes, `make test-fast`
# under 3, on 2 cores.
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
pytest: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --durations=30 $(PYTEST_ARGS)

test: lint pytest

# Before every commit: the lint and every test not marked slow.
test-fast: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m 'not slow' --durations=10 $(PYTEST_ARGS)

# The customer's benchmark against Locust on the same ports (loopback only, about two
# minutes; `--profile` for pyinstrument); writes docs/PERFORMANCE.md.
# `wrk` is a Debian package (apt-get install -y wrk); without it that ceiling is skipped.
bench-customer: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python bench/customer_bench.py

# A game in shards: one shard's ceiling (most stub teams it holds at the workshop's peak),
# 1,000 teams with 1 and 2 shards, and the database's write rate (loopback and the local
# PostgreSQL only, about six minutes);
# writes docs/PERFORMANCE.md. GAME_BENCH_PG_URL overrides the PostgreSQL admin URL.
bench-shards: $(STAMP)
	$(BIN)/python bench/shard_bench.py

# A flood of every public endpoint during a game, against a quiet game (loopback only,
# about 2 minutes): healthy teams' latency and failures; writes docs/PERFORMANCE.md.
bench-flood: $(STAMP)
	$(BIN)/python bench/flood_bench.py

# The dress rehearsal on this machine, as root: bot teams' whole day and a compressed game
# (docs/PERFORMANCE.md "Rehearsal", the sizing table of docs/INSTRUCTOR.md, game_server/common/sizing.py).
bench-rehearsal: $(STAMP)
	$(BIN)/python bench/rehearsal_bench.py $(REHEARSAL_ARGS)

# The game server's memory over a 3-minute peak phase against 100 stub teams.
bench-memory: $(STAMP)
	$(BIN)/python bench/memory_bench.py

# The leaderboard's benchmark against its floor (loopback only, about ten minutes; needs Debian's `wrk` and
# `chromium`); writes the Leaderboard section of docs/PERFORMANCE.md.
bench-leaderboard: $(STAMP)
	$(BIN)/python bench/leaderboard_bench.py

# The deck's figures (committed in slides/figures/) and the static deck in slides/build/.
# The monitoring screenshot plays a 2-minute demo game first (headless Chromium).
figures: $(STAMP)
	$(BIN)/python scripts/figures.py
	$(BIN)/python scripts/population_shift.py
	$(BIN)/python scripts/screenshot_monitoring.py --demo

slides: $(STAMP)
	@command -v npm >/dev/null || { echo "make slides: npm is not installed (Node.js 18+; Debian: apt-get install npm)"; exit 1; }
	$(BIN)/python scripts/build_slides.py

# docs/SETTINGS.md from the one declaration of the settings (game_server/common/settings.py).
settings-doc: $(STAMP)
	$(BIN)/python scripts/settings_doc.py

# The instructor's one-page cheat sheet, from the marked parts of docs/INSTRUCTOR.md:
# build/cheatsheet.html and (with Chromium) build/cheatsheet.pdf.
cheatsheet: $(STAMP)
	$(BIN)/python scripts/cheatsheet.py

# What participants fetch before the workshop (docs/INSTRUCTOR.md): the starter at the
# workshop's level with the training data, build/participant-kit.tar.gz. At the exercise
# level it holds no solution and nothing that explains the leak.
LEVEL ?= exercises
participant-kit: $(STAMP)
	$(BIN)/python -m game_server.accounts.levels $(LEVEL) build/participant-kit.tar.gz --archive

# The starter's model trained once, for a team stuck at training: build/ready-model/model.pkl.
# On a workshop server run the script with the teams' Python instead (docs/INSTRUCTOR.md).
ready-model: $(STAMP)
	$(BIN)/python scripts/ready_model.py

# Does retraining pay? Each builtin game played 3 times (seeds 1-3) by the demo's starter and
# careful bots (about 27 minutes, holding /tmp/heavy.lock); writes docs/GAMEFILE.md's table.
bench-drift: $(STAMP)
	$(BIN)/python bench/drift_bench.py

# How many starter APIs one machine holds at the workshop's peak, the starter before
# micro-batching against this one, each with a py-spy profile (loopback only, about
# 10 minutes); writes the Capacity section of docs/PERFORMANCE.md.
bench-capacity: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python bench/capacity_bench.py

# The participant starter's API against its bare model (about 40 s); writes docs/PERFORMANCE.md.
bench-starter: $(STAMP)
	$(BIN)/python bench/starter_bench.py

# The versions every install uses (make install, setup_server.sh, the Dockerfile, CI):
# constraints.txt, resolved by uv from pyproject.toml and the starter's requirements for
# every Python this project supports. Run after changing a dependency; commit the result.
lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --custom-compile-command "make lock" \
	  --extra pg --extra demo --extra accounts --extra test --extra notebooks --extra bench \
	  pyproject.toml participant_starter/requirements.txt -o constraints.txt

# Plotly.js for the pages, from npm at the version pinned in scripts/vendor/package.json:
# game_server/static/vendor/plotly.min.js (committed; the installed game needs no Node.js).
plotly-js:
	@command -v npm >/dev/null || { echo "make plotly-js: npm is not installed (Debian: apt-get install npm)"; exit 1; }
	cd scripts/vendor && npm ci --ignore-scripts --no-audit --no-fund --silent
	cp scripts/vendor/node_modules/plotly.js-dist-min/plotly.min.js game_server/static/vendor/plotly.min.js
	rm -rf scripts/vendor/node_modules

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
