# One image for every service in docker-compose.yaml: the Airflow services and the Spark master and
# workers (same Python and pyspark on driver and executors, which PySpark requires).
# The code (dags/, plugins/, spark_jobs/) is not copied in: docker-compose.yaml mounts it.
#
# The slim image: Airflow without the dozens of preinstalled providers of the full one, which
# constraints.txt (every version this project is tested with) could collide with. The full image
# works too if `pip check` below agrees: --build-arg AIRFLOW_BASE_IMAGE=apache/airflow:3.3.2-python3.11
ARG AIRFLOW_BASE_IMAGE=apache/airflow:slim-3.3.2-python3.11
FROM ${AIRFLOW_BASE_IMAGE}

USER root
# Java for Spark (the base image is Debian bookworm). The man1 folder is missing in slim Debian
# images and openjdk's post-install step needs it. curl is used by the healthchecks.
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless curl \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sfn "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /usr/lib/jvm/java-17 \
 && java -version
ENV JAVA_HOME=/usr/lib/jvm/java-17

# Folders that docker-compose.yaml mounts volumes on. A new named volume starts as a copy of the
# image's folder, so it is owned by airflow:0 and group-writable (any AIRFLOW_UID runs with GID 0);
# airflow-init chowns them to AIRFLOW_UID as well. /etc/passwd stays root-group-writable so that
# the image's /entrypoint can add a passwd entry for an arbitrary AIRFLOW_UID (Hadoop's login in
# Spark needs a user name).
RUN mkdir -p /opt/musicrec/data /opt/spark/work /opt/airflow/secrets \
 && chown -R airflow:0 /opt/musicrec /opt/spark /opt/airflow/secrets \
 && chmod 775 /opt/musicrec /opt/musicrec/data /opt/spark /opt/spark/work \
 && chmod 770 /opt/airflow/secrets \
 && chmod g=u /etc/passwd

# pip runs as the airflow user: the image's Python packages live in the virtualenv
# /home/airflow/.local (VIRTUAL_ENV, first on PATH); pip as root is blocked by the image.
# Only the runtime requirements (no pytest). The Spark provider's pyspark-client overwrites part of
# pyspark's own files, so pyspark is reinstalled over it, as `make install` does.
USER airflow
COPY --chown=airflow:0 requirements.txt constraints.txt /opt/musicrec/
RUN pip install --no-cache-dir -r /opt/musicrec/requirements.txt -c /opt/musicrec/constraints.txt \
 && pip install --no-cache-dir --force-reinstall --no-deps pyspark==4.3.0 \
 && pip check \
 && test -x "$(python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')/bin/spark-class"

# ENTRYPOINT stays the image's (dumb-init + /entrypoint): it sets up arbitrary UIDs, waits for the
# database and runs `bash ...` / `python ...` commands as they are (the Spark services use that).

# Spark's classes pre-parsed for the driver JVM (spark_jobs/musicrec/jvm_archive.py): every
# spark-submit starts ~5 s sooner. It lands beside the Python packages, where the jobs look for it.
# pyspark imported from its compiled files rather than Spark's zips of the same sources
# (spark_jobs/musicrec/pyspark_bytecode.py): every Spark step starts ~1.3 s sooner.
COPY --chown=airflow:0 spark_jobs/musicrec/__init__.py spark_jobs/musicrec/jvm_archive.py spark_jobs/musicrec/spark_config.py spark_jobs/musicrec/pyspark_bytecode.py /tmp/musicrec-build/musicrec/
RUN cd /tmp/musicrec-build && python -m musicrec.pyspark_bytecode --require && python -m musicrec.jvm_archive && rm -rf /tmp/musicrec-build
