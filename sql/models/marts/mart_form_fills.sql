{{ config(unique_key='fill_id', cluster_by=['fill_date']) }}

-- Form submissions with their form's type joined in, clustered by fill date.
with delivered as (
    select
        fills.fill_id,
        fills.form_id,
        forms.form_type,
        fills.contact_id,
        fills.campaign_id,
        fills.fill_date,
        fills.referrer_url,
        fills.user_agent,
        fills.estimated_value,
        fills.upload_date
    from {{ ref('stg_form_fills') }} as fills
    left join {{ ref('mart_forms') }} as forms on fills.form_id = forms.form_id
)

select * from delivered
{% if is_incremental() %}
    where {{ new_or_changed('delivered', 'fill_id') }}
{% endif %}
