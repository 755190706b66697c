-- ml.customer_clusters as written by the clustering asset, renamed for the marts.
with

customer_clusters as (

    select * from {{ source('ml', 'customer_clusters') }}

),

final as (

    select
        customer_id,
        cluster_id,
        cluster_label,
        is_outlier,
        distance as cluster_distance,
        model_version as cluster_model_version,
        as_of_at as clustered_as_of_at
    from customer_clusters

)

select * from final
