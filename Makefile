# Two commands do everything:  make run   (the whole DAG on the embedded sample)
#                              make test  (the test suite)
# Both create .venv and install the pinned dependencies the first time.

PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
JVM_ARCHIVE := $(VENV)/share/musicrec/spark-driver.jsa
PYSPARK_BYTECODE := $(VENV)/.pyspark-bytecode
DATASET_URL ?=
CONF ?= {"dataset_url": "$(DATASET_URL)"}

# Airflow and Spark settings for a laptop; override any of them from the environment.
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW_CONN_SPARK_DEFAULT ?= {"conn_type": "spark", "host": "local[*]"}
export MUSICREC_DATA_ROOT ?= $(CURDIR)/data
export SPARK_LOCAL_IP ?= 127.0.0.1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test install check-java clean bench

DATA_ROOT_STAMP := $(AIRFLOW_HOME)/musicrec_data_root

run: install check-java $(AIRFLOW_HOME)/airflow.db
	@# Another data root than last time: the DAG's Asset URI (the published CSV) changed with it,
	@# and without a scheduler nobody activates the new one (scripts/refresh_assets.py).
	@if [ "$$(cat $(DATA_ROOT_STAMP) 2>/dev/null)" != "$(MUSICREC_DATA_ROOT)" ]; then \
		{ $(BIN)/airflow dags reserialize && $(BIN)/python scripts/refresh_assets.py; } > $(AIRFLOW_HOME)/refresh_assets.log 2>&1 \
		|| { echo "ERROR: could not refresh the DAG's Asset for data root $(MUSICREC_DATA_ROOT): see $(AIRFLOW_HOME)/refresh_assets.log"; exit 1; }; \
		echo "$(MUSICREC_DATA_ROOT)" > $(DATA_ROOT_STAMP); fi
	@started=$$(date +%s); \
	$(BIN)/airflow dags test music_recommendation -c '$(CONF)' > $(AIRFLOW_HOME)/last_run.log 2>&1; status=$$?; \
	echo "(full log: $(AIRFLOW_HOME)/last_run.log; DAG wall time $$(( $$(date +%s) - started )) s)"; \
	if [ $$status -ne 0 ]; then grep -hE "ERROR|Error|failed" $(AIRFLOW_HOME)/last_run.log | grep -v "^\s*File" | tail -5; fi; \
	$(BIN)/python scripts/summarize_run.py --since $$started; exit $$status

test: install check-java
	$(BIN)/python -m pytest

install: $(VENV)/.installed $(PYSPARK_BYTECODE) $(JVM_ARCHIVE)

$(VENV)/.installed: requirements.txt requirements-test.txt constraints.txt
	@# tarfile's extraction filters (safe extraction) arrived in 3.10.12 and 3.11.4.
	@$(PYTHON) -c 'import sys; v = sys.version_info[:3]; sys.exit(not ((3, 10, 12) <= v < (3, 11) or v >= (3, 11, 4)))' \
		|| { echo "ERROR: $(PYTHON) is too old: Python 3.10.12+ or 3.11.4+ is needed; set PYTHON=python3.11 (or newer)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements-test.txt -c constraints.txt
	@# The Spark provider's pyspark-client overwrites part of pyspark's own files: put them back.
	$(BIN)/pip install --quiet --force-reinstall --no-deps pyspark==4.3.0
	touch $@

# Every Python process of a spark-submit imports pyspark from its compiled files, not from Spark's
# zips of the same sources (spark_jobs/musicrec/pyspark_bytecode.py): ~1.3 s less per Spark step.
$(PYSPARK_BYTECODE): $(VENV)/.installed spark_jobs/musicrec/pyspark_bytecode.py
	@PYTHONPATH=spark_jobs $(BIN)/python -m musicrec.pyspark_bytecode --require && touch $@ \
		|| echo "WARNING: pyspark is imported from Spark's zips (slower); make install tries again"

# Spark's classes pre-parsed for the driver JVM (spark_jobs/musicrec/jvm_archive.py): built once,
# ~1 min; every spark-submit then starts ~5 s sooner. Without Java, or if it fails, jobs run without it.
$(JVM_ARCHIVE): $(VENV)/.installed spark_jobs/musicrec/jvm_archive.py
	@if command -v java >/dev/null 2>&1 || test -x "$$JAVA_HOME/bin/java"; then \
		echo "Building the JVM class-data-sharing archive (once, about a minute)"; \
		PYTHONPATH=spark_jobs $(BIN)/python -m musicrec.jvm_archive \
			|| echo "WARNING: the JVM archive was not built; Spark jobs start without it (slower)"; \
	fi

check-java:
	@command -v java >/dev/null 2>&1 || test -x "$$JAVA_HOME/bin/java" || { \
		echo "ERROR: Spark needs Java 17 or newer, and no 'java' is on PATH (nor JAVA_HOME set)."; \
		echo "       Install it, e.g. 'sudo apt-get install openjdk-17-jre-headless', then run make again."; exit 1; }

$(AIRFLOW_HOME)/airflow.db: $(VENV)/.installed
	$(BIN)/airflow db migrate > /dev/null
	@# A new setup has no Asset to refresh; an existing one without a stamp refreshes once.
	@test -f $(DATA_ROOT_STAMP) || test -n "$$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" || echo "$(MUSICREC_DATA_ROOT)" > $(DATA_ROOT_STAMP)

# make bench                      the sample and ml-latest-small (if ../shared has it)
# make bench SIZE="1m 5m 25m"     generated datasets of those sizes (bench/generate.py, kept in bench/data/)
bench: install check-java
	$(BIN)/pip install --quiet -r bench/requirements.txt -c constraints.txt
	$(BIN)/python bench/run_bench.py $(if $(SIZE),--sizes $(SIZE))

clean:
	rm -rf $(AIRFLOW_HOME) data .pytest_cache
