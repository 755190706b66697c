-- The current consent state per customer and purpose: the customer's latest event for the
-- purpose decides; at the same recorded_at a withdrawal beats a grant, then the higher event id
-- wins. Events whose subject resolves to nobody are left out.
with

consent_events as (

    select * from {{ ref('int_consent_events_resolved') }}

),

resolved as (

    select * from consent_events
    where customer_id is not null

),

ranked as (

    select
        resolved.*,
        row_number() over (
            partition by resolved.customer_id, resolved.purpose
            order by
                resolved.recorded_at desc,
                resolved.is_granted asc,
                resolved.consent_event_id desc
        ) as recency_rank,
        count(*) over (partition by resolved.customer_id, resolved.purpose) as event_count
    from resolved

),

final as (

    select
        customer_id,
        purpose,
        consent_status as consent_state,
        is_granted as has_consent,
        recorded_at as decided_at,
        consent_source,
        consent_event_id,
        cast(event_count as integer) as event_count
    from ranked
    where recency_rank = 1

)

select * from final
