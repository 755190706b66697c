{#- Generated from ml/landing/feeds.yml by `make contracts`: edit that file, not this one.
    The zone of a feed's timestamps written without an offset. -#}
{% macro feed_timezone(feed) -%}
    {%- set zones = {'crm': 'Europe/London', 'orders': 'Europe/London', 'clickstream': 'UTC', 'accounts': 'UTC', 'products': 'UTC', 'consent': 'UTC', 'erasure': 'UTC'} -%}
    {%- if feed not in zones -%}
        {{ exceptions.raise_compiler_error("feed_timezone: no feed '" ~ feed ~ "' in feeds.yml") }}
    {%- endif -%}
    {{ return(zones[feed]) }}
{%- endmacro %}
