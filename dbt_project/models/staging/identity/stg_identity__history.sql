-- identity.history as written by the identity assets, renamed for the marts.
with

identity_history as (

    select * from {{ source('identity', 'history') }}

),

final as (

    select
        event_at,
        run_id,
        event_type,
        customer_id,
        other_customer_id,
        reason
    from identity_history

)

select * from final
