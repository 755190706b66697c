-- The product catalogue as a dimension: one row per product ever listed, plus one explicit
-- unknown member (product_key 'unknown') that facts join to when an order line or event names
-- a sku the catalogue never listed (a retired or mistyped sku: a data-quality finding counted
-- in fct_unresolved_references, never a reason to drop the row).
with

products as (

    select * from {{ ref('stg_products__products') }}

),

listed as (

    select
        product_id as product_key,
        product_id,
        title,
        category_path,
        category_level_1,
        category_level_2,
        category_level_3,
        category_name,
        brand,
        price,
        currency_code,
        availability,
        is_in_stock,
        is_in_latest_snapshot,
        false as is_unknown
    from products

),

unknown_member as (

    select
        'unknown' as product_key,
        cast(null as varchar) as product_id,
        'Unknown product' as title,
        'Unknown' as category_path,
        'Unknown' as category_level_1,
        cast(null as varchar) as category_level_2,
        cast(null as varchar) as category_level_3,
        'Unknown' as category_name,
        cast(null as varchar) as brand,
        cast(null as decimal(18, 2)) as price,
        cast(null as varchar) as currency_code,
        'unknown' as availability,
        false as is_in_stock,
        false as is_in_latest_snapshot,
        true as is_unknown

),

final as (

    select * from listed
    union all
    select * from unknown_member

)

select * from final
