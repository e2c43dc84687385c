# One image for every service in docker-compose.yaml: Airflow, and the Spark master and workers
# (same Python and pyspark on driver and executors, which PySpark requires).
FROM apache/airflow:3.3.2-python3.11
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/*
USER airflow
COPY requirements.txt constraints.txt /opt/musicrec/
RUN pip install --no-cache-dir -r /opt/musicrec/requirements.txt -c /opt/musicrec/constraints.txt \
 && pip install --no-cache-dir --force-reinstall --no-deps pyspark==4.3.0
