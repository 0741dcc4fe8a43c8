{{ config(unique_key='page_id') }}

-- Pages, one row each, as last changed.
with delivered as (
    select * from {{ ref('stg_pages') }}
)

select * from delivered
{% if is_incremental() %}
    where {{ new_or_changed('delivered', 'page_id') }}
{% endif %}
