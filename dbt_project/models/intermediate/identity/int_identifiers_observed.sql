-- Every identifier seen in every source record, one row per (record, identifier): the input of
-- identity resolution (orchestration/defs/identity.py, ml/identity/graph.py). All identifiers
-- of one record belong to the same person as far as that record says.
--
-- An email at a provider of `mailbox_providers` (ml/landing/feeds.yml) also gives its mailbox
-- (`mailbox`: Gmail ignores dots, googlemail.com is gmail.com, documented +tags are dropped),
-- so addresses that reach one mailbox link as one identifier while each spelling stays an
-- email of its own (what erasure deletes and tombstones).
with

crm_customers as (

    select * from {{ ref('stg_crm__customers') }}

),

order_lines as (

    select * from {{ ref('stg_orders__order_lines') }}

),

clickstream_events as (

    select * from {{ ref('stg_clickstream__events') }}

),

consent_events as (

    select * from {{ ref('stg_consent__events') }}

),

erasure_requests as (

    select * from {{ ref('stg_erasure__requests') }}

),

accounts as (

    select * from {{ ref('stg_accounts__accounts') }}

),

crm_identifiers as (

    select
        'crm:' || crm_customers.crm_id as record_key,
        'crm' as source,
        identifier.id_type,
        identifier.id_value,
        crm_customers.created_at as first_seen_at
    from crm_customers
    cross join lateral (
        values
        ('crm_id', crm_customers.crm_id),
        ('email', crm_customers.email),
        ('phone', crm_customers.phone_e164),
        ('loyalty_id', crm_customers.loyalty_id)
    ) as identifier (id_type, id_value)

),

order_identifiers as (

    select
        'order:' || order_id as record_key,
        'orders' as source,
        customer_ref_type as id_type,
        customer_ref as id_value,
        min(ordered_at) as first_seen_at
    from order_lines
    where customer_ref is not null
    group by all

),

-- A web shop account: its login id and the email it was registered with (or changed to).
account_identifiers as (

    select
        'account:' || accounts.user_id as record_key,
        'accounts' as source,
        identifier.id_type,
        identifier.id_value,
        accounts.created_at as first_seen_at
    from accounts
    cross join lateral (
        values
        ('user_id', accounts.user_id),
        ('email', accounts.email)
    ) as identifier (id_type, id_value)

),

-- Browsing: one record per distinct (cookie, login, device) combination.
visits as (

    select
        anonymous_id,
        user_id,
        device_id,
        min(occurred_at) as first_seen_at
    from clickstream_events
    group by all

),

visit_identifiers as (

    select
        {{ visit_record_key('visits.anonymous_id', 'visits.user_id', 'visits.device_id') }} as record_key,
        'clickstream' as source,
        identifier.id_type,
        identifier.id_value,
        visits.first_seen_at
    from visits
    cross join lateral (
        values
        ('anonymous_id', visits.anonymous_id),
        ('user_id', visits.user_id),
        ('device_id', visits.device_id)
    ) as identifier (id_type, id_value)

),

-- A purchase event names its order: the web user and cookie join that order's record.
purchase_identifiers as (

    select
        'order:' || (clickstream_events.properties ->> 'order_id') as record_key,
        'clickstream' as source,
        identifier.id_type,
        identifier.id_value,
        min(clickstream_events.occurred_at) as first_seen_at
    from clickstream_events
    cross join
        lateral (
            values
            ('anonymous_id', clickstream_events.anonymous_id),
            ('user_id', clickstream_events.user_id)
        ) as identifier (id_type, id_value)
    where
        clickstream_events.event_type = 'purchase'
        and clickstream_events.properties ->> 'order_id' is not null
    group by all

),

consent_identifiers as (

    select
        'consent:' || consent_event_id as record_key,
        'consent' as source,
        subject_type as id_type,
        subject as id_value,
        recorded_at as first_seen_at
    from consent_events

),

erasure_identifiers as (

    select
        'erasure:' || erasure_request_id as record_key,
        'erasure' as source,
        subject_type as id_type,
        subject as id_value,
        requested_at as first_seen_at
    from erasure_requests

),

unioned as (

    select * from crm_identifiers
    union all
    select * from order_identifiers
    union all
    select * from visit_identifiers
    union all
    select * from purchase_identifiers
    union all
    select * from consent_identifiers
    union all
    select * from erasure_identifiers
    union all
    select * from account_identifiers

),

mailboxes as (

    select
        record_key,
        source,
        'mailbox' as id_type,
        {{ mailbox_key('id_value') }} as id_value,
        first_seen_at
    from unioned
    where id_type = 'email' and {{ is_listed_mailbox_provider('id_value') }}

),

final as (

    select
        record_key,
        source,
        id_type,
        id_value,
        min(first_seen_at) as first_seen_at
    from (
        select * from unioned
        union all
        select * from mailboxes
    ) as observed
    where id_value is not null and trim(id_value) != ''
    group by all

)

select * from final
