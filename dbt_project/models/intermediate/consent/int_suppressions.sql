-- Who must never be activated, one row per customer and reason: an erasure request not yet
-- processed (processing deletes the person), a global unsubscribe (all_marketing withdrawn) or
-- a do-not-sell request (data_sale withdrawn). A later grant lifts the last two. A suppression
-- counts from the first request of its current run: the earliest erasure request, or the first
-- withdrawal at or after the last grant (a withdrawal at the same time as a grant wins).
with

consent_states as (

    select * from {{ ref('int_consent_states') }}

),

consent_events as (

    select * from {{ ref('int_consent_events_resolved') }}

),

erasure_requests as (

    select * from {{ ref('stg_erasure__requests') }}

),

subjects as (

    select * from {{ ref('int_subjects_resolved') }}
    where source = 'erasure'

),

withdrawn_signals as (

    select
        customer_id,
        purpose,
        case purpose
            when 'all_marketing' then 'global_unsubscribe'
            when 'data_sale' then 'do_not_sell'
        end as suppression_reason
    from consent_states
    where
        purpose in ('all_marketing', 'data_sale')
        and consent_state = 'withdrawn'

),

last_grants as (

    select
        customer_id,
        purpose,
        max(recorded_at) as last_granted_at
    from consent_events
    where
        customer_id is not null
        and purpose in ('all_marketing', 'data_sale')
        and is_granted
    group by customer_id, purpose

),

current_withdrawals as (

    select
        withdrawn_signals.customer_id,
        withdrawn_signals.suppression_reason,
        consent_events.recorded_at,
        consent_events.consent_event_id,
        row_number() over (
            partition by withdrawn_signals.customer_id, withdrawn_signals.purpose
            order by consent_events.recorded_at asc, consent_events.consent_event_id asc
        ) as withdrawal_rank
    from withdrawn_signals
    inner join consent_events
        on
            withdrawn_signals.customer_id = consent_events.customer_id
            and withdrawn_signals.purpose = consent_events.purpose
    left join last_grants
        on
            withdrawn_signals.customer_id = last_grants.customer_id
            and withdrawn_signals.purpose = last_grants.purpose
    where
        not consent_events.is_granted
        and (
            last_grants.last_granted_at is null
            or consent_events.recorded_at >= last_grants.last_granted_at
        )

),

consent_suppressions as (

    select
        customer_id,
        suppression_reason,
        recorded_at as suppressed_since,
        consent_event_id as source_event_id
    from current_withdrawals
    where withdrawal_rank = 1

),

erasure_requests_resolved as (

    -- the customer int_subjects_resolved finds for the request's subject
    select
        subjects.customer_id,
        erasure_requests.erasure_request_id,
        erasure_requests.requested_at,
        row_number() over (
            partition by subjects.customer_id
            order by erasure_requests.requested_at asc, erasure_requests.erasure_request_id asc
        ) as request_rank
    from erasure_requests
    inner join subjects
        on erasure_requests.erasure_request_id = subjects.source_event_id
    where subjects.customer_id is not null

),

erasure_suppressions as (

    select
        customer_id,
        'erasure_requested' as suppression_reason,
        requested_at as suppressed_since,
        erasure_request_id as source_event_id
    from erasure_requests_resolved
    where request_rank = 1

),

final as (

    select * from erasure_suppressions
    union all
    select * from consent_suppressions

)

select * from final
