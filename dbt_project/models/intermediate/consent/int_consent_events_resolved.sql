-- One row per consent event with the customer its subject resolves to through identity (null
-- when nobody): the one place consent events meet identity, for fct_consent_events and the
-- consent states.
with

consent_events as (

    select * from {{ ref('stg_consent__events') }}

),

records as (

    select * from {{ ref('stg_identity__records') }}

),

final as (

    select
        consent_events.consent_event_id,
        records.customer_id,
        consent_events.subject_type,
        consent_events.purpose,
        consent_events.consent_status,
        consent_events.is_granted,
        consent_events.consent_source,
        consent_events.recorded_at
    from consent_events
    left join records
        on 'consent:' || consent_events.consent_event_id = records.record_key

)

select * from final
