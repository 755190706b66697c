-- ml.customer_recommendations as written by the recommendations asset, renamed for the marts.
with

customer_recommendations as (

    select * from {{ source('ml', 'customer_recommendations') }}

),

final as (

    select
        customer_id,
        recommendation_rank,
        product_id,
        product_title,
        score as recommendation_score,
        reason as recommendation_reason,
        model_version as recommendation_model_version,
        as_of_at as recommended_as_of_at
    from customer_recommendations

)

select * from final
