-- One row per customer with behavioural features as of the `as_of` cutoff: every order, event,
-- session and cart add counted here happened strictly before it. Orders and revenue count
-- completed orders only (refunded ones feed refund_rate); counts are 0 when nothing happened.
{%- set cutoff = as_of_cutoff() %}
with

customers as (

    select * from {{ ref('dim_customers') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

order_items as (

    select * from {{ ref('fct_order_items') }}

),

products as (

    select * from {{ ref('stg_products__products') }}

),

events as (

    select * from {{ ref('int_events_owned') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

cart_adds as (

    select * from {{ ref('int_cart_adds_evaluated') }}

),

postcode_regions as (

    select * from {{ ref('postcode_regions') }}

),

order_activity as (

    select
        customer_id,
        min(ordered_at) filter (where is_completed) as first_order_at,
        max(ordered_at) filter (where is_completed) as last_order_at,
        count(*) filter (where is_completed) as lifetime_orders,
        sum(net_amount_gbp) filter (where is_completed) as lifetime_revenue_gbp,
        count(*) filter (
            where is_completed and ordered_at >= {{ cutoff }} - interval ({{ var('rfm_window_days') }}) day
        ) as frequency,
        sum(net_amount_gbp) filter (
            where is_completed and ordered_at >= {{ cutoff }} - interval ({{ var('rfm_window_days') }}) day
        ) as monetary_gbp,
        count(*) filter (
            where is_completed and ordered_at >= {{ cutoff }} - interval 30 day
        ) as orders_30d,
        count(*) filter (
            where is_completed and ordered_at >= {{ cutoff }} - interval 90 day
        ) as orders_90d,
        count(*) filter (
            where is_completed and ordered_at >= {{ cutoff }} - interval 365 day
        ) as orders_365d,
        sum(net_amount_gbp) filter (
            where is_completed and ordered_at >= {{ cutoff }} - interval 30 day
        ) as revenue_30d_gbp,
        sum(net_amount_gbp) filter (
            where is_completed and ordered_at >= {{ cutoff }} - interval 90 day
        ) as revenue_90d_gbp,
        sum(net_amount_gbp) filter (
            where is_completed and ordered_at >= {{ cutoff }} - interval 365 day
        ) as revenue_365d_gbp,
        count(*) filter (where is_refunded) as refunded_orders,
        sum(discount_amount_gbp) filter (where is_completed) as discount_gbp,
        sum(gross_amount_gbp) filter (where is_completed) as gross_gbp,
        count(*) filter (where is_completed and channel = 'web') as web_orders,
        count(*) filter (where is_completed and channel = 'store') as store_orders
    from orders
    where
        customer_id is not null
        and ordered_at < {{ cutoff }}
    group by customer_id

),

category_quantities as (

    select
        order_items.customer_id,
        products.category_level_1,
        sum(order_items.quantity) as quantity
    from order_items
    inner join products
        on order_items.product_id = products.product_id
    where
        order_items.customer_id is not null
        and order_items.is_completed
        and order_items.ordered_at < {{ cutoff }}
        and products.category_level_1 is not null
    group by order_items.customer_id, products.category_level_1

),

ranked_categories as (

    select
        customer_id,
        category_level_1,
        row_number() over (
            partition by customer_id
            order by quantity desc, category_level_1 asc
        ) as category_rank
    from category_quantities

),

favourite_categories as (

    select
        customer_id,
        category_level_1 as favourite_category
    from ranked_categories
    where category_rank = 1

),

event_activity as (

    select
        customer_id,
        count(*) filter (
            where event_type = 'page_view' and occurred_at >= {{ cutoff }} - interval 7 day
        ) as page_views_7d,
        count(*) filter (
            where event_type = 'page_view' and occurred_at >= {{ cutoff }} - interval 30 day
        ) as page_views_30d,
        count(*) filter (
            where event_type = 'page_view' and occurred_at >= {{ cutoff }} - interval 90 day
        ) as page_views_90d,
        count(*) filter (
            where event_type = 'product_view' and occurred_at >= {{ cutoff }} - interval 7 day
        ) as product_views_7d,
        count(*) filter (
            where event_type = 'product_view' and occurred_at >= {{ cutoff }} - interval 30 day
        ) as product_views_30d,
        count(*) filter (
            where event_type = 'product_view' and occurred_at >= {{ cutoff }} - interval 90 day
        ) as product_views_90d,
        count(*) filter (
            where event_type = 'add_to_cart' and occurred_at >= {{ cutoff }} - interval 7 day
        ) as cart_adds_7d,
        count(*) filter (
            where event_type = 'add_to_cart' and occurred_at >= {{ cutoff }} - interval 30 day
        ) as cart_adds_30d,
        count(*) filter (
            where event_type = 'add_to_cart' and occurred_at >= {{ cutoff }} - interval 90 day
        ) as cart_adds_90d,
        count(*) filter (
            where event_type = 'email_open' and occurred_at >= {{ cutoff }} - interval 30 day
        ) as email_opens_30d,
        count(*) filter (
            where event_type = 'email_click' and occurred_at >= {{ cutoff }} - interval 30 day
        ) as email_clicks_30d
    from events
    where
        customer_id is not null
        and occurred_at < {{ cutoff }}
        and occurred_at >= {{ cutoff }} - interval 90 day
    group by customer_id

),

session_activity as (

    select
        customer_id,
        count(*) filter (where started_at >= {{ cutoff }} - interval 7 day) as sessions_7d,
        count(*) filter (where started_at >= {{ cutoff }} - interval 30 day) as sessions_30d,
        count(*) filter (where started_at >= {{ cutoff }} - interval 90 day) as sessions_90d,
        avg(duration_seconds) filter (
            where started_at >= {{ cutoff }} - interval 30 day
        ) as average_session_seconds_30d
    from sessions
    where
        customer_id is not null
        and started_at < {{ cutoff }}
        and started_at >= {{ cutoff }} - interval 90 day
    group by customer_id

),

cart_activity as (

    -- cart adds of the last 30 days whose abandonment window has ended by the cutoff
    select
        customer_id,
        count(*) filter (where is_abandoned) as cart_abandonments_30d,
        count(*) as decided_cart_adds_30d
    from cart_adds
    where
        customer_id is not null
        and added_at < {{ cutoff }}
        and added_at >= {{ cutoff }} - interval 30 day
        and window_ends_at <= {{ cutoff }}
    group by customer_id

),

profiles as (

    select
        customer_id,
        first_seen_at,
        gender,
        country_code,
        case
            when birth_date <= cast({{ cutoff }} - interval 1 microsecond as date)
                then date_sub('year', birth_date, cast({{ cutoff }} - interval 1 microsecond as date))
        end as age_years,
        nullif(regexp_extract(upper(trim(postcode)), '^([A-Z]{1,2})[0-9]', 1), '') as postcode_area
    from customers

),

area_regions as (

    select
        country_code,
        postcode_area,
        region
    from postcode_regions
    where nullif(postcode_area, '') is not null

),

country_regions as (

    -- rows with an empty postcode_area cover the whole country
    select
        country_code,
        region
    from postcode_regions
    where nullif(postcode_area, '') is null

),

final as (

    select
        profiles.customer_id,
        {{ cutoff }} as as_of_at,
        cast(
            floor((epoch({{ cutoff }}) - epoch(order_activity.last_order_at)) / 86400) as integer
        ) as days_since_last_order,
        order_activity.first_order_at,
        order_activity.last_order_at,
        cast(coalesce(order_activity.lifetime_orders, 0) as integer) as lifetime_orders,
        cast(coalesce(order_activity.lifetime_revenue_gbp, 0) as double) as lifetime_revenue_gbp,
        cast(coalesce(order_activity.frequency, 0) as integer) as frequency,
        cast(coalesce(order_activity.monetary_gbp, 0) as double) as monetary_gbp,
        cast(coalesce(order_activity.orders_30d, 0) as integer) as orders_30d,
        cast(coalesce(order_activity.orders_90d, 0) as integer) as orders_90d,
        cast(coalesce(order_activity.orders_365d, 0) as integer) as orders_365d,
        cast(coalesce(order_activity.revenue_30d_gbp, 0) as double) as revenue_30d_gbp,
        cast(coalesce(order_activity.revenue_90d_gbp, 0) as double) as revenue_90d_gbp,
        cast(coalesce(order_activity.revenue_365d_gbp, 0) as double) as revenue_365d_gbp,
        cast(order_activity.lifetime_revenue_gbp as double)
        / nullif(order_activity.lifetime_orders, 0) as average_order_value_gbp,
        case
            when profiles.first_seen_at < {{ cutoff }}
                then cast(floor((epoch({{ cutoff }}) - epoch(profiles.first_seen_at)) / 86400) as integer)
        end as tenure_days,
        cast(order_activity.refunded_orders as double)
        / nullif(order_activity.lifetime_orders + order_activity.refunded_orders, 0) as refund_rate,
        cast(order_activity.discount_gbp as double) / nullif(order_activity.gross_gbp, 0) as discount_share,
        cast(coalesce(session_activity.sessions_7d, 0) as integer) as sessions_7d,
        cast(coalesce(session_activity.sessions_30d, 0) as integer) as sessions_30d,
        cast(coalesce(session_activity.sessions_90d, 0) as integer) as sessions_90d,
        cast(coalesce(event_activity.page_views_7d, 0) as integer) as page_views_7d,
        cast(coalesce(event_activity.page_views_30d, 0) as integer) as page_views_30d,
        cast(coalesce(event_activity.page_views_90d, 0) as integer) as page_views_90d,
        cast(coalesce(event_activity.product_views_7d, 0) as integer) as product_views_7d,
        cast(coalesce(event_activity.product_views_30d, 0) as integer) as product_views_30d,
        cast(coalesce(event_activity.product_views_90d, 0) as integer) as product_views_90d,
        cast(coalesce(event_activity.cart_adds_7d, 0) as integer) as cart_adds_7d,
        cast(coalesce(event_activity.cart_adds_30d, 0) as integer) as cart_adds_30d,
        cast(coalesce(event_activity.cart_adds_90d, 0) as integer) as cart_adds_90d,
        cast(session_activity.average_session_seconds_30d as double) as average_session_seconds_30d,
        cast(coalesce(cart_activity.cart_abandonments_30d, 0) as integer) as cart_abandonments_30d,
        cast(cart_activity.cart_abandonments_30d as double)
        / nullif(cart_activity.decided_cart_adds_30d, 0) as cart_abandonment_rate_30d,
        cast(coalesce(event_activity.email_opens_30d, 0) as integer) as email_opens_30d,
        cast(coalesce(event_activity.email_clicks_30d, 0) as integer) as email_clicks_30d,
        favourite_categories.favourite_category,
        case
            when coalesce(order_activity.lifetime_orders, 0) = 0 then null
            when order_activity.web_orders >= order_activity.store_orders then 'web'
            else 'store'
        end as preferred_channel,
        cast(profiles.age_years as integer) as age_years,
        case
            when profiles.age_years < 18 then null
            when profiles.age_years < 25 then '18-24'
            when profiles.age_years < 35 then '25-34'
            when profiles.age_years < 45 then '35-44'
            when profiles.age_years < 55 then '45-54'
            when profiles.age_years < 65 then '55-64'
            when profiles.age_years >= 65 then '65+'
        end as age_band,
        profiles.gender,
        profiles.country_code,
        coalesce(area_regions.region, country_regions.region) as region
    from profiles
    left join order_activity
        on profiles.customer_id = order_activity.customer_id
    left join favourite_categories
        on profiles.customer_id = favourite_categories.customer_id
    left join event_activity
        on profiles.customer_id = event_activity.customer_id
    left join session_activity
        on profiles.customer_id = session_activity.customer_id
    left join cart_activity
        on profiles.customer_id = cart_activity.customer_id
    left join area_regions
        on
            profiles.country_code = area_regions.country_code
            and profiles.postcode_area = area_regions.postcode_area
    left join country_regions
        on profiles.country_code = country_regions.country_code

)

select * from final
