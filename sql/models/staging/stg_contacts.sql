-- The ds's new contacts: names trimmed, emails lower-cased, and the signup
-- day the mart is clustered by.
select
    contact_id,
    trim(first_name) as first_name,
    trim(last_name) as last_name,
    lower(trim(email)) as email,
    company,
    industry,
    lead_source,
    job_title,
    country,
    opted_in,
    signup_date,
    cast(signup_date as date) as signup_day,
    ds as upload_date
from {{ source('raw', 'contacts') }}
where ds = {{ this_ds() }}
