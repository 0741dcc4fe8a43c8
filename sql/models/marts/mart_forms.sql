{{ config(unique_key='form_id') }}

-- Forms, one row each, as last changed.
with delivered as (
    select * from {{ ref('stg_forms') }}
)

select * from delivered
{% if is_incremental() %}
    where {{ new_or_changed('delivered', 'form_id') }}
{% endif %}
