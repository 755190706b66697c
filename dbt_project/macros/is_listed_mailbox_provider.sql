{#- Generated from ml/landing/feeds.yml (mailbox_providers) by `make contracts`: edit
    that file, not this one. True for an address in its normal form at a domain of mailbox_providers. -#}
{% macro is_listed_mailbox_provider(email) -%}
    coalesce(regexp_extract({{ email }}, '@([^@]*)$', 1) in ('fastmail.com', 'gmail.com', 'googlemail.com', 'hotmail.co.uk', 'hotmail.com', 'hotmail.es', 'hotmail.fr', 'hotmail.nl', 'live.co.uk', 'live.com', 'live.nl', 'outlook.com', 'outlook.de', 'outlook.es', 'proton.me', 'protonmail.com'), false)
{%- endmacro %}
