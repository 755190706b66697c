-- One row per CRM customer: the latest version of each crm_id across every export.
with

crm_customers as (

    select * from {{ source('crm', 'customers') }}

),

renamed as (

    select
        crm_id,
        {{ blank_to_null('first_name') }} as first_name,
        {{ blank_to_null('last_name') }} as last_name,
        email_normalised as email,
        {{ blank_to_null('email') }} as email_as_received,
        phone_e164,
        {{ blank_to_null('phone') }} as phone_as_received,
        {{ cast_text('birth_date', 'date') }} as birth_date,
        {{ blank_to_null('gender') }} as gender,
        {{ blank_to_null('street') }} as street,
        {{ blank_to_null('city') }} as city,
        {{ blank_to_null('postcode') }} as postcode,
        country as country_code,
        {{ blank_to_null('loyalty_id') }} as loyalty_id,
        {{ to_utc_timestamp('created_at', feed_timezone('crm')) }} as created_at,
        {{ to_utc_timestamp('updated_at', feed_timezone('crm')) }} as updated_at,
        _source_file,
        _row_number,
        _load_id,
        _loaded_at
    from crm_customers

),

versioned as (

    select
        *,
        count(*) over (partition by crm_id) as version_count,
        row_number() over (
            partition by crm_id
            order by
                updated_at desc,
                _loaded_at desc,
                _source_file desc,
                _row_number desc
        ) as version_rank
    from renamed

),

final as (

    select
        crm_id,
        first_name,
        last_name,
        email,
        email_as_received,
        phone_e164,
        phone_as_received,
        birth_date,
        gender,
        street,
        city,
        postcode,
        country_code,
        loyalty_id,
        email is not null as has_email,
        phone_e164 is not null as has_phone,
        loyalty_id is not null as has_loyalty_id,
        version_count,
        created_at,
        updated_at,
        _source_file,
        _row_number,
        _load_id,
        _loaded_at
    from versioned
    where version_rank = 1

)

select * from final
