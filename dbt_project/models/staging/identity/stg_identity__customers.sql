-- identity.customers as written by the identity assets, renamed for the marts.
with

identity_customers as (

    select * from {{ source('identity', 'customers') }}

),

final as (

    select
        customer_id,
        anchor as anchor_identifier,
        first_seen_at,
        identifier_count
    from identity_customers

)

select * from final
