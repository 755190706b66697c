-- One row per snapshot date and customer with the RFM scores and segment of that day, so
-- segment sizes and movements can be followed over time. Each run replaces the rows of its
-- own snapshot date (delete+insert) and keeps every other day; a full refresh is refused so
-- the history survives `dbt build --full-refresh`.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='snapshot_date',
        on_schema_change='fail',
        full_refresh=false,
    )
}}
{%- set as_of_text = '' if var('as_of', '') is none else (var('as_of', '') | string | trim) %}
{%- set is_bare_date = modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', as_of_text) is not none %}
{#- a bare date var names the day itself (its cutoff is the next midnight); else the cutoff's date -#}
{%- set snapshot_date = 'cast(as_of_at as date) - 1' if is_bare_date else 'cast(as_of_at as date)' %}
with

customer_rfm as (

    select * from {{ ref('customer_rfm') }}

),

final as (

    select
        {{ snapshot_date }} as snapshot_date,
        customer_id,
        as_of_at,
        has_purchased,
        r_score,
        f_score,
        m_score,
        rfm_code,
        rfm_segment
    from customer_rfm

)

select * from final
