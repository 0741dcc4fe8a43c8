{#- The contract's format tests, the validator's patterns in SQL (without
    backslashes, which the two warehouses read differently). -#}

{% test email_format(model, column_name) %}
select {{ column_name }}
from {{ model }}
where
    {{ column_name }} is not null
    and not {{ regexp_search(column_name, "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+([.][A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?[.])+[A-Za-z]{2,63}$") }}
{% endtest %}

{% test uuid_format(model, column_name) %}
select {{ column_name }}
from {{ model }}
where
    {{ column_name }} is not null
    and not {{ regexp_search(column_name, "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$") }}
{% endtest %}

{% test matches_pattern(model, column_name, pattern) %}
select {{ column_name }}
from {{ model }}
where
    {{ column_name }} is not null
    and not {{ regexp_search(column_name, pattern) }}
{% endtest %}
