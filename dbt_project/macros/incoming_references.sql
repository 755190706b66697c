{#-
    The references one feed makes to another, checked as incoming data (not our logic): an order
    line's product sku and crm id, a clickstream event's product sku, a consent event's crm id.
    A reference that does not resolve is a data-quality finding: the row is kept, counted in
    marts.fct_unresolved_references, and the run goes on (see docs/landing.md). `personal`
    references never show their values as examples.
-#}
{% macro incoming_references() %}
    {{ return([
        {
            "reference": "order_line_product",
            "model": "stg_orders__order_lines",
            "column": "product_id",
            "to": "stg_products__products",
            "field": "product_id",
            "where": none,
            "personal": false,
        },
        {
            "reference": "order_line_crm_id",
            "model": "stg_orders__order_lines",
            "column": "crm_id",
            "to": "stg_crm__customers",
            "field": "crm_id",
            "where": none,
            "personal": true,
        },
        {
            "reference": "event_product",
            "model": "stg_clickstream__events",
            "column": "product_id",
            "to": "stg_products__products",
            "field": "product_id",
            "where": none,
            "personal": false,
        },
        {
            "reference": "consent_subject_crm_id",
            "model": "stg_consent__events",
            "column": "subject",
            "to": "stg_crm__customers",
            "field": "crm_id",
            "where": "subject_type = 'crm_id'",
            "personal": true,
        },
    ]) }}
{% endmacro %}
