{#-
    The point-in-time cutoff of the feature layer as a SQL timestamp literal (UTC, exclusive):
    feature models use only rows that happened strictly before it. From the `as_of` var:
    a bare date `2026-11-20` means the end of that day (cutoff 2026-11-21 00:00:00); a
    timestamp `2026-11-20T15:30[:00[.123456]]` is the cutoff itself, with `Z` or an offset
    (`+01:00`) converted to UTC; empty or unset means the time the dbt run started.
    Anything else fails compilation with a message naming the var and the formats it takes.
-#}
{% macro as_of_cutoff() -%}
    {%- set raw_value = var('as_of', '') -%}
    {%- set text = '' if raw_value is none else (raw_value | string | trim) -%}
    {%- set datetime = modules.datetime -%}
    {%- if text == '' -%}
        {%- set cutoff = run_started_at.astimezone(modules.pytz.utc).replace(tzinfo=none) -%}
    {%- else -%}
        {%- set pattern = '^([0-9]{4})-([0-9]{2})-([0-9]{2})'
            ~ '(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.]([0-9]{1,6}))?)?([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?$' -%}
        {%- set match = modules.re.match(pattern, text) -%}
        {%- set problem = 'it is not YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z|+HH:MM]' -%}
        {%- if match -%}
            {%- set year = match.group(1) | int -%}
            {%- set month = match.group(2) | int -%}
            {%- set day = match.group(3) | int -%}
            {%- if year < 1 or month < 1 or month > 12 or day < 1 -%}
                {%- set problem = 'there is no such date' -%}
            {%- else -%}
                {%- set next_month_start = datetime.date(year + 1, 1, 1) if month == 12
                    else datetime.date(year, month + 1, 1) -%}
                {%- set days_in_month = (next_month_start - datetime.date(year, month, 1)).days -%}
                {%- if day > days_in_month -%}
                    {%- set problem = 'there is no such date' -%}
                {%- elif match.group(4) and ((match.group(4) | int) > 23 or (match.group(5) | int) > 59
                        or (match.group(6) or '0') | int > 59) -%}
                    {%- set problem = 'there is no such time of day' -%}
                {%- else -%}
                    {%- set problem = none -%}
                {%- endif -%}
            {%- endif -%}
        {%- endif -%}
        {%- if problem is not none -%}
            {{ exceptions.raise_compiler_error(
                "dbt var `as_of` is '" ~ text ~ "', but " ~ problem ~ ". Give a UTC date (2026-11-20, "
                ~ "meaning the end of that day) or timestamp (2026-11-20T15:30:00, optionally with Z or "
                ~ "an offset such as +01:00), or leave it empty for the run time."
            ) }}
        {%- endif -%}
        {%- if match.group(4) -%}
            {%- set parsed = datetime.datetime.fromisoformat(text | replace('z', 'Z') | replace('Z', '+00:00')) -%}
            {%- if parsed.tzinfo is not none -%}
                {%- set parsed = parsed.astimezone(modules.pytz.utc).replace(tzinfo=none) -%}
            {%- endif -%}
            {%- set cutoff = parsed -%}
        {%- else -%}
            {%- set cutoff = datetime.datetime(year, month, day) + datetime.timedelta(days=1) -%}
        {%- endif -%}
    {%- endif -%}
    cast('{{ cutoff.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}
