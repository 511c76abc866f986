-- mart.benefits_by_municipality: payments and amounts per municipality and
-- benefit type, for one period ('unknown' = citizen not in the register).
SELECT
    _data_period,
    COALESCE(municipality_code, 'unknown') AS municipality_code,
    benefit_type,
    COUNT(*) AS payments,
    SUM(amount) AS amount_total,
    SUM(citizen_unmatched) AS payments_unmatched
FROM core.benefit_payments
WHERE _data_period = :period
GROUP BY _data_period, COALESCE(municipality_code, 'unknown'), benefit_type
ORDER BY municipality_code, benefit_type
