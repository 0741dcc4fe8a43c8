-- severity: warn
-- Today's form fills should be within half and double of yesterday's; a
-- day outside that budget is worth a look but is not bad data by itself.
SELECT today.N AS TODAY_ROWS, yesterday.N AS YESTERDAY_ROWS
FROM (
    SELECT COUNT(*) AS N FROM MART.MART_FORM_FILLS
    WHERE FILL_DATE = CAST('{{ ds }}' AS DATE)
) AS today
CROSS JOIN (
    SELECT COUNT(*) AS N FROM MART.MART_FORM_FILLS
    WHERE FILL_DATE = CAST('{{ previous_ds }}' AS DATE)
) AS yesterday
WHERE yesterday.N > 0 AND (today.N < yesterday.N / 2 OR today.N > yesterday.N * 2)
