-- One row per order line with the customer who placed it (null for anonymous till sales and
-- references that resolve to nobody), its product in dim_products (the unknown member for a sku
-- the catalogue never listed) and its amounts in GBP.
with

order_lines as (

    select * from {{ ref('stg_orders__order_lines') }}

),

records as (

    select * from {{ ref('stg_identity__records') }}

),

products as (

    select * from {{ ref('dim_products') }}
    where not is_unknown

),

currency_rates as (

    select * from {{ ref('currency_rates') }}

),

final as (

    select
        order_lines.order_line_id,
        order_lines.order_id,
        order_lines.line_number,
        records.customer_id,
        order_lines.customer_ref_type,
        order_lines.ordered_at,
        order_lines.channel,
        order_lines.store_id,
        order_lines.product_id,
        coalesce(products.product_key, 'unknown') as product_key,
        order_lines.quantity,
        order_lines.unit_price,
        order_lines.discount_amount,
        order_lines.gross_line_amount,
        order_lines.net_line_amount,
        order_lines.currency_code,
        cast(order_lines.gross_line_amount * currency_rates.rate_to_gbp as decimal(18, 2)) as gross_line_amount_gbp,
        cast(order_lines.net_line_amount * currency_rates.rate_to_gbp as decimal(18, 2)) as net_line_amount_gbp,
        cast(order_lines.discount_amount * currency_rates.rate_to_gbp as decimal(18, 2)) as discount_amount_gbp,
        order_lines.order_status,
        order_lines.is_completed,
        order_lines.is_refunded,
        order_lines.is_cancelled
    from order_lines
    left join records
        on 'order:' || order_lines.order_id = records.record_key
    left join products
        on order_lines.product_id = products.product_id
    left join currency_rates
        on order_lines.currency_code = currency_rates.currency_code

)

select * from final
