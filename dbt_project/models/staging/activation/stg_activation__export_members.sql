-- One row per export run and member exported or held out, typed for the marts.
with

export_members as (

    select * from {{ source('activation', 'export_members') }}

),

final as (

    select
        run_id,
        export_name,
        segment_name,
        cast(export_date as date) as export_date,
        cast(as_of as timestamp) as as_of,
        customer_id,
        group_name
    from export_members

)

select * from final
