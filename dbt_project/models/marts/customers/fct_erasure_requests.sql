-- One row per erasure request with the customer its subject resolves to (null when nobody).
with

erasure_requests as (

    select * from {{ ref('stg_erasure__requests') }}

),

records as (

    select * from {{ ref('stg_identity__records') }}

),

final as (

    select
        erasure_requests.erasure_request_id,
        records.customer_id,
        erasure_requests.subject_type,
        erasure_requests.requested_at
    from erasure_requests
    left join records
        on 'erasure:' || erasure_requests.erasure_request_id = records.record_key

)

select * from final
