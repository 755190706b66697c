-- One row per consent event: a subject granting or withdrawing one purpose.
with

consent_events as (

    select * from {{ source('consent', 'events') }}

),

renamed as (

    select
        event_id as consent_event_id,
        subject_normalised as subject,
        subject_type,
        purpose,
        status as consent_status,
        source as consent_source,
        {{ to_utc_timestamp('recorded_at', feed_timezone('consent')) }} as recorded_at,
        _source_file,
        _row_number,
        _load_id,
        _loaded_at
    from consent_events

),

final as (

    select
        consent_event_id,
        subject,
        subject_type,
        purpose,
        consent_status,
        consent_status = 'granted' as is_granted,
        consent_source,
        recorded_at,
        _source_file,
        _row_number,
        _load_id,
        _loaded_at
    from renamed

)

select * from final
