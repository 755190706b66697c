-- What segments are built from: one row per customer with behavioural features, RFM scores and
-- the ML cluster, and no personal data (the catalogue of segment fields is this model's yml).
with

features as (

    select * from {{ ref('customer_features') }}

),

rfm as (

    select * from {{ ref('customer_rfm') }}

),

clusters as (

    select * from {{ ref('stg_ml__customer_clusters') }}

),

final as (

    select
        features.*,
        rfm.has_purchased,
        rfm.r_score,
        rfm.f_score,
        rfm.m_score,
        rfm.rfm_code,
        rfm.rfm_segment,
        clusters.cluster_id,
        clusters.cluster_label,
        clusters.is_outlier
    from features
    left join rfm
        on features.customer_id = rfm.customer_id
    left join clusters
        on features.customer_id = clusters.customer_id

)

select * from final
