-- One row per export run and member (treatment or holdout) with what the member bought in the
-- measurement window after the export: [as_of, as_of + window_days), completed orders only,
-- and only orders before the as_of cutoff of this dbt run (point in time).
with

export_members as (

    select * from {{ ref('stg_activation__export_members') }}

),

export_runs as (

    select * from {{ ref('stg_activation__export_runs') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

members_windowed as (

    select
        export_members.run_id,
        export_members.export_name,
        export_members.segment_name,
        export_members.export_date,
        export_members.as_of,
        export_runs.measurement_window_days as window_days,
        export_members.as_of
        + to_days(export_runs.measurement_window_days) as window_end,
        export_members.customer_id,
        export_members.group_name
    from export_members
    left join export_runs
        on
            export_members.run_id = export_runs.run_id
            and export_members.export_name = export_runs.export_name

),

completed_orders as (

    select
        customer_id,
        ordered_at,
        net_amount_gbp
    from orders
    where
        is_completed
        and customer_id is not null
        and ordered_at < {{ as_of_cutoff() }}

),

outcomes_counted as (

    select
        members_windowed.run_id,
        members_windowed.export_name,
        members_windowed.segment_name,
        members_windowed.export_date,
        members_windowed.as_of,
        members_windowed.window_days,
        members_windowed.window_end,
        members_windowed.customer_id,
        members_windowed.group_name,
        count(completed_orders.ordered_at) as orders_in_window,
        coalesce(sum(completed_orders.net_amount_gbp), 0) as revenue_gbp
    from members_windowed
    left join completed_orders
        on
            members_windowed.customer_id = completed_orders.customer_id
            and members_windowed.as_of <= completed_orders.ordered_at
            and members_windowed.window_end > completed_orders.ordered_at
    group by
        members_windowed.run_id,
        members_windowed.export_name,
        members_windowed.segment_name,
        members_windowed.export_date,
        members_windowed.as_of,
        members_windowed.window_days,
        members_windowed.window_end,
        members_windowed.customer_id,
        members_windowed.group_name

),

final as (

    select
        run_id,
        export_name,
        segment_name,
        export_date,
        as_of,
        window_days,
        window_end,
        customer_id,
        group_name,
        orders_in_window > 0 as converted,
        orders_in_window,
        cast(revenue_gbp as decimal(18, 2)) as revenue_gbp,
        coalesce(window_end <= {{ as_of_cutoff() }}, false) as window_complete
    from outcomes_counted

)

select * from final
