{#-
    ISO 8601 timestamp text -> TIMESTAMP in UTC (no zone attached, meaning UTC).
    Text with an offset or Z is converted with its own offset; text without one is read
    in `timezone`, the feed's declared zone. Never cast offset text straight to TIMESTAMP:
    DuckDB then drops the offset silently.
-#}
{% macro to_utc_timestamp(column_name, timezone) -%}
    {%- set value = "nullif(trim(" ~ column_name ~ "), '')" -%}
    case
        when regexp_matches({{ value }}, '[T ][0-9:.]+([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$')
            then timezone('UTC', cast(upper({{ value }}) as timestamptz))
        {%- if timezone | upper == 'UTC' %}
        else cast({{ value }} as timestamp)
        {%- else %}
        else timezone('UTC', timezone('{{ timezone }}', cast({{ value }} as timestamp)))
        {%- endif %}
    end
{%- endmacro %}
