-- One row per web shop account: the latest version of each user_id across every export.
with

accounts as (

    select * from {{ source('accounts', 'accounts') }}

),

renamed as (

    select
        user_id,
        email_normalised as email,
        {{ blank_to_null('email') }} as email_as_received,
        {{ to_utc_timestamp('created_at', feed_timezone('accounts')) }} as created_at,
        {{ to_utc_timestamp('updated_at', feed_timezone('accounts')) }} as updated_at,
        _source_file,
        _row_number,
        _load_id,
        _loaded_at
    from accounts

),

versioned as (

    select
        *,
        count(*) over (partition by user_id) as version_count,
        row_number() over (
            partition by user_id
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
        user_id,
        email,
        email_as_received,
        {{ mailbox_key('email') }} as email_mailbox,
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
