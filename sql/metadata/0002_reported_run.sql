-- The Airflow run that reported a signature, so a retry of that run reports it again.
ALTER TABLE dq_signature_occurrence ADD COLUMN reported_run TEXT;
