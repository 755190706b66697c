{#- Fails with one row per combination of `columns` that occurs more than once in the model. -#}
{% test teal_unique_combination(model, columns) %}
    {%- if columns is string -%}
        {%- set columns = [columns] -%}
    {%- endif -%}
    {%- if not columns -%}
        {{ exceptions.raise_compiler_error("teal_unique_combination: `columns` must list at least one column") }}
    {%- endif %}

    select
        {% for column in columns -%}
        {{ adapter.quote(column) }},
        {% endfor -%}
        count(*) as n_records
    from {{ model }}
    group by all
    having count(*) > 1

{% endtest %}
