-- The campaigns delivered for the ds.
select
    campaign_id,
    trim(campaign_name) as campaign_name,
    ds as upload_date
from {{ source('raw', 'campaigns') }}
where ds = {{ this_ds() }}
