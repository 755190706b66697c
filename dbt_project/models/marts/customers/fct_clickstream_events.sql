-- One row per tracking event with the customer it belongs to: through its login, else its
-- cookie or device once they are tied to a person (back to their first event), unless shared.
with

events as (

    select * from {{ ref('stg_clickstream__events') }}

),

records as (

    select * from {{ ref('stg_identity__records') }}

),

final as (

    select
        events.event_id,
        records.customer_id,
        events.event_type,
        events.anonymous_id,
        events.user_id,
        events.device_id,
        events.occurred_at,
        events.page_url,
        events.product_id,
        events.properties,
        events.is_logged_in
    from events
    left join records
        on {{ visit_record_key('events.anonymous_id', 'events.user_id', 'events.device_id') }} = records.record_key

)

select * from final
