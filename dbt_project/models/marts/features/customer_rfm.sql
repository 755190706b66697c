-- RFM scores and segment of every customer as of the `as_of` cutoff. Scores are quintiles
-- among purchasers (customers with a completed order before the cutoff) by rank, so equal
-- values always get equal scores: score = 1 + (5 * (rank - 1)) // purchasers, where rank is
-- the SQL rank() (1 + the number of purchasers with a strictly worse value). The segment comes
-- from seeds/rfm_segments.csv by r_score and fm_score = (f_score + m_score + 1) // 2.
with

features as (

    select * from {{ ref('customer_features') }}

),

rfm_segments as (

    select * from {{ ref('rfm_segments') }}

),

ranked as (

    select
        customer_id,
        rank() over (order by days_since_last_order desc) as recency_rank,
        rank() over (order by frequency asc) as frequency_rank,
        rank() over (order by monetary_gbp asc) as monetary_rank,
        count(*) over () as purchaser_count
    from features
    where lifetime_orders > 0

),

scored as (

    select
        customer_id,
        cast(1 + (5 * (recency_rank - 1)) // purchaser_count as integer) as r_score,
        cast(1 + (5 * (frequency_rank - 1)) // purchaser_count as integer) as f_score,
        cast(1 + (5 * (monetary_rank - 1)) // purchaser_count as integer) as m_score
    from ranked

),

final as (

    select
        features.customer_id,
        features.as_of_at,
        features.lifetime_orders > 0 as has_purchased,
        features.days_since_last_order,
        features.frequency,
        features.monetary_gbp,
        scored.r_score,
        scored.f_score,
        scored.m_score,
        cast(scored.r_score as varchar)
        || cast(scored.f_score as varchar)
        || cast(scored.m_score as varchar) as rfm_code,
        case
            when scored.customer_id is null then 'No Purchases'
            else rfm_segments.rfm_segment
        end as rfm_segment
    from features
    left join scored
        on features.customer_id = scored.customer_id
    left join rfm_segments
        on
            scored.r_score = rfm_segments.r_score
            and (scored.f_score + scored.m_score + 1) // 2 = rfm_segments.fm_score

)

select * from final
