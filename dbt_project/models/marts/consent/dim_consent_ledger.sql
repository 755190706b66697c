-- The consent ledger: one row per customer and export purpose with the customer's current
-- state (int_consent_states). No event for the purpose means no record, and no consent.
with

customers as (

    select * from {{ ref('dim_customers') }}

),

consent_states as (

    select * from {{ ref('int_consent_states') }}

),

purposes as (

    select export_purposes.purpose
    from (
        values
        ('email_marketing'),
        ('ads_personalization'),
        ('analytics')
    ) as export_purposes (purpose)

),

final as (

    select
        customers.customer_id,
        purposes.purpose,
        coalesce(consent_states.consent_state, 'no_record') as consent_state,
        coalesce(consent_states.has_consent, false) as has_consent,
        consent_states.decided_at,
        consent_states.consent_source,
        consent_states.consent_event_id,
        coalesce(consent_states.event_count, 0) as event_count
    from customers
    cross join purposes
    left join consent_states
        on
            customers.customer_id = consent_states.customer_id
            and purposes.purpose = consent_states.purpose

)

select * from final
