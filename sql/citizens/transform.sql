-- core.citizens for one period: names trimmed and title-cased, age (whole
-- years at the last day of the period) and age band added.
-- Parameters: period ('YYYY-MM') and period_end_key (the period's last day
-- as the integer YYYYMMDD). Never write a colon-name in a comment: SQLAlchemy
-- would take it for a bind parameter.
SELECT
    c.citizen_id,
    c.first_name,
    c.last_name,
    c.birth_date,
    c.sex,
    c.municipality_code,
    c.household_id,
    c.monthly_income,
    c.age,
    CASE
        WHEN c.age < 18 THEN '0-17'
        WHEN c.age < 30 THEN '18-29'
        WHEN c.age < 45 THEN '30-44'
        WHEN c.age < 65 THEN '45-64'
        ELSE '65+'
    END AS age_band,
    c._data_period
FROM (
    SELECT
        citizen_id,
        initcap(trim(first_name)) AS first_name,
        initcap(trim(last_name)) AS last_name,
        birth_date,
        upper(sex) AS sex,
        municipality_code,
        household_id,
        monthly_income,
        (:period_end_key - CAST(to_char(birth_date, 'YYYYMMDD') AS INTEGER)) / 10000 AS age,
        _data_period
    FROM stage.citizens
    WHERE _data_period = :period
) c
