{{ config(unique_key='contact_id', cluster_by=['signup_day']) }}

-- Contacts, one row each, clustered by signup day.
with delivered as (
    select * from {{ ref('stg_contacts') }}
)

select * from delivered
{% if is_incremental() %}
    where {{ new_or_changed('delivered', 'contact_id') }}
{% endif %}
