-- One row per browsing session before the as_of cutoff: the events of one owner (a customer,
-- or a cookie before the visitor is known) with no gap longer than `session_timeout_minutes`.
-- Per owner in order of time, an event starts a session when it is the owner's first or comes
-- more than the timeout after the previous one; the running count of starts numbers the
-- sessions (lag + running sum: one sort, no self-join).
with

events as (

    select * from {{ ref('int_events_owned') }}

),

gaps as (

    select
        *,
        lag(occurred_at) over (
            partition by session_owner
            order by occurred_at, event_id
        ) as previous_occurred_at
    from events
    where occurred_at < {{ as_of_cutoff() }}

),

flagged as (

    select
        *,
        coalesce(
            occurred_at - previous_occurred_at > interval ({{ var('session_timeout_minutes') }}) minute,
            true
        ) as is_session_start
    from gaps

),

numbered as (

    select
        *,
        sum(cast(is_session_start as integer)) over (
            partition by session_owner
            order by occurred_at, event_id
            rows between unbounded preceding and current row
        ) as session_number
    from flagged

),

sessions as (

    select
        session_owner,
        session_number,
        any_value(customer_id) as customer_id,
        any_value(anonymous_id) filter (where is_session_start) as anonymous_id,
        any_value(device_id) filter (where is_session_start) as device_id,
        any_value(page_url) filter (where is_session_start) as landing_page,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        count(*) as event_count,
        count(*) filter (where event_type = 'page_view') as page_views,
        count(*) filter (where event_type = 'product_view') as product_views,
        count(*) filter (where event_type = 'add_to_cart') as cart_adds,
        bool_or(event_type = 'purchase') as is_converted
    from numbered
    group by session_owner, session_number

),

final as (

    select
        md5(session_owner || '|' || cast(started_at as varchar)) as session_id,
        customer_id,
        session_owner,
        anonymous_id,
        device_id,
        started_at,
        ended_at,
        cast(floor(epoch(ended_at) - epoch(started_at)) as integer) as duration_seconds,
        cast(event_count as integer) as event_count,
        cast(page_views as integer) as page_views,
        cast(product_views as integer) as product_views,
        cast(cart_adds as integer) as cart_adds,
        is_converted,
        landing_page
    from sessions

)

select * from final
