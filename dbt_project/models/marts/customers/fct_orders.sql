-- One row per order with its customer, status and totals (in its currency and in GBP).
with

order_items as (

    select * from {{ ref('fct_order_items') }}

),

final as (

    select
        order_id,
        any_value(customer_id) as customer_id,
        any_value(customer_ref_type) as customer_ref_type,
        min(ordered_at) as ordered_at,
        any_value(channel) as channel,
        any_value(store_id) as store_id,
        any_value(currency_code) as currency_code,
        any_value(order_status) as order_status,
        count(*) as line_count,
        sum(quantity) as item_quantity,
        sum(gross_line_amount) as gross_amount,
        sum(net_line_amount) as net_amount,
        sum(discount_amount) as discount_amount,
        sum(gross_line_amount_gbp) as gross_amount_gbp,
        sum(net_line_amount_gbp) as net_amount_gbp,
        sum(discount_amount_gbp) as discount_amount_gbp,
        bool_or(is_completed) as is_completed,
        bool_or(is_refunded) as is_refunded,
        bool_or(is_cancelled) as is_cancelled
    from order_items
    group by order_id

)

select * from final
