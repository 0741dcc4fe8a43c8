{#- dbt's accepted_values, plus `normalized`: compare ignoring case and
    spacing, as the contracts allow. -#}
{% test accepted_values(model, column_name, values, quote=True, normalized=False) %}
{%- set compared = normalized_text(column_name) if normalized else column_name -%}
with all_values as (
    select
        {{ compared }} as value_field,
        count(*) as n_records
    from {{ model }}
    group by {{ compared }}
)

select *
from all_values
where value_field not in ({{ sql_list(values, quote) }})
{% endtest %}

{% test range(model, column_name, min=none, max=none) %}
{%- set low = column_name ~ " >= " ~ min if min is not none else "true" -%}
{%- set high = column_name ~ " <= " ~ max if max is not none else "true" -%}
select {{ column_name }}
from {{ model }}
where
    {{ column_name }} is not null
    and not ({{ low }} and {{ high }})
{% endtest %}

{#- A flag that must be true exactly when another column has a value, as
    bounce is exactly when one page was viewed. -#}
{% test true_exactly_when(model, column_name, column, value) %}
select
    {{ column_name }},
    {{ column }}
from {{ model }}
where {{ column_name }} != ({{ column }} = {{ sql_literal(value) }})
{% endtest %}
