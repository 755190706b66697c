-- One row per consent event with the customer its subject resolves to (null when nobody), as
-- int_subjects_resolved decides it (identity's decision for the event's record, else its typed
-- identifier, so the live consent views see a withdrawal landed after the last identity run).
-- fct_consent_events and the consent states read it.
with

consent_events as (

    select * from {{ ref('stg_consent__events') }}

),

subjects as (

    select * from {{ ref('int_subjects_resolved') }}
    where source = 'consent'

),

final as (

    select
        consent_events.consent_event_id,
        subjects.customer_id,
        consent_events.subject_type,
        consent_events.purpose,
        consent_events.consent_status,
        consent_events.is_granted,
        consent_events.consent_source,
        consent_events.recorded_at
    from consent_events
    left join subjects
        on consent_events.consent_event_id = subjects.source_event_id

)

select * from final
