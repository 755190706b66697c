-- identity.records as written by the identity assets, renamed for the marts.
with

identity_records as (

    select * from {{ source('identity', 'records') }}

),

final as (

    select
        record_key,
        source,
        cluster_id,
        customer_id
    from identity_records

)

select * from final
