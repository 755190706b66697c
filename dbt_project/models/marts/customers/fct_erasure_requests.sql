-- One row per erasure request with the customer its subject resolves to (null when nobody), as
-- int_subjects_resolved decides it.
with

erasure_requests as (

    select * from {{ ref('stg_erasure__requests') }}

),

subjects as (

    select * from {{ ref('int_subjects_resolved') }}
    where source = 'erasure'

),

final as (

    select
        erasure_requests.erasure_request_id,
        subjects.customer_id,
        erasure_requests.subject_type,
        erasure_requests.requested_at
    from erasure_requests
    left join subjects
        on erasure_requests.erasure_request_id = subjects.source_event_id

)

select * from final
