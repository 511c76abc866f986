-- mart.citizens_by_municipality: head count and income per municipality and
-- age band, for one period.
SELECT
    _data_period,
    municipality_code,
    age_band,
    COUNT(*) AS citizens,
    SUM(CASE WHEN sex = 'F' THEN 1 ELSE 0 END) AS women,
    SUM(CASE WHEN sex = 'M' THEN 1 ELSE 0 END) AS men,
    AVG(monthly_income) AS avg_monthly_income,
    SUM(monthly_income) AS total_monthly_income
FROM core.citizens
WHERE _data_period = :period
GROUP BY _data_period, municipality_code, age_band
ORDER BY municipality_code, age_band
