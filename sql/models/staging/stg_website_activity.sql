-- The ds's website sessions.
select
    session_id,
    contact_id,
    campaign_id,
    page_id,
    page_url,
    page_title,
    event_date,
    event_type,
    session_duration,
    pages_viewed,
    bounce,
    referrer_domain,
    ds as upload_date
from {{ source('raw', 'website_activity') }}
where ds = {{ this_ds() }}
