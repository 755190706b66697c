-- The golden record: one row per customer. Each attribute group (name, email, phone, birth
-- date, gender, address, loyalty id) comes whole from the one record that wins the
-- survivorship rules of seeds/survivorship.csv: the most trusted source for the group, then
-- the most recent record, then the most complete, then the smallest record key.
with

customers as (

    select * from {{ ref('stg_identity__customers') }}

),

candidates as (

    select * from {{ ref('int_customer_attributes_collected') }}

),

survivorship as (

    select * from {{ ref('survivorship') }}

),

ranked as (

    select
        candidates.*,
        survivorship.attribute_group,
        row_number() over (
            partition by candidates.customer_id, survivorship.attribute_group
            order by
                survivorship.trust_rank asc,
                candidates.observed_at desc,
                candidates.filled_attribute_count desc,
                candidates.record_key asc
        ) as survivor_rank
    from candidates
    inner join survivorship
        on candidates.source = survivorship.source
    where
        case survivorship.attribute_group
            when 'name' then coalesce(candidates.first_name, candidates.last_name) is not null
            when 'email' then candidates.email is not null
            when 'phone' then candidates.phone is not null
            when 'birth_date' then candidates.birth_date is not null
            when 'gender' then candidates.gender is not null
            when 'address'
                then coalesce(
                        candidates.street, candidates.city, candidates.postcode, candidates.country_code
                    ) is not null
            when 'loyalty_id' then candidates.loyalty_id is not null
            else false
        end

),

winners as (

    select
        customer_id,
        max(first_name) filter (where attribute_group = 'name') as first_name,
        max(last_name) filter (where attribute_group = 'name') as last_name,
        max(email) filter (where attribute_group = 'email') as email,
        max(phone) filter (where attribute_group = 'phone') as phone,
        max(birth_date) filter (where attribute_group = 'birth_date') as birth_date,
        max(gender) filter (where attribute_group = 'gender') as gender,
        max(street) filter (where attribute_group = 'address') as street,
        max(city) filter (where attribute_group = 'address') as city,
        max(postcode) filter (where attribute_group = 'address') as postcode,
        max(country_code) filter (where attribute_group = 'address') as country_code,
        max(loyalty_id) filter (where attribute_group = 'loyalty_id') as loyalty_id,
        max(record_key) filter (where attribute_group = 'name') as name_source_record,
        max(record_key) filter (where attribute_group = 'email') as email_source_record,
        max(record_key) filter (where attribute_group = 'phone') as phone_source_record,
        max(record_key) filter (where attribute_group = 'birth_date') as birth_date_source_record,
        max(record_key) filter (where attribute_group = 'gender') as gender_source_record,
        max(record_key) filter (where attribute_group = 'address') as address_source_record,
        max(record_key) filter (where attribute_group = 'loyalty_id') as loyalty_id_source_record
    from ranked
    where survivor_rank = 1
    group by customer_id

),

record_counts as (

    select
        customer_id,
        count(*) filter (where source = 'crm') as crm_record_count
    from candidates
    group by customer_id

),

final as (

    select
        customers.customer_id,
        winners.first_name,
        winners.last_name,
        winners.email,
        winners.phone,
        winners.birth_date,
        winners.gender,
        winners.street,
        winners.city,
        winners.postcode,
        winners.country_code,
        winners.loyalty_id,
        customers.first_seen_at,
        customers.identifier_count,
        coalesce(record_counts.crm_record_count, 0) as crm_record_count,
        winners.name_source_record,
        winners.email_source_record,
        winners.phone_source_record,
        winners.birth_date_source_record,
        winners.gender_source_record,
        winners.address_source_record,
        winners.loyalty_id_source_record
    from customers
    left join winners
        on customers.customer_id = winners.customer_id
    left join record_counts
        on customers.customer_id = record_counts.customer_id

)

select * from final
