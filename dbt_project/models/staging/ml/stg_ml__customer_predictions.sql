-- ml.customer_predictions as written by the predictions asset, renamed for the marts.
with

customer_predictions as (

    select * from {{ source('ml', 'customer_predictions') }}

),

final as (

    select
        customer_id,
        purchase_propensity,
        purchase_propensity_decile,
        purchase_propensity_reasons,
        churn_risk,
        churn_risk_decile,
        churn_risk_reasons,
        p_alive,
        expected_orders_12m,
        expected_order_value_gbp,
        clv_12m_gbp,
        clv_decile,
        model_version as prediction_model_version,
        as_of_at as predicted_as_of_at
    from customer_predictions

)

select * from final
