-- One row per export run as written by the export assets, typed for the marts.
with

export_runs as (

    select * from {{ source('activation', 'export_runs') }}

),

final as (

    select
        run_id,
        export_name,
        segment_name,
        definition_hash,
        consent_purpose,
        cast(as_of as timestamp) as as_of,
        cast(export_date as date) as export_date,
        cast(generated_at as timestamp) as generated_at,
        directory,
        cast(rows_exported as bigint) as rows_exported,
        cast(rows_holdout as bigint) as rows_holdout,
        cast(left_out as json) as left_out,
        cast(holdout_percent as double) as holdout_percent,
        cast(measurement_window_days as integer) as measurement_window_days,
        status
    from export_runs

)

select * from final
