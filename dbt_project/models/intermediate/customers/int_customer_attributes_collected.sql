-- Every record that can supply a customer's golden-record attributes, with the facts the
-- survivorship rules rank by: source, when the record was last true, how complete it is.
with

records as (

    select * from {{ ref('stg_identity__records') }}

),

crm_customers as (

    select * from {{ ref('stg_crm__customers') }}

),

order_lines as (

    select * from {{ ref('stg_orders__order_lines') }}

),

consent_events as (

    select * from {{ ref('stg_consent__events') }}

),

crm_candidates as (

    select
        'crm:' || crm_id as record_key,
        'crm' as source,
        updated_at as observed_at,
        first_name,
        last_name,
        email,
        phone_e164 as phone,
        birth_date,
        gender,
        street,
        city,
        postcode,
        country_code,
        loyalty_id
    from crm_customers

),

order_candidates as (

    select
        'order:' || order_id as record_key,
        'orders' as source,
        min(ordered_at) as observed_at,
        null::varchar as first_name,
        null::varchar as last_name,
        any_value(email) as email,
        null::varchar as phone,
        null::date as birth_date,
        null::varchar as gender,
        null::varchar as street,
        null::varchar as city,
        null::varchar as postcode,
        null::varchar as country_code,
        any_value(loyalty_id) as loyalty_id
    from order_lines
    where email is not null or loyalty_id is not null
    group by order_id

),

consent_candidates as (

    select
        'consent:' || consent_event_id as record_key,
        'consent' as source,
        recorded_at as observed_at,
        null::varchar as first_name,
        null::varchar as last_name,
        subject as email,
        null::varchar as phone,
        null::date as birth_date,
        null::varchar as gender,
        null::varchar as street,
        null::varchar as city,
        null::varchar as postcode,
        null::varchar as country_code,
        null::varchar as loyalty_id
    from consent_events
    where subject_type = 'email'

),

unioned as (

    select * from crm_candidates
    union all
    select * from order_candidates
    union all
    select * from consent_candidates

),

final as (

    select
        records.customer_id,
        unioned.*,
        (
            (unioned.first_name is not null)::int
            + (unioned.last_name is not null)::int
            + (unioned.email is not null)::int
            + (unioned.phone is not null)::int
            + (unioned.birth_date is not null)::int
            + (unioned.gender is not null)::int
            + (unioned.street is not null)::int
            + (unioned.city is not null)::int
            + (unioned.postcode is not null)::int
            + (unioned.country_code is not null)::int
            + (unioned.loyalty_id is not null)::int
        ) as filled_attribute_count
    from unioned
    inner join records
        on unioned.record_key = records.record_key
    where records.customer_id is not null

)

select * from final
