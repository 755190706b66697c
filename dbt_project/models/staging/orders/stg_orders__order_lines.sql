-- One row per order line (order_id, line_number) from the web shop and the store tills.
with

orders_order_lines as (

    select * from {{ source('orders', 'order_lines') }}

),

renamed as (

    select
        order_id,
        {{ cast_text('line_number', 'integer') }} as line_number,
        customer_ref_normalised as customer_ref,
        customer_ref_type,
        {{ to_utc_timestamp('ordered_at', feed_timezone('orders')) }} as ordered_at,
        channel,
        {{ blank_to_null('store_id') }} as store_id,
        sku as product_id,
        {{ cast_text('quantity', 'integer') }} as quantity,
        {{ cast_text('unit_price', 'decimal(18, 2)') }} as unit_price,
        coalesce({{ cast_text('discount', 'decimal(18, 2)') }}, 0) as discount_amount,
        currency as currency_code,
        status as order_status,
        _source_file,
        _row_number,
        _load_id,
        _loaded_at
    from orders_order_lines

),

calculated as (

    select
        *,
        order_id || '-' || cast(line_number as varchar) as order_line_id,
        cast(quantity * unit_price as decimal(18, 2)) as gross_line_amount,
        cast(quantity * unit_price - discount_amount as decimal(18, 2)) as net_line_amount
    from renamed

),

final as (

    select
        order_line_id,
        order_id,
        line_number,
        customer_ref,
        customer_ref_type,
        case when customer_ref_type = 'crm_id' then customer_ref end as crm_id,
        case when customer_ref_type = 'email' then customer_ref end as email,
        case when customer_ref_type = 'loyalty_id' then customer_ref end as loyalty_id,
        ordered_at,
        channel,
        store_id,
        product_id,
        quantity,
        unit_price,
        discount_amount,
        gross_line_amount,
        net_line_amount,
        currency_code,
        order_status,
        channel = 'web' as is_web_order,
        channel = 'store' as is_store_order,
        customer_ref is null as is_anonymous,
        order_status = 'completed' as is_completed,
        order_status = 'refunded' as is_refunded,
        order_status = 'cancelled' as is_cancelled,
        discount_amount > 0 as has_discount,
        _source_file,
        _row_number,
        _load_id,
        _loaded_at
    from calculated

)

select * from final
