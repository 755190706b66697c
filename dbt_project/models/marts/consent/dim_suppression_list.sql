-- The suppression list: one row per customer and reason never to activate them (erasure
-- requested, global unsubscribe, do not sell or share), as int_suppressions has it at build time.
with

suppressions as (

    select * from {{ ref('int_suppressions') }}

),

final as (

    select
        customer_id,
        suppression_reason,
        suppressed_since,
        source_event_id
    from suppressions

)

select * from final
