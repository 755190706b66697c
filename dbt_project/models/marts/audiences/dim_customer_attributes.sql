-- What segments are built from: one row per customer with behavioural features, RFM scores,
-- the ML cluster, the predictions and the top 3 recommended products, and no personal data
-- (the catalogue of segment fields is this model's yml).
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

predictions as (

    select * from {{ ref('stg_ml__customer_predictions') }}

),

recommendations as (

    select * from {{ ref('stg_ml__customer_recommendations') }}

),

top_recommendations as (

    select
        customer_id,
        max(product_id) filter (where recommendation_rank = 1) as recommended_product_1,
        max(product_id) filter (where recommendation_rank = 2) as recommended_product_2,
        max(product_id) filter (where recommendation_rank = 3) as recommended_product_3
    from recommendations
    where recommendation_rank <= 3
    group by customer_id

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
        clusters.is_outlier,
        predictions.purchase_propensity,
        predictions.purchase_propensity_decile,
        predictions.churn_risk,
        predictions.churn_risk_decile,
        predictions.p_alive,
        predictions.expected_orders_12m,
        predictions.clv_12m_gbp,
        predictions.clv_decile,
        top_recommendations.recommended_product_1,
        top_recommendations.recommended_product_2,
        top_recommendations.recommended_product_3
    from features
    left join rfm
        on features.customer_id = rfm.customer_id
    left join clusters
        on features.customer_id = clusters.customer_id
    left join predictions
        on features.customer_id = predictions.customer_id
    left join top_recommendations
        on features.customer_id = top_recommendations.customer_id

)

select * from final
