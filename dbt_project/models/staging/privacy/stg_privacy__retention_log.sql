-- Retention purges per feed and run, as logged by the privacy assets.
with

retention_log as (

    select * from {{ source('privacy', 'retention_log') }}

),

final as (

    select
        run_at as purged_at,
        feed,
        table_name,
        column_name,
        cutoff as retention_cutoff_at,
        rows_purged
    from retention_log

)

select * from final
