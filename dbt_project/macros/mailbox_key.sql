{#- Generated from ml/landing/feeds.yml (mailbox_providers) by `make contracts`: edit
    that file, not this one. The mailbox an address in its normal form reaches. -#}
{% macro mailbox_key(email) -%}
    (case regexp_extract({{ email }}, '@([^@]*)$', 1)
        when 'fastmail.com' then coalesce(nullif(split_part(regexp_extract({{ email }}, '^(.*)@[^@]*$', 1), '+', 1), '') || '@fastmail.com', {{ email }})
        when 'gmail.com' then coalesce(nullif(replace(split_part(regexp_extract({{ email }}, '^(.*)@[^@]*$', 1), '+', 1), '.', ''), '') || '@gmail.com', {{ email }})
        when 'googlemail.com' then coalesce(nullif(replace(split_part(regexp_extract({{ email }}, '^(.*)@[^@]*$', 1), '+', 1), '.', ''), '') || '@gmail.com', {{ email }})
        when 'hotmail.co.uk' then coalesce(nullif(split_part(regexp_extract({{ email }}, '^(.*)@[^@]*$', 1), '+', 1), '') || '@hotmail.co.uk', {{ email }})
        when 'hotmail.com' then coalesce(nullif(split_part(regexp_extract({{ email }}, '^(.*)@[^@]*$', 1), '+', 1), '') || '@hotmail.com', {{ email }})
        when 'hotmail.es' then coalesce(nullif(split_part(regexp_extract({{ email }}, '^(.*)@[^@]*$', 1), '+', 1), '') || '@hotmail.es', {{ email }})
        when 'hotmail.fr' then coalesce(nullif(split_part(regexp_extract({{ email }}, '^(.*)@[^@]*$', 1), '+', 1), '') || '@hotmail.fr', {{ email }})
        when 'hotmail.nl' then coalesce(nullif(split_part(regexp_extract({{ email }}, '^(.*)@[^@]*$', 1), '+', 1), '') || '@hotmail.nl', {{ email }})
        when 'live.co.uk' then coalesce(nullif(split_part(regexp_extract({{ email }}, '^(.*)@[^@]*$', 1), '+', 1), '') || '@live.co.uk', {{ email }})
        when 'live.com' then coalesce(nullif(split_part(regexp_extract({{ email }}, '^(.*)@[^@]*$', 1), '+', 1), '') || '@live.com', {{ email }})
        when 'live.nl' then coalesce(nullif(split_part(regexp_extract({{ email }}, '^(.*)@[^@]*$', 1), '+', 1), '') || '@live.nl', {{ email }})
        when 'outlook.com' then coalesce(nullif(split_part(regexp_extract({{ email }}, '^(.*)@[^@]*$', 1), '+', 1), '') || '@outlook.com', {{ email }})
        when 'outlook.de' then coalesce(nullif(split_part(regexp_extract({{ email }}, '^(.*)@[^@]*$', 1), '+', 1), '') || '@outlook.de', {{ email }})
        when 'outlook.es' then coalesce(nullif(split_part(regexp_extract({{ email }}, '^(.*)@[^@]*$', 1), '+', 1), '') || '@outlook.es', {{ email }})
        when 'proton.me' then coalesce(nullif(split_part(regexp_extract({{ email }}, '^(.*)@[^@]*$', 1), '+', 1), '') || '@proton.me', {{ email }})
        when 'protonmail.com' then coalesce(nullif(split_part(regexp_extract({{ email }}, '^(.*)@[^@]*$', 1), '+', 1), '') || '@protonmail.com', {{ email }})
        else {{ email }} end)
{%- endmacro %}
