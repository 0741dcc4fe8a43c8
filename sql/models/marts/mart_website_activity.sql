{{ config(unique_key='session_id', cluster_by=['event_date']) }}

-- Website sessions, clustered by event date.
with delivered as (
    select * from {{ ref('stg_website_activity') }}
)

select * from delivered
{% if is_incremental() %}
    where {{ new_or_changed('delivered', 'session_id') }}
{% endif %}
