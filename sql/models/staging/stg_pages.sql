-- The site's pages delivered for the ds.
select
    page_id,
    page_url,
    trim(page_title) as page_title,
    ds as upload_date
from {{ source('raw', 'pages') }}
where ds = {{ this_ds() }}
