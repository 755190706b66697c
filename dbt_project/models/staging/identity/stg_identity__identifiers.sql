-- identity.identifiers as written by the identity assets, renamed for the marts.
with

identity_identifiers as (

    select * from {{ source('identity', 'identifiers') }}

),

final as (

    select
        id_type,
        id_value,
        cluster_id,
        customer_id,
        status as link_status,
        first_seen_at
    from identity_identifiers

)

select * from final
