{#- Landed text -> `data_type`; empty or blank text -> null (the loader lands every value as text). -#}
{% macro cast_text(column_name, data_type) -%}
    cast({{ blank_to_null(column_name) }} as {{ data_type }})
{%- endmacro %}
