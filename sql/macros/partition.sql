{#- The ds this run builds, as a DATE. -#}
{% macro this_ds() -%}
    cast('{{ var("ds") }}' as date)
{%- endmacro %}

{#- The rows of `delivered` an incremental mart takes: new keys, and keys
    whose values changed (upload_date aside), unless the mart already holds
    the key from a later ds, so that re-running a ds changes nothing and
    re-running an old one never overwrites newer data. -#}
{% macro new_or_changed(delivered, key) -%}
    {{ key }} in (
        select changed.{{ key }}
        from (
            select * exclude (upload_date) from {{ delivered }}
            except
            select * exclude (upload_date) from {{ this }}
        ) as changed
    )
    and not exists (
        select 1
        from {{ this }} as existing
        where
            existing.{{ key }} = {{ delivered }}.{{ key }}
            and existing.upload_date > {{ delivered }}.upload_date
    )
{%- endmacro %}
