-- One row per right-to-erasure request (GDPR article 17).
with

erasure_requests as (

    select * from {{ source('erasure', 'requests') }}

),

renamed as (

    select
        request_id as erasure_request_id,
        subject_normalised as subject,
        subject_type,
        {{ to_utc_timestamp('requested_at', feed_timezone('erasure')) }} as requested_at,
        _source_file,
        _row_number,
        _load_id,
        _loaded_at
    from erasure_requests

),

final as (

    select
        erasure_request_id,
        subject,
        subject_type,
        requested_at,
        _source_file,
        _row_number,
        _load_id,
        _loaded_at
    from renamed

)

select * from final
