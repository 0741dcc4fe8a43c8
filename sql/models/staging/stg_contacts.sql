-- This ds's new contacts: names trimmed, emails lower-cased, and the signup
-- day that the mart is clustered by.
CREATE OR REPLACE TABLE STG.STG_CONTACTS AS
SELECT
    CONTACT_ID,
    TRIM(FIRST_NAME) AS FIRST_NAME,
    TRIM(LAST_NAME) AS LAST_NAME,
    LOWER(TRIM(EMAIL)) AS EMAIL,
    COMPANY,
    INDUSTRY,
    LEAD_SOURCE,
    JOB_TITLE,
    COUNTRY,
    OPTED_IN,
    SIGNUP_DATE,
    CAST(SIGNUP_DATE AS DATE) AS SIGNUP_DAY,
    DS AS UPLOAD_DATE
FROM RAW.CONTACTS
WHERE DS = CAST('{{ ds }}' AS DATE)
