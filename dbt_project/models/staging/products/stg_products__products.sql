-- One row per product: its row in the latest catalogue snapshot (file) that lists it.
with

products_items as (

    select * from {{ source('products', 'items') }}

),

renamed as (

    select
        product_id,
        trim(title) as title,
        trim(category) as category_path,
        {{ blank_to_null('brand') }} as brand,
        {{ cast_text('price', 'decimal(18, 2)') }} as price,
        currency as currency_code,
        availability,
        _source_file,
        _row_number,
        _load_id,
        _loaded_at
    from products_items

),

ranked as (

    select
        *,
        row_number() over (
            partition by product_id
            order by
                _source_file desc,
                _loaded_at desc,
                _row_number desc
        ) as snapshot_rank,
        -- the latest snapshot: the last file by name, then by landing time
        first_value(_source_file) over (
            order by _source_file desc, _loaded_at desc
        ) as latest_source_file,
        first_value(_load_id) over (
            order by _source_file desc, _loaded_at desc
        ) as latest_load_id
    from renamed

),

deduplicated as (

    select
        * exclude (snapshot_rank, latest_source_file, latest_load_id),
        _source_file = latest_source_file and _load_id = latest_load_id as is_in_latest_snapshot
    from ranked
    where snapshot_rank = 1

),

split as (

    select
        *,
        nullif(trim(split_part(category_path, '>', 1)), '') as category_level_1,
        nullif(trim(split_part(category_path, '>', 2)), '') as category_level_2,
        nullif(trim(split_part(category_path, '>', 3)), '') as category_level_3,
        trim(regexp_extract(category_path, '[^>]+$')) as category_name,
        len(string_split(category_path, '>')) as category_depth
    from deduplicated

),

final as (

    select
        product_id,
        title,
        category_path,
        category_level_1,
        category_level_2,
        category_level_3,
        category_name,
        category_depth,
        brand,
        price,
        currency_code,
        availability,
        availability = 'in_stock' as is_in_stock,
        is_in_latest_snapshot,
        _source_file,
        _row_number,
        _load_id,
        _loaded_at
    from split

)

select * from final
