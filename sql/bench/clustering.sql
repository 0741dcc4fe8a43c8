-- Clustering benchmark, DuckDB side (README "Clustering benchmark"; run with
-- `bash benches/clustering.sh`): 10M website sessions over a year, stored
-- once in random order and once ordered by EVENT_DATE, as MART_WEBSITE_ACTIVITY
-- is clustered on Snowflake. clustering_queries.sql then filters one week.
CREATE OR REPLACE TABLE MART.BENCH_ACTIVITY_UNCLUSTERED AS
SELECT
    md5(CAST(i AS VARCHAR)) AS SESSION_ID,
    'cmp-' || CAST(i % 20 AS VARCHAR) AS CAMPAIGN_ID,
    CAST('2025-01-01' AS DATE) + CAST(i % 365 AS INTEGER) AS EVENT_DATE,
    CAST(i % 1800 AS DOUBLE) AS SESSION_DURATION,
    1 + i % 12 AS PAGES_VIEWED
FROM range(10000000) AS t(i)
ORDER BY hash(i);

CREATE OR REPLACE TABLE MART.BENCH_ACTIVITY_CLUSTERED AS
SELECT * FROM MART.BENCH_ACTIVITY_UNCLUSTERED
ORDER BY EVENT_DATE;
