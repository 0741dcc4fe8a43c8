-- The forms delivered for the ds, their type in lower case.
select
    form_id,
    lower(form_type) as form_type,
    ds as upload_date
from {{ source('raw', 'forms') }}
where ds = {{ this_ds() }}
