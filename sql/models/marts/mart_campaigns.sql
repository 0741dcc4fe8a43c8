{{ config(unique_key='campaign_id') }}

-- Campaigns, one row each, as last changed.
with delivered as (
    select * from {{ ref('stg_campaigns') }}
)

select * from delivered
{% if is_incremental() %}
    where {{ new_or_changed('delivered', 'campaign_id') }}
{% endif %}
