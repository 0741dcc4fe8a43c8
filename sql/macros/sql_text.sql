{#- A Jinja string as a SQL string literal. Snowflake also reads
    backslashes in literals as escapes, so they are doubled there. -#}
{% macro sql_string(value) -%}
    {%- set text = value | string | replace("'", "''") -%}
    {%- if target.type == 'snowflake' -%}
        {%- set text = text | replace('\\', '\\\\') -%}
    {%- endif -%}
    '{{ text }}'
{%- endmacro %}

{#- A Jinja value as a SQL literal: strings quoted, numbers and booleans
    as they are. -#}
{% macro sql_literal(value) -%}
    {%- if value is string -%}
        {{ sql_string(value) }}
    {%- else -%}
        {{ value }}
    {%- endif -%}
{%- endmacro %}

{#- Values as a SQL list: string literals, or as they are without quote. -#}
{% macro sql_list(values, quote=True) -%}
    {%- for value in values -%}
        {{ sql_string(value) if quote else value }}{{ ", " if not loop.last else "" }}
    {%- endfor -%}
{%- endmacro %}

{#- Whether `expression` contains a match of the regular expression
    `pattern` anywhere (anchor it with ^ and $ for a whole match). -#}
{% macro regexp_search(expression, pattern) -%}
    {%- if target.type == 'snowflake' -%}
        regexp_instr({{ expression }}, {{ sql_string(pattern) }}) > 0
    {%- else -%}
        regexp_matches({{ expression }}, {{ sql_string(pattern) }})
    {%- endif -%}
{%- endmacro %}

{#- Text compared ignoring case and spacing: 'Contact Us' and
    'contact_us' alike, as the validator compares. -#}
{% macro normalized_text(expression) -%}
    trim(regexp_replace(lower(trim({{ expression }})), '[[:space:]_-]+', '_'{% if target.type != 'snowflake' %}, 'g'{% endif %}), '_')
{%- endmacro %}
