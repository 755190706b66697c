-- One row per consent event with the customer its subject resolves to (null when nobody).
with

consent_events as (

    select * from {{ ref('int_consent_events_resolved') }}

),

final as (

    select
        consent_event_id,
        customer_id,
        subject_type,
        purpose,
        consent_status,
        is_granted,
        consent_source,
        recorded_at
    from consent_events

)

select * from final
