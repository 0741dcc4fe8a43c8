{{ config(severity='warn') }}

-- The ds's form fills should be within half and double of the day
-- before's; a day outside that budget is worth a look, not bad data.
with per_day as (
    select
        count(case when fill_date = {{ this_ds() }} then 1 end) as today_rows,
        count(case when fill_date = {{ this_ds() }} - 1 then 1 end) as yesterday_rows
    from {{ ref('mart_form_fills') }}
)

select
    today_rows,
    yesterday_rows
from per_day
where
    yesterday_rows > 0
    and (today_rows < yesterday_rows / 2 or today_rows > yesterday_rows * 2)
