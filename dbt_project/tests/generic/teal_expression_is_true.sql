{#- Fails with every row of the model where the SQL boolean `expression` is not true (false or null). -#}
{% test teal_expression_is_true(model, expression, column_name=none) %}

    select *
    from {{ model }}
    where not coalesce(({{ expression }}), false)

{% endtest %}
