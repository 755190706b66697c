-- One row per tracking event (the loader has already dropped retried deliveries).
with

clickstream_events as (

    select * from {{ source('clickstream', 'events') }}

),

renamed as (

    select
        event_id,
        event_type,
        anonymous_id,
        {{ blank_to_null('user_id') }} as user_id,
        {{ blank_to_null('device_id') }} as device_id,
        {{ to_utc_timestamp('occurred_at', feed_timezone('clickstream')) }} as occurred_at,
        {{ blank_to_null('url') }} as page_url,
        {{ blank_to_null('product_sku') }} as product_id,
        {{ cast_text('properties', 'json') }} as properties,
        _source_file,
        _row_number,
        _load_id,
        _loaded_at
    from clickstream_events

),

final as (

    select
        event_id,
        event_type,
        anonymous_id,
        user_id,
        device_id,
        occurred_at,
        page_url,
        product_id,
        properties,
        user_id is not null as is_logged_in,
        _source_file,
        _row_number,
        _load_id,
        _loaded_at
    from renamed

)

select * from final
