#!/bin/sh
# Amazon MWAA startup script (docs/deploy.md, "Amazon MWAA"): MWAA runs it on every
# scheduler, worker and web server before Airflow starts, and the variables it exports are
# the environment the DAG is parsed in. Fill in the <...> values, upload it to the
# environment's bucket and point --startup-script-s3-path at it.
# Every setting, with its default: docs/deploy.md, "The DAG's settings".

# Each task a pod on the EKS cluster, reached with the execution role (connection aws_default).
export PIPELINE_RUNNER=eks
export PIPELINE_EKS_CLUSTER="<cluster-name>"
export PIPELINE_EKS_REGION="<region>"
export PIPELINE_IMAGE="<account-id>.dkr.ecr.<region>.amazonaws.com/marketing-pipeline:<version>"

# The namespace, service account, ConfigMap and Secret of deploy/kubernetes.yaml.
export PIPELINE_NAMESPACE=marketing-pipeline
export PIPELINE_SERVICE_ACCOUNT=marketing-pipeline
export PIPELINE_CONFIGMAP=marketing-pipeline-config
export PIPELINE_SECRET=marketing-pipeline-secrets

# Alerts: recipients for the smtp_default connection (unset: no email).
export PIPELINE_ALERT_EMAIL="<data-team@example.com>"
