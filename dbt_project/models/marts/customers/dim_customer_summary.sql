-- A first customer 360: one row per customer with activity across orders and browsing.
with

customers as (

    select * from {{ ref('stg_identity__customers') }}

),

identifiers as (

    select * from {{ ref('stg_identity__identifiers') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

events as (

    select * from {{ ref('fct_clickstream_events') }}

),

order_activity as (

    select
        customer_id,
        count(*) as order_count,
        count(*) filter (where is_completed) as completed_order_count,
        count(*) filter (where is_refunded) as refunded_order_count,
        count(*) filter (where channel = 'web') as web_order_count,
        count(*) filter (where channel = 'store') as store_order_count,
        coalesce(sum(net_amount_gbp) filter (where is_completed), 0) as revenue_gbp,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        string_agg(distinct channel, ',' order by channel) as order_channels
    from orders
    where customer_id is not null
    group by customer_id

),

browsing_activity as (

    select
        customer_id,
        count(*) as event_count,
        count(distinct device_id) as device_count,
        count(distinct anonymous_id) as cookie_count,
        min(occurred_at) as first_event_at,
        max(occurred_at) as last_event_at
    from events
    where customer_id is not null
    group by customer_id

),

identifier_counts as (

    select
        customer_id,
        count(*) filter (where id_type = 'crm_id') as crm_id_count,
        count(*) filter (where id_type = 'email') as email_count,
        count(*) filter (where id_type = 'phone') as phone_count,
        count(*) filter (where id_type = 'loyalty_id') as loyalty_id_count,
        count(*) filter (where id_type = 'user_id') as user_id_count
    from identifiers
    where customer_id is not null
    group by customer_id

),

final as (

    select
        customers.customer_id,
        customers.first_seen_at,
        greatest(
            customers.first_seen_at, order_activity.last_order_at, browsing_activity.last_event_at
        ) as last_seen_at,
        coalesce(order_activity.order_count, 0) as order_count,
        coalesce(order_activity.completed_order_count, 0) as completed_order_count,
        coalesce(order_activity.refunded_order_count, 0) as refunded_order_count,
        coalesce(order_activity.web_order_count, 0) as web_order_count,
        coalesce(order_activity.store_order_count, 0) as store_order_count,
        coalesce(order_activity.revenue_gbp, 0) as revenue_gbp,
        order_activity.first_order_at,
        order_activity.last_order_at,
        coalesce(order_activity.order_channels, '') as order_channels,
        coalesce(browsing_activity.event_count, 0) as event_count,
        coalesce(browsing_activity.device_count, 0) as device_count,
        coalesce(browsing_activity.cookie_count, 0) as cookie_count,
        browsing_activity.first_event_at,
        browsing_activity.last_event_at,
        customers.identifier_count,
        coalesce(identifier_counts.crm_id_count, 0) as crm_id_count,
        coalesce(identifier_counts.email_count, 0) as email_count,
        coalesce(identifier_counts.phone_count, 0) as phone_count,
        coalesce(identifier_counts.loyalty_id_count, 0) as loyalty_id_count,
        coalesce(identifier_counts.user_id_count, 0) as user_id_count
    from customers
    left join order_activity
        on customers.customer_id = order_activity.customer_id
    left join browsing_activity
        on customers.customer_id = browsing_activity.customer_id
    left join identifier_counts
        on customers.customer_id = identifier_counts.customer_id

)

select * from final
