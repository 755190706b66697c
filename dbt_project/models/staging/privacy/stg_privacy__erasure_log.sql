-- Processed erasure requests, as logged by the privacy assets.
with

erasure_log as (

    select * from {{ source('privacy', 'erasure_log') }}

),

final as (

    select
        erasure_request_id,
        requested_at,
        processed_at,
        completed_at,
        status as erasure_status,
        identifiers_erased,
        rows_removed
    from erasure_log

)

select * from final
