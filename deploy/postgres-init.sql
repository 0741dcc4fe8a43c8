-- docker-compose.yml: the pipeline's metadata gets its own database beside
-- Airflow's (the first task creates its tables).
CREATE DATABASE pipeline_metadata;
