-- Every cart add before the as_of cutoff with the owner's next purchase at or after it, and
-- whether it was abandoned: no purchase by the same owner within `cart_abandonment_hours`.
-- A cart add whose window has not ended by the cutoff is undecided (is_abandoned null).
with

events as (

    select * from {{ ref('int_events_owned') }}

),

cart_and_purchase_events as (

    select
        event_id,
        customer_id,
        session_owner,
        event_type,
        occurred_at
    from events
    where
        event_type in ('add_to_cart', 'purchase')
        and occurred_at < {{ as_of_cutoff() }}

),

next_purchases as (

    -- the earliest purchase at or after each event of the owner (peers at the same instant included)
    select
        *,
        min(case when event_type = 'purchase' then occurred_at end) over (
            partition by session_owner
            order by occurred_at
            range between current row and unbounded following
        ) as next_purchase_at
    from cart_and_purchase_events

),

windowed as (

    select
        event_id,
        customer_id,
        session_owner,
        occurred_at as added_at,
        occurred_at + interval ({{ var('cart_abandonment_hours') }}) hour as window_ends_at,
        next_purchase_at
    from next_purchases
    where event_type = 'add_to_cart'

),

final as (

    select
        event_id,
        customer_id,
        session_owner,
        added_at,
        window_ends_at,
        next_purchase_at,
        window_ends_at <= {{ as_of_cutoff() }} as is_window_ended,
        case
            when window_ends_at > {{ as_of_cutoff() }} then null
            else coalesce(next_purchase_at >= window_ends_at, true)
        end as is_abandoned
    from windowed

)

select * from final
