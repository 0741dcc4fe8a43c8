-- The ds's form submissions.
select
    fill_id,
    form_id,
    contact_id,
    campaign_id,
    fill_date,
    referrer_url,
    user_agent,
    round(estimated_value, 2) as estimated_value,
    ds as upload_date
from {{ source('raw', 'form_fills') }}
where ds = {{ this_ds() }}
