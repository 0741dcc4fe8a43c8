-- Snowflake objects for marketing-pipeline, run once by an administrator:
--   marketing-pipeline setup        (with PIPELINE_WAREHOUSE_URL=snowflake://)
-- Placeholders are filled from the settings: {{ database }}, {{ warehouse }},
-- {{ role }}, {{ stage }} and {{ lake_url }} (the stage's URL, PIPELINE_LAKE_URL).
-- On DuckDB only the CREATE SCHEMA and CREATE TABLE statements run, without
-- CLUSTER BY; everything is idempotent.

CREATE ROLE IF NOT EXISTS {{ role }};
CREATE WAREHOUSE IF NOT EXISTS {{ warehouse }} WAREHOUSE_SIZE = 'XSMALL' AUTO_SUSPEND = 60 AUTO_RESUME = TRUE INITIALLY_SUSPENDED = TRUE;
CREATE DATABASE IF NOT EXISTS {{ database }};
GRANT USAGE ON WAREHOUSE {{ warehouse }} TO ROLE {{ role }};
GRANT USAGE, CREATE SCHEMA ON DATABASE {{ database }} TO ROLE {{ role }};

CREATE SCHEMA IF NOT EXISTS RAW;
CREATE SCHEMA IF NOT EXISTS STG;
CREATE SCHEMA IF NOT EXISTS MART;

-- The external stage over the lake bucket. In production it authenticates
-- through a storage integration created by an ACCOUNTADMIN, for example:
--   CREATE STORAGE INTEGRATION LAKE_INTEGRATION TYPE = EXTERNAL_STAGE
--     STORAGE_PROVIDER = 'S3' ENABLED = TRUE
--     STORAGE_AWS_ROLE_ARN = 'arn:aws:iam::<account>:role/<snowflake-lake-reader>'
--     STORAGE_ALLOWED_LOCATIONS = ('s3://<lake-bucket>/valid-data/');
-- and then add STORAGE_INTEGRATION = LAKE_INTEGRATION to the stage below.
CREATE FILE FORMAT IF NOT EXISTS RAW.PARQUET_FORMAT TYPE = PARQUET;
CREATE STAGE IF NOT EXISTS {{ stage }} URL = '{{ lake_url }}' FILE_FORMAT = RAW.PARQUET_FORMAT;

-- Which lake file each RAW partition was loaded from: load skips a ds whose
-- file is unchanged.
CREATE TABLE IF NOT EXISTS RAW.LOAD_LOG (
    DATASET VARCHAR NOT NULL,
    DS DATE NOT NULL,
    CONTENT_MD5 VARCHAR NOT NULL,
    ROWS_LOADED BIGINT NOT NULL,
    LOADED_AT TIMESTAMP NOT NULL
);

-- The pipeline's role creates the RAW tables, the staging views and the
-- marts itself (so it owns them and may replace them) and writes
-- RAW.LOAD_LOG created here. Grant the role to the pipeline's user: GRANT ROLE <role> TO USER <user>.
GRANT USAGE, CREATE TABLE ON ALL SCHEMAS IN DATABASE {{ database }} TO ROLE {{ role }};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN DATABASE {{ database }} TO ROLE {{ role }};
GRANT SELECT, INSERT, UPDATE, DELETE ON FUTURE TABLES IN DATABASE {{ database }} TO ROLE {{ role }};
GRANT USAGE ON STAGE {{ stage }} TO ROLE {{ role }};
