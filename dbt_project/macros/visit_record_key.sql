{#- The record key of one browsing combination (cookie, login, device) in identity resolution. -#}
{% macro visit_record_key(anonymous_id, user_id, device_id) -%}
    'visit:' || md5(concat_ws('|', {{ anonymous_id }}, coalesce({{ user_id }}, ''), coalesce({{ device_id }}, '')))
{%- endmacro %}
