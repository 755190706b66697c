-- Who each consent event and erasure request is about: one row per subject with the customer
-- it resolves to (null when nobody). Teal's one subject -> customer rule, read by consent
-- (int_consent_events_resolved), suppression (int_suppressions), the erasure facts
-- (fct_erasure_requests) and the Python erasure (ml/privacy/subjects.py).
--
-- Identity's own decision for the subject's record (`consent:<event id>`, `erasure:<request
-- id>`, the record keys of int_identifiers_observed) comes first. A subject identity has not
-- seen yet (landed after its last run) resolves through its typed identifier: the loader
-- normalised it as it normalises every identifier identity reads (an email trimmed and
-- lower-cased, a crm id upper-cased), so it meets identity's value of the same type exactly;
-- an email identity has not seen in that spelling meets the mailbox it reaches (macro
-- `mailbox_key`: `camille.dumont@gmail.com` is the mailbox of `camilledumont@gmail.com`).
-- A view, so a withdrawal or an erasure request counts as soon as it is landed.
with

consent_events as (

    select * from {{ ref('stg_consent__events') }}

),

erasure_requests as (

    select * from {{ ref('stg_erasure__requests') }}

),

records as (

    select * from {{ ref('stg_identity__records') }}

),

identifiers as (

    select * from {{ ref('stg_identity__identifiers') }}
    where customer_id is not null

),

subjects as (

    select
        'consent:' || consent_event_id as record_key,
        'consent' as source,
        consent_event_id as source_event_id,
        subject_type,
        subject
    from consent_events

    union all

    select
        'erasure:' || erasure_request_id as record_key,
        'erasure' as source,
        erasure_request_id as source_event_id,
        subject_type,
        subject
    from erasure_requests

),

final as (

    select
        subjects.record_key,
        subjects.source,
        subjects.source_event_id,
        subjects.subject_type,
        subjects.subject,
        coalesce(
            records.customer_id, identifiers.customer_id, mailboxes.customer_id
        ) as customer_id,
        case
            when records.customer_id is not null then 'identity_record'
            when identifiers.customer_id is not null then 'subject_identifier'
            when mailboxes.customer_id is not null then 'subject_mailbox'
        end as resolved_through
    from subjects
    left join records
        on subjects.record_key = records.record_key
    left join identifiers
        on
            subjects.subject_type = identifiers.id_type
            and subjects.subject = identifiers.id_value
    left join identifiers as mailboxes
        on
            subjects.subject_type = 'email'
            and mailboxes.id_type = 'mailbox'
            and {{ mailbox_key('subjects.subject') }} = mailboxes.id_value

)

select * from final
