-- One row per consent event with the customer its subject resolves to through identity (null
-- when nobody): the one place consent events meet identity, for fct_consent_events and the
-- consent states. Identity's own decision for the event's record comes first; an event it has
-- not seen yet (landed after the last identity run) resolves through its subject's identifier,
-- so the live consent views see a new withdrawal at once.
with

consent_events as (

    select * from {{ ref('stg_consent__events') }}

),

records as (

    select * from {{ ref('stg_identity__records') }}

),

identifiers as (

    select * from {{ ref('stg_identity__identifiers') }}
    where customer_id is not null

),

final as (

    select
        consent_events.consent_event_id,
        coalesce(records.customer_id, identifiers.customer_id) as customer_id,
        consent_events.subject_type,
        consent_events.purpose,
        consent_events.consent_status,
        consent_events.is_granted,
        consent_events.consent_source,
        consent_events.recorded_at
    from consent_events
    left join records
        on 'consent:' || consent_events.consent_event_id = records.record_key
    left join identifiers
        on
            consent_events.subject_type = identifiers.id_type
            and consent_events.subject = identifiers.id_value

)

select * from final
