-- One row per incoming reference (macros/incoming_references.sql) with how many rows were
-- checked, how many name something that does not exist, and up to five example values (none
-- for personal references). A finding, never a failure: the rows stay in their tables. When the
-- referenced model is empty (its feed was not delivered: an orders-only export) every reference
-- is unresolved, and is_referenced_feed_present says why.
{%- set checks = incoming_references() %}

with

reference_list as (

    {% for check in checks %}
        select
            '{{ check.reference }}' as reference_name,
            '{{ check.model }}' as model_name,
            '{{ check.column }}' as column_name,
            '{{ check.to }}' as referenced_model,
            {{ 'true' if check.personal else 'false' }} as is_personal
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

checked as (

    {% for check in checks %}
        select
            '{{ check.reference }}' as reference_name,
            cast({{ check.column }} as varchar) as referenced_value
        from {{ ref(check.model) }}
        where {{ check.column }} is not null{% if check.where %} and {{ check.where }}{% endif %}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

targets as (

    {% for check in checks %}
        select distinct
            '{{ check.reference }}' as reference_name,
            cast({{ check.field }} as varchar) as referenced_value
        from {{ ref(check.to) }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

unresolved as (

    select
        checked.reference_name,
        checked.referenced_value
    from checked
    left join targets
        on
            checked.reference_name = targets.reference_name
            and checked.referenced_value = targets.referenced_value
    where targets.referenced_value is null

),

checked_counts as (

    select
        reference_name,
        count(*) as rows_checked
    from checked
    group by reference_name

),

target_counts as (

    select
        reference_name,
        count(*) as referenced_values
    from targets
    group by reference_name

),

unresolved_counts as (

    select
        reference_name,
        count(*) as rows_unresolved,
        count(distinct referenced_value) as distinct_unresolved,
        list(distinct referenced_value order by referenced_value)[1:5] as example_values
    from unresolved
    group by reference_name

),

final as (

    select
        reference_list.reference_name,
        reference_list.model_name,
        reference_list.column_name,
        reference_list.referenced_model,
        reference_list.is_personal,
        coalesce(target_counts.referenced_values, 0) > 0 as is_referenced_feed_present,
        cast(coalesce(checked_counts.rows_checked, 0) as bigint) as rows_checked,
        cast(coalesce(unresolved_counts.rows_unresolved, 0) as bigint) as rows_unresolved,
        cast(coalesce(unresolved_counts.distinct_unresolved, 0) as bigint) as distinct_unresolved,
        cast(
            case
                when coalesce(checked_counts.rows_checked, 0) = 0 then 0
                else 100.0 * coalesce(unresolved_counts.rows_unresolved, 0) / checked_counts.rows_checked
            end as decimal(6, 2)
        ) as percent_unresolved,
        case
            when reference_list.is_personal then cast([] as varchar[])
            else coalesce(unresolved_counts.example_values, cast([] as varchar[]))
        end as example_values
    from reference_list
    left join checked_counts on reference_list.reference_name = checked_counts.reference_name
    left join target_counts on reference_list.reference_name = target_counts.reference_name
    left join unresolved_counts on reference_list.reference_name = unresolved_counts.reference_name

)

select * from final
