-- Clickstream events before the as_of cutoff, each with the owner its session and cart belong
-- to: the customer when the event resolves to one, else the cookie (`cookie:<anonymous_id>`).
-- A view: its readers (fct_sessions, int_cart_adds_evaluated, customer_features) each take a
-- different slice of tens of millions of events, so copying them all into a table only costs.
{{ config(materialized='view') }}
with

events as (

    select * from {{ ref('fct_clickstream_events') }}

),

final as (

    select
        event_id,
        customer_id,
        coalesce(customer_id, 'cookie:' || anonymous_id) as session_owner,
        anonymous_id,
        device_id,
        event_type,
        occurred_at,
        page_url
    from events
    where
        occurred_at < {{ as_of_cutoff() }}
        and coalesce(customer_id, anonymous_id) is not null

)

select * from final
