{#- Trimmed text, or null when the text is empty or only blanks. -#}
{% macro blank_to_null(column_name) -%}
    nullif(trim({{ column_name }}), '')
{%- endmacro %}
